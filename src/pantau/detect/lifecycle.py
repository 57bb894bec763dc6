"""Alert lifecycle: turns the Conditions of one subject into Opened / Updated / Resolved transitions.

    state, transitions = step_lifecycle(state, condition, config)   # in_place=True: caller owns state
    state, transitions = tick_lifecycle(state, now, config)   # resolve on time alone (timer)

State key: the condition's `subject` (e.g. "price_spike:beras:pibc"), the key of pangan.alert.v1;
one open alert per subject. Rules, per alert type (LifecyclePolicy):
- open when severity >= open_at (default alert);
- while open, a higher severity updates at once; a lower one (never below open_at) only after it has
  held for deescalate_hold, so a value at a boundary does not flap between severities;
- resolve once severity has stayed below resolve_below (default watch, i.e. normal) for resolve_hold;
- after resolving, the subject does not reopen within cooldown unless the new severity is higher
  than the severity it resolved at.
Times are event times (condition.observed_at); the lifecycle clock never runs backwards, so a late
condition is judged at the latest time already seen. alert_id is uuid5 over subject and the opening
event time, so a replay produces the same ids; `sequence` counts transitions of one alert from 1.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pantau.contracts.models import AlertOpened, AlertResolved, AlertUpdated, alert_id_for
from pantau.detect.actions import Names, describe
from pantau.detect.conditions import AlertType, Condition, Place, PlaceKind, Severity, Signal
from pantau.detect.timebase import from_ts, timestamp


class TransitionKind(enum.StrEnum):
    OPENED = "opened"  # -> AlertOpened
    UPDATED = "updated"  # -> AlertUpdated
    RESOLVED = "resolved"  # -> AlertResolved


@dataclass(frozen=True, slots=True)
class LifecyclePolicy:
    open_at: Severity = Severity.ALERT
    resolve_below: Severity = Severity.WATCH
    resolve_hold: timedelta = timedelta(hours=72)
    deescalate_hold: timedelta = timedelta(hours=48)
    cooldown: timedelta = timedelta(hours=72)

    def __post_init__(self) -> None:
        if not Severity.WATCH <= self.open_at <= Severity.CRISIS:
            raise ValueError(f"open_at must be watch..crisis, got {self.open_at.label}")
        if not Severity.WATCH <= self.resolve_below <= self.open_at:
            raise ValueError(
                f"resolve_below ({self.resolve_below.label}) must be between watch and open_at ({self.open_at.label})"
            )


DEFAULT_POLICIES: Mapping[AlertType, LifecyclePolicy] = {
    # Daily prices resolve below alert, not below watch: ALPS "stress" (watch) is the usual state of a
    # series with inflation, and on the PIHPS replay resolving only at normal kept the rice alert open
    # from Oct 2022 to May 2024. Hysteresis comes from the detector's two-day persistence to open, a
    # week below alert to resolve and a week's cooldown.
    AlertType.PRICE_SPIKE: LifecyclePolicy(
        resolve_below=Severity.ALERT, resolve_hold=timedelta(days=7), cooldown=timedelta(days=7)
    ),
    AlertType.PRICE_DISPARITY: LifecyclePolicy(resolve_hold=timedelta(days=3), cooldown=timedelta(days=7)),
    AlertType.SUPPLY_GAP: LifecyclePolicy(
        resolve_hold=timedelta(hours=12), deescalate_hold=timedelta(hours=6), cooldown=timedelta(hours=24)
    ),
    AlertType.ROUTE_DISRUPTION: LifecyclePolicy(
        resolve_hold=timedelta(hours=1), deescalate_hold=timedelta(hours=2), cooldown=timedelta(hours=6)
    ),
    AlertType.HARVEST_UNSHIPPED: LifecyclePolicy(resolve_hold=timedelta(hours=24), cooldown=timedelta(days=3)),
}


@dataclass(frozen=True)
class LifecycleConfig:
    policies: Mapping[AlertType, LifecyclePolicy] = field(default_factory=lambda: dict(DEFAULT_POLICIES))
    default: LifecyclePolicy = LifecyclePolicy()
    names: Names = Names()

    def policy(self, alert_type: AlertType) -> LifecyclePolicy:
        return self.policies.get(alert_type, self.default)


@dataclass(frozen=True, slots=True)
class Transition:
    kind: TransitionKind
    alert_id: str
    sequence: int
    subject: str
    alert_type: AlertType
    severity: Severity
    previous_severity: Severity | None
    occurred_at: datetime  # event time of the transition
    opened_at: datetime
    commodity: str | None
    place: Place
    signals: tuple[Signal, ...]
    affected_volume_kg: float | None
    details: dict[str, Any]
    place_name: str
    title_id: str
    title_en: str
    action_id: str
    action_en: str

    def to_payload(self) -> dict[str, Any]:
        """The AlertOpened / AlertUpdated / AlertResolved payload (JSON-ready, common.v1.json alert_payload);
        the envelope is the processor's: new_event(transition.to_contract(), occurred_at=transition.occurred_at,
        source="processor")."""
        return {
            "alert_id": self.alert_id,
            "alert_type": self.alert_type.value,
            "subject": self.subject,
            "sequence": self.sequence,
            "severity": self.severity.label,
            "previous_severity": self.previous_severity.label if self.previous_severity is not None else None,
            "commodity": self.commodity,
            "place": {"kind": self.place.kind.value, "code": self.place.code, "name": self.place_name},
            "affected_volume_kg": self.affected_volume_kg,
            "evidence": {"signals": [s.to_dict() for s in self.signals], "details": self.details},
            "title": {"id": self.title_id, "en": self.title_en},
            "action_text": {"id": self.action_id, "en": self.action_en},
            "opened_at": self.opened_at,
        }

    def to_contract(self) -> AlertOpened | AlertUpdated | AlertResolved:
        """The payload as the contract's model (validated)."""
        model = {
            TransitionKind.OPENED: AlertOpened,
            TransitionKind.UPDATED: AlertUpdated,
            TransitionKind.RESOLVED: AlertResolved,
        }[self.kind]
        return model.model_validate(self.to_payload(), strict=False)


@dataclass(slots=True)
class AlertState:
    """One subject's lifecycle; JSON via to_json()/from_json()."""

    subject: str = ""
    alert_type: str = ""
    commodity: str | None = None
    place_kind: str = ""
    place_code: str = ""
    last_ts: float = float("-inf")  # latest event time seen
    alert_id: str | None = None  # set while an alert is open
    opened_ts: float = 0.0
    severity: int = 0  # the open alert's severity
    sequence: int = 0
    below_since: float | None = None  # start of the current run below resolve_below
    lower_since: float | None = None  # start of the current run below the alert's severity
    lower_max: int = 0  # highest severity (floored at open_at) during that run
    resolved_ts: float | None = None
    resolved_severity: int = 0

    def copy(self) -> AlertState:
        return AlertState(
            self.subject,
            self.alert_type,
            self.commodity,
            self.place_kind,
            self.place_code,
            self.last_ts,
            self.alert_id,
            self.opened_ts,
            self.severity,
            self.sequence,
            self.below_since,
            self.lower_since,
            self.lower_max,
            self.resolved_ts,
            self.resolved_severity,
        )

    def to_json(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__slots__}
        data["last_ts"] = None if self.last_ts == float("-inf") else self.last_ts
        return {"v": 1, **data}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AlertState:
        if data.get("v") != 1:
            raise ValueError(f"unknown AlertState version {data.get('v')!r}; expected 1")
        values = {name: data[name] for name in cls.__slots__}
        if values["last_ts"] is None:
            values["last_ts"] = float("-inf")
        return cls(**values)


def step_lifecycle(
    state: AlertState | None, condition: Condition, config: LifecycleConfig, *, in_place: bool = False
) -> tuple[AlertState, list[Transition]]:
    """One condition; the given state is copied first unless `in_place` (the caller owns it)."""
    if state is None:
        state = AlertState()
    elif not in_place:
        state = state.copy()
    if not state.subject:
        state.subject = condition.subject
    elif state.subject != condition.subject:
        raise ValueError(f"condition for {condition.subject!r} given to the state of {state.subject!r}")
    state.alert_type = condition.alert_type.value
    state.commodity = condition.commodity
    state.place_kind, state.place_code = condition.place.kind.value, condition.place.code
    policy = config.policy(condition.alert_type)
    now = max(timestamp(condition.observed_at), state.last_ts)
    state.last_ts = now
    severity = int(condition.severity)

    if state.alert_id is None:
        if severity < policy.open_at:
            return state, []
        in_cooldown = state.resolved_ts is not None and now - state.resolved_ts < policy.cooldown.total_seconds()
        if in_cooldown and severity <= state.resolved_severity:
            return state, []
        state.alert_id = alert_id_for(condition.subject, from_ts(now))
        state.opened_ts, state.severity, state.sequence = now, severity, 1
        state.below_since = state.lower_since = None
        return state, [_transition(state, TransitionKind.OPENED, None, now, condition, config)]

    if severity < policy.resolve_below:
        if state.below_since is None:
            state.below_since = now
        if now - state.below_since >= policy.resolve_hold.total_seconds():
            return state, [_resolve(state, now, condition, config)]
    else:
        state.below_since = None

    previous = state.severity
    if severity > previous:
        state.severity, state.lower_since = severity, None
    elif severity < previous:
        floored = max(severity, int(policy.open_at))
        if floored >= previous:
            state.lower_since = None
        else:
            if state.lower_since is None:
                state.lower_since, state.lower_max = now, floored
            state.lower_max = max(state.lower_max, floored)
            if now - state.lower_since >= policy.deescalate_hold.total_seconds():
                state.severity, state.lower_since = state.lower_max, None
    else:
        state.lower_since = None
    if state.severity == previous:
        return state, []
    state.sequence += 1
    return state, [_transition(state, TransitionKind.UPDATED, previous, now, condition, config)]


def tick_lifecycle(state: AlertState, now: datetime, config: LifecycleConfig) -> tuple[AlertState, list[Transition]]:
    """Resolve an open alert whose severity has stayed low for the hold time, without a new condition."""
    if state.alert_id is None or state.below_since is None:
        return state, []
    policy = config.policy(AlertType(state.alert_type))
    ts = max(timestamp(now), state.last_ts)
    if ts - state.below_since < policy.resolve_hold.total_seconds():
        return state, []
    state = state.copy()
    state.last_ts = ts
    return state, [_resolve(state, ts, None, config)]


def _resolve(state: AlertState, now: float, condition: Condition | None, config: LifecycleConfig) -> Transition:
    state.sequence += 1
    transition = _transition(state, TransitionKind.RESOLVED, state.severity, now, condition, config)
    state.resolved_ts, state.resolved_severity = now, state.severity
    state.alert_id, state.below_since, state.lower_since, state.severity = None, None, None, 0
    return transition


def _transition(
    state: AlertState,
    kind: TransitionKind,
    previous: int | None,
    now: float,
    condition: Condition | None,
    config: LifecycleConfig,
) -> Transition:
    alert_type = AlertType(state.alert_type)
    place = Place(PlaceKind(state.place_kind), state.place_code)
    severity = Severity.NORMAL if kind is TransitionKind.RESOLVED else Severity(state.severity)
    signals = condition.signals if condition is not None else ()
    details = dict(condition.details) if condition is not None else {}
    if kind is TransitionKind.RESOLVED:
        policy = config.policy(alert_type)
        details["resolved_because"] = f"severity below {policy.resolve_below.label} for {policy.resolve_hold}"
    volume = condition.affected_volume_kg if condition is not None else None
    texts = describe(
        resolved=kind is TransitionKind.RESOLVED,
        alert_type=alert_type,
        severity=severity,
        commodity=state.commodity,
        place_code=place.code,
        signals=signals,
        affected_volume_kg=volume,
        details=details,
        names=config.names,
    )
    assert state.alert_id is not None
    return Transition(
        kind=kind,
        alert_id=state.alert_id,
        sequence=state.sequence,
        subject=state.subject,
        alert_type=alert_type,
        severity=severity,
        previous_severity=Severity(previous) if previous is not None else None,
        occurred_at=from_ts(now),
        opened_at=from_ts(state.opened_ts),
        commodity=state.commodity,
        place=place,
        signals=signals,
        affected_volume_kg=volume,
        details=details,
        place_name=config.names.place(place.code),
        title_id=texts.title_id,
        title_en=texts.title_en,
        action_id=texts.action_id,
        action_en=texts.action_en,
    )
