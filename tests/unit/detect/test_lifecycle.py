"""Alert lifecycle: one open alert per subject, hysteresis, cooldown, deterministic ids, contract payloads."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pantau.contracts.models import AlertOpened, AlertResolved, AlertUpdated, alert_id_for, new_event
from pantau.detect.conditions import AlertType, Condition, Place, PlaceKind, Severity, Signal
from pantau.detect.lifecycle import (
    AlertState,
    LifecycleConfig,
    LifecyclePolicy,
    TransitionKind,
    step_lifecycle,
    tick_lifecycle,
)
from pantau.detect.timebase import WIB

from .conftest import kinds, run_lifecycle

T0 = datetime(2026, 3, 4, 8, 0, tzinfo=WIB)
POLICY = LifecyclePolicy(
    open_at=Severity.ALERT,
    resolve_below=Severity.WATCH,
    resolve_hold=timedelta(hours=6),
    deescalate_hold=timedelta(hours=3),
    cooldown=timedelta(hours=12),
)


def cond(severity: Severity, hours: float, subject: str = "supply_gap:beras:pibc") -> Condition:
    return Condition(
        alert_type=AlertType.SUPPLY_GAP,
        subject=subject,
        severity=severity,
        observed_at=T0 + timedelta(hours=hours),
        commodity="beras",
        place=Place(PlaceKind.DESTINATION, "pibc"),
        signals=(Signal("projected_cover_days", 4.0, 5.0, 8.6, "24h", severity),),
        affected_volume_kg=9_000_000.0,
        details={"projected_cover_days": 4.0, "behind_count": 0},
    )


@pytest.fixture(scope="module")
def config(lifecycle_config) -> LifecycleConfig:
    return LifecycleConfig(policies={AlertType.SUPPLY_GAP: POLICY}, names=lifecycle_config.names)


def test_opens_updates_and_resolves_one_alert(config):
    A, N, C = Severity.ALERT, Severity.NORMAL, Severity.CRISIS
    timeline = [(N, 0), (A, 1), (C, 2), (C, 3), (A, 4), (A, 8), (N, 9), (N, 12), (N, 16)]
    transitions = run_lifecycle([cond(s, h) for s, h in timeline], config)
    assert kinds(transitions) == ["opened", "updated", "updated", "resolved"]
    opened, up, down, resolved = transitions
    assert [t.sequence for t in transitions] == [1, 2, 3, 4]
    assert len({t.alert_id for t in transitions}) == 1
    assert (up.previous_severity, up.severity) == (A, C)  # escalation at once
    assert (down.previous_severity, down.severity) == (C, A)  # de-escalation after 3 h at alert
    assert down.occurred_at == T0 + timedelta(hours=8)
    assert (resolved.previous_severity, resolved.severity) == (A, N)
    assert resolved.occurred_at == T0 + timedelta(hours=16)  # normal from 9 h, held 6 h (and seen at 16 h)
    assert opened.alert_id == alert_id_for("supply_gap:beras:pibc", T0 + timedelta(hours=1))


def test_watch_does_not_resolve_but_stops_nothing(config):
    A, W = Severity.ALERT, Severity.WATCH
    transitions = run_lifecycle([cond(A, 0)] + [cond(W, h) for h in range(1, 48)], config)
    assert kinds(transitions) == ["opened"]  # watch is not below the resolve level (below watch = normal)


def test_alternating_alert_and_watch_does_not_flap(config):
    A, W = Severity.ALERT, Severity.WATCH
    transitions = run_lifecycle([cond(A if h % 2 else W, h) for h in range(200)], config)
    assert kinds(transitions) == ["opened"]


def test_cooldown_blocks_a_reopen_unless_the_severity_is_higher(config):
    A, N, C = Severity.ALERT, Severity.NORMAL, Severity.CRISIS
    base = [cond(A, 0), cond(N, 1), cond(N, 7)]  # resolved at 7 h
    again = run_lifecycle(base + [cond(A, 10), cond(A, 18), cond(A, 20)], config)
    assert kinds(again) == ["opened", "resolved", "opened"]
    assert again[-1].occurred_at == T0 + timedelta(hours=20)  # 13 h after resolving, past the 12 h cooldown
    worse = run_lifecycle(base + [cond(C, 10)], config)
    assert kinds(worse) == ["opened", "resolved", "opened"] and worse[-1].severity == C
    assert worse[0].alert_id != worse[-1].alert_id


def test_replay_gives_the_same_ids_and_late_conditions_do_not_turn_the_clock_back(config):
    A, N = Severity.ALERT, Severity.NORMAL
    timeline = [cond(A, 0), cond(N, 5), cond(A, 2), cond(N, 6), cond(N, 11), cond(N, 12)]  # 2 h arrives late
    first, second = run_lifecycle(timeline, config), run_lifecycle(timeline, config)
    assert [t.alert_id for t in first] == [t.alert_id for t in second]
    assert kinds(first) == ["opened", "resolved"]
    # the late alert counts at 5 h (the clock's latest), so the normal run restarts at 6 h: 6 + 6 = 12 h
    assert first[-1].occurred_at == T0 + timedelta(hours=12)


def test_tick_resolves_when_the_detector_goes_quiet(config):
    state, _ = step_lifecycle(None, cond(Severity.ALERT, 0), config)
    state, _ = step_lifecycle(state, cond(Severity.NORMAL, 1), config)
    state, early = tick_lifecycle(state, T0 + timedelta(hours=5), config)
    assert early == []
    state, late = tick_lifecycle(state, T0 + timedelta(hours=8), config)
    assert kinds(late) == ["resolved"] and late[0].details["resolved_because"].startswith("severity below watch")
    assert state.alert_id is None


def test_payloads_follow_the_alert_contract(config):
    A, C, N = Severity.ALERT, Severity.CRISIS, Severity.NORMAL
    transitions = run_lifecycle([cond(A, 0), cond(C, 1), cond(N, 2), cond(N, 9)], config)
    models = [t.to_contract() for t in transitions]
    assert [type(m) for m in models] == [AlertOpened, AlertUpdated, AlertResolved]
    opened = models[0]
    assert opened.place.name == "Pasar Induk Beras Cipinang"
    assert opened.title.id == "Stok beras di Pasar Induk Beras Cipinang diperkirakan cukup untuk 4,0 hari"
    assert opened.action_text.en == "Speed up shipments from the origins and prepare a release of Bulog stock."
    assert opened.evidence.signals[0].name == "projected_cover_days"
    event = new_event(opened, occurred_at=transitions[0].occurred_at, source="processor")
    assert event.correlation_id == opened.alert_id
    json.dumps(transitions[0].to_payload(), default=str)


def test_state_round_trips_through_json(config):
    state, _ = step_lifecycle(None, cond(Severity.ALERT, 0), config)
    state, _ = step_lifecycle(state, cond(Severity.NORMAL, 1), config)
    assert AlertState.from_json(json.loads(json.dumps(state.to_json()))) == state
    assert AlertState.from_json(json.loads(json.dumps(AlertState().to_json()))) == AlertState()


def test_a_condition_for_another_subject_is_refused(config):
    state, _ = step_lifecycle(None, cond(Severity.ALERT, 0), config)
    with pytest.raises(ValueError, match="route_disruption"):
        step_lifecycle(state, cond(Severity.ALERT, 1, subject="route_disruption:merak_port"), config)


def test_policy_refuses_a_resolve_level_above_the_open_level():
    with pytest.raises(ValueError, match="resolve_below"):
        LifecyclePolicy(open_at=Severity.ALERT, resolve_below=Severity.CRISIS)


severities = st.sampled_from(list(Severity))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(severities, st.integers(min_value=0, max_value=180)), max_size=120))
def test_any_severity_sequence_keeps_the_lifecycle_rules(config, steps):
    """Transitions alternate opened -> updated* -> resolved, sequences count up, holds and cooldown hold."""
    conditions, minutes = [], 0
    for severity, gap in steps:
        minutes += gap
        conditions.append(cond(severity, minutes / 60.0))
    transitions = run_lifecycle(conditions, config)
    open_alert, last_resolved = None, None
    for t in transitions:
        if t.kind is TransitionKind.OPENED:
            assert open_alert is None and t.sequence == 1 and t.severity >= POLICY.open_at
            if last_resolved is not None and t.occurred_at - last_resolved.occurred_at < POLICY.cooldown:
                assert t.severity > last_resolved.previous_severity
            open_alert, expected_sequence = t, 2
        else:
            assert open_alert is not None and t.alert_id == open_alert.alert_id
            assert t.sequence == expected_sequence
            expected_sequence += 1
            if t.kind is TransitionKind.RESOLVED:
                assert t.occurred_at - open_alert.occurred_at >= POLICY.resolve_hold
                open_alert, last_resolved = None, t
            else:
                assert t.severity != t.previous_severity and t.severity >= POLICY.open_at
