"""How the simulator service decides its run from the settings and the checkpoint on disk: defaults
for `make run`, resume with the same seed, start and scenarios, and a checkpoint that does not fit
ignored with the reason."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from pantau.contracts import WIB
from pantau.settings import REPO_ROOT
from services.simulator.__main__ import follows_wall_clock, ground_truth_file, prepare, state_dir
from services.simulator.checkpoint import Checkpoint, CheckpointStore, plan_run, scenario_sha256
from tests.conftest import make_settings

NOW = datetime(2026, 11, 26, 7, 43, tzinfo=WIB)
TWO_WEEKS_AGO = datetime(2026, 11, 12, tzinfo=WIB)
DEMO = REPO_ROOT / "scenarios" / "demo.yaml"


def test_make_run_defaults_start_two_weeks_back_with_the_demo_scenarios_and_state_under_local_dir(tmp_path):
    settings = make_settings(local_dir=tmp_path)
    assert state_dir(settings) == tmp_path / "simulator"
    assert ground_truth_file(settings) == tmp_path / "simulator" / "ground_truth.jsonl"
    assert follows_wall_clock(settings)
    setup = prepare(settings, NOW)
    assert setup.plan.start == TWO_WEEKS_AGO and setup.plan.resume_at is None
    assert setup.simulation.start == TWO_WEEKS_AGO
    assert {s.name for s in setup.simulation.scenarios} >= {"demo_bakauheni_closure", "demo_jatinegara_rice_jump"}
    assert setup.scenario_sha256 == scenario_sha256(DEMO)
    assert setup.checkpoints.path == tmp_path / "simulator" / "checkpoint.json"


def test_an_explicit_start_runs_at_fixed_speed_unless_told_to_follow_the_wall_clock(tmp_path):
    fixed = make_settings(local_dir=tmp_path, simulator_start="2026-03-01T00:00:00+07:00")
    assert not follows_wall_clock(fixed)
    assert prepare(fixed, NOW).plan.start == datetime(2026, 3, 1, tzinfo=WIB)
    assert follows_wall_clock(make_settings(simulator_start="2026-03-01T00:00+07:00", simulator_follow_wall_clock=True))
    assert not follows_wall_clock(make_settings(simulator_follow_wall_clock=False))


def test_scenario_file_none_runs_without_scenarios(tmp_path):
    setup = prepare(make_settings(local_dir=tmp_path, simulator_scenario_file="none"), NOW)
    assert setup.simulation.scenarios == () and setup.scenario_sha256 is None


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("simulator_start", "2026-03-01", "has no UTC offset"),
        ("simulator_start", "March", "is not an RFC 3339 time"),
        ("simulator_scenario_file", "/nonexistent/demo.yaml", "SIMULATOR_SCENARIO_FILE=/nonexistent/demo.yaml"),
    ],
)
def test_a_wrong_setting_stops_the_service_naming_it(tmp_path, variable, value, message):
    with pytest.raises(SystemExit, match=message):
        prepare(make_settings(local_dir=tmp_path, **{variable: value}), NOW)


def store_checkpoint(directory: Path, **changes) -> Checkpoint:
    checkpoint = Checkpoint(
        **{"seed": 42, "start": TWO_WEEKS_AGO, "scenario_sha256": scenario_sha256(DEMO),
           "reached": TWO_WEEKS_AGO + timedelta(days=3, hours=5), **changes}
    )  # fmt: skip
    CheckpointStore(directory).save(checkpoint)
    return checkpoint


def test_a_restart_days_later_keeps_the_start_and_resumes_at_the_checkpoint(tmp_path):
    stored = store_checkpoint(tmp_path / "simulator")
    setup = prepare(make_settings(local_dir=tmp_path), NOW + timedelta(days=5))  # default start moved on
    assert setup.plan.start == TWO_WEEKS_AGO and setup.plan.resume_at == stored.reached
    assert setup.plan.ignored_because is None
    assert setup.simulation.start == TWO_WEEKS_AGO
    demo_closure = next(s for s in setup.simulation.scenarios if s.name == "demo_bakauheni_closure")
    assert demo_closure.onset == TWO_WEEKS_AGO + timedelta(hours=1)  # onsets count from the kept start


def test_a_checkpoint_of_another_seed_is_ignored_saying_why(tmp_path):
    store_checkpoint(tmp_path / "simulator", seed=7)
    setup = prepare(make_settings(local_dir=tmp_path), NOW)
    assert setup.plan.resume_at is None and setup.plan.start == TWO_WEEKS_AGO
    assert setup.plan.ignored_because == "it is for SIMULATOR_SEED=7, this run has 42"


def test_a_checkpoint_of_another_scenario_file_or_start_is_ignored_saying_why(tmp_path):
    stored = store_checkpoint(tmp_path, scenario_sha256="0" * 64)
    plan = plan_run(seed=42, scenario_digest=scenario_sha256(DEMO), explicit_start=None, default_start=NOW,
                    stored=stored)  # fmt: skip
    assert plan.resume_at is None and "another scenario file (sha256 000000000000" in plan.ignored_because
    other_start = store_checkpoint(tmp_path, start=datetime(2026, 3, 1, tzinfo=WIB))
    plan = plan_run(seed=42, scenario_digest=scenario_sha256(DEMO), explicit_start=datetime(2026, 4, 1, tzinfo=WIB),
                    default_start=NOW, stored=other_start)  # fmt: skip
    assert plan.start == datetime(2026, 4, 1, tzinfo=WIB) and plan.resume_at is None
    assert plan.ignored_because == (
        "it starts at 2026-03-01T00:00:00+07:00, SIMULATOR_START is 2026-04-01T00:00:00+07:00"
    )


def test_an_unreadable_checkpoint_is_ignored_naming_the_file(tmp_path):
    (tmp_path / "simulator").mkdir()
    (tmp_path / "simulator" / "checkpoint.json").write_text("{half a checkpo")
    setup = prepare(make_settings(local_dir=tmp_path), NOW)
    assert setup.plan.resume_at is None
    assert setup.checkpoint_problem.startswith(f"{tmp_path / 'simulator' / 'checkpoint.json'} is unreadable")


def test_an_unwritable_state_dir_stops_the_service_naming_the_setting(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SystemExit, match=f"SIMULATOR_STATE_DIR={blocker / 'x'} is not writable"):
        prepare(make_settings(local_dir=tmp_path, simulator_state_dir=blocker / "x"), NOW)
