"""The simulator's checkpoint: how far a run got, so that a restart continues instead of replaying.

`<SIMULATOR_STATE_DIR>/checkpoint.json` holds the run's identity (seed, start, SHA-256 of the
scenario file) and `reached`: every event with occurred_at at or before it has been acknowledged by
Kafka. It is written after each step the runner has flushed, never before. A restart with the same
identity regenerates the simulation silently up to `reached` (deterministic: the same events and ids)
and produces from there on. A SIGKILL between a step's sends and its flush loses that step's
checkpoint, so the restart re-sends those events with the same event ids: at-least-once, at most one
step (about a second of production) repeated.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pantau.contracts import WIB

CHECKPOINT_FORMAT = 1
CHECKPOINT_NAME = "checkpoint.json"


@dataclass(frozen=True)
class Checkpoint:
    seed: int
    start: datetime
    scenario_sha256: str | None  # None: run without scenarios
    reached: datetime

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": CHECKPOINT_FORMAT,
                "seed": self.seed,
                "start": self.start.isoformat(),
                "scenario_sha256": self.scenario_sha256,
                "reached": self.reached.isoformat(),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Checkpoint:
        data = json.loads(text)
        if data.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"format {data.get('format')!r}, this simulator writes {CHECKPOINT_FORMAT}")
        start, reached = datetime.fromisoformat(data["start"]), datetime.fromisoformat(data["reached"])
        if start.tzinfo is None or reached.tzinfo is None:
            raise ValueError("start and reached need a UTC offset")
        sha = data["scenario_sha256"]
        if not isinstance(data["seed"], int) or not (sha is None or isinstance(sha, str)):
            raise ValueError("seed must be an integer and scenario_sha256 a string or null")
        return cls(data["seed"], start.astimezone(WIB), sha, reached.astimezone(WIB))


class CheckpointStore:
    """One checkpoint file in `directory`, replaced atomically."""

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / CHECKPOINT_NAME

    def load(self) -> tuple[Checkpoint | None, str | None]:
        """The stored checkpoint, or None with the reason it cannot be used (None: there is none)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None, None
        try:
            return Checkpoint.from_json(text), None
        except (ValueError, KeyError, TypeError) as exc:
            return None, f"{self.path} is unreadable ({exc.__class__.__name__}: {exc})"

    def check_writable(self) -> None:
        """Raise OSError now rather than at the first checkpoint."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        probe = self.path.with_suffix(".probe")
        probe.write_text("", encoding="utf-8")
        probe.unlink()

    def save(self, checkpoint: Checkpoint) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        with temporary.open("w", encoding="utf-8") as handle:
            handle.write(checkpoint.to_json())
            handle.flush()
            os.fsync(handle.fileno())  # a host crash must not leave an empty checkpoint behind
        os.replace(temporary, self.path)


def scenario_sha256(path: Path | None) -> str | None:
    return None if path is None else hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass(frozen=True)
class RunPlan:
    """Where a run starts and whether it resumes a checkpoint (resume_at: everything up to it was sent)."""

    start: datetime
    resume_at: datetime | None
    ignored_because: str | None = None  # a stored checkpoint that does not fit this run, and why


def plan_run(
    *,
    seed: int,
    scenario_digest: str | None,
    explicit_start: datetime | None,
    default_start: datetime,
    stored: Checkpoint | None,
) -> RunPlan:
    """Resume `stored` when it belongs to this run: same seed and scenario file, and the same start when
    SIMULATOR_START is set (unset: the checkpoint's start, so a run begun days ago keeps its start)."""
    fresh_start = explicit_start if explicit_start is not None else default_start
    if stored is None:
        return RunPlan(fresh_start, None)
    reason = None
    if stored.seed != seed:
        reason = f"it is for SIMULATOR_SEED={stored.seed}, this run has {seed}"
    elif stored.scenario_sha256 != scenario_digest:
        reason = (
            f"it was made with another scenario file (sha256 {_short(stored.scenario_sha256)}, "
            f"SIMULATOR_SCENARIO_FILE now {_short(scenario_digest)})"
        )
    elif explicit_start is not None and stored.start != explicit_start:
        reason = f"it starts at {stored.start.isoformat()}, SIMULATOR_START is {explicit_start.isoformat()}"
    if reason is not None:
        return RunPlan(fresh_start, None, ignored_because=reason)
    return RunPlan(stored.start, stored.reached)


def _short(digest: str | None) -> str:
    return "none (no scenarios)" if digest is None else digest[:12]
