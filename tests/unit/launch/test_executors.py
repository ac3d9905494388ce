import pytest

from sweep.config import compose
from sweep.launch.executors import balance, launch, make_executor, run_flops, slurm_bundles
from sweep.plan.grids import make_plan
from sweep.sweepdir import SweepDir
from tests.unit.launch.test_trunks import trunk_sweep


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


def test_slurm_jobs_wait_for_their_trunks_job_and_die_with_it(tmp_path):
    launcher = compose(["launcher=slurm"]).launcher
    script = make_executor("slurm", tmp_path, launcher, "n", after="12_3")._executor._make_submission_file_text(
        "x", "u"
    )
    assert "#SBATCH --dependency=afterok:12_3" in script and "#SBATCH --kill-on-invalid-dep=yes" in script
    alone = make_executor("slurm", tmp_path, launcher, "n")._executor._make_submission_file_text("x", "u")
    assert "dependency" not in alone and "kill-on-invalid-dep" not in alone


def history(run_dir):
    return [h["state"] for h in run_dir.read_status()["history"]]


def started_after_trunk_finished(branch, trunk):
    done = max(h["time"] for h in trunk.read_status()["history"] if h["state"] == "done")
    return min(h["time"] for h in branch.read_status()["history"] if h["state"] == "running") >= done


def test_debug_trains_trunks_first_and_a_failed_trunk_fails_its_branches_until_a_retry(tmp_path, monkeypatch):
    from sweep.launch import noop

    sweep, family = trunk_sweep(tmp_path / "s", "launcher.trainer=noop")
    trunk, branches = sweep.run(family.trunk.run_id), [sweep.run(b.run_id) for b in family.branches]
    trains = noop.noop_train

    def trunk_crashes(spec, run_dir):
        if spec.role == "trunk":
            raise RuntimeError("the trunk's node went down")
        return trains(spec, run_dir)

    monkeypatch.setattr(noop, "noop_train", trunk_crashes)
    assert launch(sweep, "debug").submitted == [trunk.run_id, *(b.run_id for b in branches)]
    assert trunk.read_status()["reason"] == "RuntimeError: the trunk's node went down"
    for branch in branches:  # failed without training, with the trunk's reason
        assert (
            branch.read_status()["reason"] == f"trunk {trunk.run_id} failed: RuntimeError: the trunk's node went down"
        )
        assert history(branch) == ["queued", "failed"] and not branch.result_file.exists()

    monkeypatch.undo()
    assert launch(sweep, "debug").submitted == []  # failed runs wait for --retry-failed
    retried = launch(sweep, "debug", retry_failed=True)
    assert retried.submitted == [trunk.run_id, *(b.run_id for b in branches)]
    assert {r.state for r in sweep.runs()} == {"done"}
    assert all(started_after_trunk_finished(branch, trunk) for branch in branches)


def test_a_branch_of_a_failed_trunk_fails_at_launch_and_one_of_an_unlaunched_trunk_waits(tmp_path):
    sweep, family = trunk_sweep(tmp_path / "s", "launcher.trainer=noop")
    trunk, (first, second) = sweep.run(family.trunk.run_id), [sweep.run(b.run_id) for b in family.branches]
    report = launch(sweep, "debug", only={first.run_id})  # its trunk is planned, and not named
    assert report.submitted == [] and report.skipped == {first.run_id: f"waiting for trunk {trunk.run_id} (planned)"}
    assert first.state == "planned"
    trunk.set_state("diverged", reason="non-finite training loss at step 7")
    report = launch(sweep, "debug")
    assert report.submitted == [] and report.skipped[first.run_id] == report.skipped[second.run_id] == "failed"
    assert second.read_status()["reason"] == f"trunk {trunk.run_id} failed: non-finite training loss at step 7"
