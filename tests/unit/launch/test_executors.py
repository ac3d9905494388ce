import pytest

from sweep.config import compose
from sweep.launch.executors import balance, launch, run_flops, slurm_bundles
from sweep.plan.grids import make_plan
from sweep.sweepdir import SweepDir


@pytest.fixture
def sweep(tmp_path):
    config = compose(["sweep=smoke", "sweep.seeds=[0,1,2,3]"])
    sweep = SweepDir.create(tmp_path / "s", config)
    sweep.add_runs(make_plan(config).specs)
    return sweep


def test_balance_spreads_flops_evenly_and_keeps_every_run_once(sweep):
    runs = sweep.runs()
    bundles = balance(runs, 3)
    assert sorted(r for b in bundles for r in b) == sorted(r.run_id for r in runs)
    flops = {r.run_id: run_flops(r) for r in runs}
    loads = [sum(flops[r] for r in bundle) for bundle in bundles]
    assert max(loads) - min(loads) <= max(flops.values())


def test_short_runs_are_bundled_into_jobs_of_at_least_the_minimum(sweep):
    launcher = sweep.config().launcher
    runs = sweep.runs()
    assert slurm_bundles(runs, launcher) == [[r.run_id] for r in runs]  # default: one array task per run
    launcher.slurm.min_job_seconds = 10.0
    launcher.flops_per_second = 1e10
    bundles = slurm_bundles(runs, launcher)
    total_seconds = sum(run_flops(r) for r in runs) / 1e10
    assert len(bundles) == int(total_seconds // 10)
    assert 1 < len(bundles) < len(runs)


def test_a_launch_of_named_runs_submits_those_alone(tmp_path):
    config = compose(["sweep=smoke", "launcher.trainer=noop"])
    sweep = SweepDir.create(tmp_path / "s", config, make_plan(config).specs)
    first, *others = sweep.runs()
    report = launch(sweep, "debug", only={first.run_id})
    assert report.submitted == [first.run_id] and report.skipped == {}
    assert first.state == "done" and {r.state for r in others} == {"planned"}
    assert launch(sweep, "debug", only={first.run_id}).skipped == {first.run_id: "done"}
