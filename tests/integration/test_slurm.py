"""Launching through submitit onto the real single-node SLURM cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.conftest import sweep_cli
from tests.e2e.test_launch_crash import kill_mid_launch_then_relaunch

pytestmark = pytest.mark.usefixtures("slurm_cluster")


def sweep_jobs(out) -> set[str]:
    """The SLURM job ids (array tasks) the sweep's runs were submitted in."""
    return {json.loads(p.read_text())["job_id"] for p in out.glob("runs/*/job.json")}


def array_of(job_ids: set[str]) -> str:
    (array,) = {j.split("_")[0] for j in job_ids}
    return array


@pytest.fixture(scope="module")
def slurm_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("slurm") / "smoke"
    planned = sweep_cli("plan", "sweep=smoke", "launcher=slurm", "launcher.slurm.mem_gb=2", "--out", out)
    assert planned.returncode == 0, planned.stderr
    launched = sweep_cli("launch", out, "--json")
    assert launched.returncode == 0, launched.stderr
    # The array is noted now: a test below deletes the job.json files.
    return out, {**json.loads(launched.stdout), "array": array_of(sweep_jobs(out))}


def test_launch_returns_while_jobs_are_queued_or_running(slurm_sweep):
    out, launched = slurm_sweep
    assert len(launched["submitted"]) == 6
    job_ids = sweep_jobs(out)
    assert len(job_ids) == 6 and all("_" in j for j in job_ids)  # one job array, one task per run
    squeue = subprocess.run(["squeue", "-h", "-j", array_of(job_ids), "-o", "%i"], capture_output=True, text=True)
    assert squeue.stdout.strip(), "launch should return before this sweep's array has finished"


def test_a_second_launch_while_running_submits_nothing_even_without_job_files(slurm_sweep):
    out, _ = slurm_sweep
    for job_file in out.glob("runs/*/job.json"):  # as if the CLI had died between sbatch and writing them
        job_file.unlink()
    assert "queued" in {r["state"] for r in json.loads(sweep_cli("status", out, "--json").stdout)["runs"]}
    again = sweep_cli("launch", out, "--json")
    assert again.returncode == 0, again.stderr
    payload = json.loads(again.stdout)
    assert payload["submitted"] == []
    assert set(payload["skipped"].values()) <= {"queued", "running", "done"}


def test_runs_finish_on_the_cluster_and_are_collected(slurm_sweep):
    out, launched = slurm_sweep
    waited = sweep_cli("wait", out, "--json")
    assert waited.returncode == 0, waited.stderr
    assert {r["state"] for r in json.loads(waited.stdout)["runs"]} == {"done"}
    for run in (out / "runs").iterdir():
        result = json.loads((run / "result.json").read_text())
        assert result["threads"] == 1  # from SLURM_CPUS_PER_TASK of launcher.slurm.cpus_per_task
    collected = sweep_cli("collect", out, "--json")
    assert collected.returncode == 0 and len(json.loads(collected.stdout)["ingested"]) == 6
    accounting = ["sacct", "-n", "-X", "-j", launched["array"], "-o", "State"]
    # Accounting works (submitit can see this sweep's jobs); a job ends a moment after its last run
    wait_for(lambda: set(subprocess.run(accounting, capture_output=True, text=True).stdout.split()) == {"COMPLETED"})
    final = sweep_cli("launch", out, "--json")
    assert json.loads(final.stdout)["submitted"] == []


def plan_one_run(out, *overrides, budget="1e11"):
    """A sweep of one run on the cluster (one size; ~10 s at budget 1e11)."""
    planned = sweep_cli("plan", "launcher=slurm", f"sweep.budgets=[{budget}]", "sweep.sizes_per_budget=1", *overrides,
                        "--out", out, "--json")  # fmt: skip
    assert planned.returncode == 0, planned.stderr
    return json.loads(planned.stdout)["runs"][0]["run_id"]


def wait_for(predicate, timeout=120.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The run the interruption tests cut, trained whole in-process: (run id, final loss)."""
    out = tmp_path_factory.mktemp("whole") / "whole"
    run_id = plan_one_run(out, budget="3e11")  # ~30 s: long enough to interrupt mid-run
    assert sweep_cli("launch", out, "--executor", "debug").returncode == 0
    return run_id, json.loads((out / "runs" / run_id / "result.json").read_text())["loss"]


def launch_and_wait_until(out, run_id, ready):
    """Launch a one-run sweep on the cluster; return the run dir and job id once ready(run dir)."""
    assert plan_one_run(out, budget="3e11") == run_id  # same spec, same id, wherever it runs
    assert sweep_cli("launch", out).returncode == 0
    run = out / "runs" / run_id
    wait_for(lambda: ready(run))
    return run, json.loads((run / "job.json").read_text())["job_id"]


def release_when_requeued(job_id):
    wait_for(lambda: "PENDING" in subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"],
                                                 capture_output=True, text=True).stdout)  # fmt: skip
    subprocess.run(["scontrol", "update", f"jobid={job_id}", "StartTime=now"], check=True)  # skip SLURM's 2-min hold


def test_a_requeued_job_resumes_and_ends_with_the_uninterrupted_loss(tmp_path, uninterrupted):
    run_id, whole_loss = uninterrupted
    run, job_id = launch_and_wait_until(tmp_path / "cut", run_id, lambda run: (run / "checkpoint.pt").exists())
    subprocess.run(["scontrol", "requeue", job_id], check=True)  # a hard requeue: resumes from the periodic checkpoint
    release_when_requeued(job_id)
    waited = sweep_cli("wait", run.parent.parent, "--json")
    assert [r["state"] for r in json.loads(waited.stdout)["runs"]] == ["done"]
    history = [h["state"] for h in json.loads((run / "status.json").read_text())["history"]]
    assert history.count("running") == 2  # it really was interrupted and restarted
    assert json.loads((run / "result.json").read_text())["loss"] == pytest.approx(whole_loss, rel=1e-6)


def test_a_preemption_signal_checkpoints_at_that_step_and_the_requeued_job_resumes_there(tmp_path, uninterrupted):
    run_id, whole_loss = uninterrupted

    def training(run):
        status = run / "status.json"
        return status.exists() and json.loads(status.read_text())["state"] == "running" and (run / "curve.csv").exists()

    run, job_id = launch_and_wait_until(tmp_path / "preempted", run_id, training)
    # What SLURM sends before preempting a job or at its time limit (sbatch --signal=USR2@90).
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
    release_when_requeued(job_id)
    waited = sweep_cli("wait", run.parent.parent, "--json")
    assert [r["state"] for r in json.loads(waited.stdout)["runs"]] == ["done"]
    status = json.loads((run / "status.json").read_text())
    assert [h["state"] for h in status["history"]] == ["queued", "running", "queued", "running", "done"]
    stopped_at = status["interrupted_at_step"]
    eval_steps = [int(line.split(",")[0]) for line in (run / "curve.csv").read_text().splitlines()[1:]]
    assert stopped_at not in eval_steps  # checkpointed on the signal, not at the last periodic checkpoint
    assert json.loads((run / "result.json").read_text())["loss"] == pytest.approx(whole_loss, rel=1e-6)


def test_out_of_memory_and_sigkill_are_recorded_with_reasons_and_retried(tmp_path):
    oom = tmp_path / "oom"
    oom_id = plan_one_run(oom, "launcher.slurm.mem_gb=0.1")
    assert sweep_cli("launch", oom).returncode == 0
    status = json.loads(sweep_cli("wait", oom, "--json").stdout)["runs"][0]
    assert status["state"] == "failed" and "OUT_OF_MEMORY" in status["reason"], status

    killed = tmp_path / "killed"
    killed_id = plan_one_run(killed, "sweep.seeds=[1]")
    assert sweep_cli("launch", killed).returncode == 0
    status_file = killed / "runs" / killed_id / "status.json"
    wait_for(lambda: status_file.exists() and json.loads(status_file.read_text())["state"] == "running")
    os.kill(json.loads(status_file.read_text())["pid"], signal.SIGKILL)
    status = json.loads(sweep_cli("wait", killed, "--json").stdout)["runs"][0]
    assert status["state"] == "failed" and "SLURM job" in status["reason"], status

    retried = sweep_cli("launch", killed, "--retry-failed", "--json")
    assert json.loads(retried.stdout)["submitted"] == [killed_id]
    status = json.loads(sweep_cli("wait", killed, "--json").stdout)["runs"][0]
    assert status["state"] == "done"
    assert json.loads(sweep_cli("launch", oom, "--json").stdout)["submitted"] == []  # failed stays failed
    assert oom_id != killed_id


def test_relaunch_after_the_cli_is_killed_mid_launch_trains_each_run_once_on_slurm(tmp_path):
    kill_mid_launch_then_relaunch(tmp_path / "crash", "launcher=slurm", "launcher.slurm.mem_gb=2")


def test_cancel_stops_queued_and_running_jobs(tmp_path):
    out = tmp_path / "c"
    planned = sweep_cli("plan", "sweep=smoke", "launcher=slurm", "--out", out)
    assert planned.returncode == 0
    assert sweep_cli("launch", out).returncode == 0
    array = array_of(sweep_jobs(out))
    cancelled = json.loads(sweep_cli("cancel", out, "--json").stdout)["cancelled"]
    assert len(cancelled) == 6
    squeue = ["squeue", "-h", "-j", array]
    wait_for(lambda: not subprocess.run(squeue, capture_output=True, text=True).stdout.strip())
    states = json.loads(sweep_cli("status", out, "--json").stdout)["runs"]
    assert {s["state"] for s in states} == {"failed"}
    # Ours ("cancelled by `sweep cancel`"), or SLURM's ("ended CANCELLED") where a job that was just
    # starting wrote `running` after the cancel and was then killed.
    assert all("cancel" in s["reason"].lower() for s in states)


def test_a_proposals_target_launched_on_the_cluster_is_recorded_as_a_target(tmp_path):
    out = tmp_path / "target"
    overrides = ["launcher=slurm", "launcher.slurm.mem_gb=2", "launcher.trainer=noop", "fit.bootstrap=10"]
    assert sweep_cli("plan", *overrides, "--out", out).returncode == 0
    assert sweep_cli("launch", out, "--executor", "debug").returncode == 0  # the proxies: in-process, at once
    assert sweep_cli("collect", out).returncode == 0
    proposal = json.loads(sweep_cli("propose", out, "--json").stdout)
    launched = sweep_cli("launch", out, "--proposal", proposal["config"], "--executor", "slurm", "--json")
    assert launched.returncode == 0, launched.stderr
    assert json.loads(launched.stdout)["submitted"] == [proposal["run_id"]]
    run = out / "runs" / proposal["run_id"]
    assert json.loads((run / "job.json").read_text())["executor"] == "slurm"
    waited = {r["run_id"]: r for r in json.loads(sweep_cli("wait", out, "--json").stdout)["runs"]}
    assert (waited[proposal["run_id"]]["state"], waited[proposal["run_id"]]["reason"]) == ("done", "target")
    assert sweep_cli("collect", out).returncode == 0
    after = json.loads(sweep_cli("propose", out, "--json").stdout)
    (check,) = after["trained_targets"]
    assert check["run_id"] == proposal["run_id"] and check["proposal_id"] == proposal["proposal_id"]
    spec = json.loads((run / "spec.json").read_text())
    assert spec["role"] == "target" and json.loads((run / "status.json").read_text())["executor"] == "slurm"


def plan_shared_trunks(out, *overrides) -> dict[str, str]:
    """A shared-trunk sweep of the no-op trainer (4 trunks, 6 branches); each job sleeps 5 s first,
    so that a trunk's job is seen running while its branches wait. Returns run id -> its trunk ("")."""
    planned = sweep_cli("plan", "sweep=smoke", "train.schedule=wsd", "sweep.share_trunks=true", "launcher=slurm",
                        "launcher.slurm.mem_gb=2", "launcher.trainer=noop", "launcher.slurm.setup=[sleep 5]",
                        *overrides, "--out", out, "--json")  # fmt: skip
    assert planned.returncode == 0, planned.stderr
    return {r["run_id"]: r["parent"] for r in json.loads(planned.stdout)["runs"]}


def launch_json(out, *flags) -> dict:
    launched = sweep_cli("launch", out, "--json", *flags)
    assert launched.returncode == 0, launched.stderr
    return json.loads(launched.stdout)


def run_jobs(out) -> dict[str, str]:
    """Run id -> the SLURM job (array task) it was submitted in."""
    return {p.parent.name: json.loads(p.read_text())["job_id"] for p in out.glob("runs/*/job.json")}


def queue(job_ids) -> dict[str, tuple[str, str, str]]:
    """squeue's view of these jobs, array tasks one by one: job id -> (state, dependency, reason)."""
    arrays = sorted({j.split("_")[0] for j in job_ids})
    squeue = ["squeue", "-h", "-r", "-j", ",".join(arrays), "-o", "%i|%T|%E|%r"]
    lines = subprocess.run(squeue, capture_output=True, text=True).stdout.splitlines()
    return {job: (state, dependency, reason) for job, state, dependency, reason in (line.split("|") for line in lines)}


def history(out, run_id) -> list[dict]:
    return json.loads((out / "runs" / run_id / "status.json").read_text())["history"]


def started_after_trunk_finished(out, branch, trunk) -> bool:
    done = max(h["time"] for h in history(out, trunk) if h["state"] == "done")
    return min(h["time"] for h in history(out, branch) if h["state"] == "running") >= done


def wait_states(out) -> dict[str, dict]:
    waited = sweep_cli("wait", out, "--json")
    assert waited.returncode == 0, waited.stderr
    return {r["run_id"]: r for r in json.loads(waited.stdout)["runs"]}


def test_branches_wait_for_their_trunks_job_and_a_relaunch_submits_nothing_twice(tmp_path):
    out = tmp_path / "wsd"
    trunk_of = plan_shared_trunks(out)
    assert sorted(launch_json(out)["submitted"]) == sorted(trunk_of)
    jobs = run_jobs(out)
    branches_of = {t: [r for r, p in trunk_of.items() if p == t] for t, parent in trunk_of.items() if not parent}
    queued = queue(jobs.values())
    for branch, trunk in trunk_of.items():
        if trunk:
            assert queued[jobs[branch]][1] == f"afterok:{jobs[trunk]}(unfulfilled)"
    assert not {jobs[b] for b in trunk_of if trunk_of[b]} & {jobs[t] for t in branches_of}  # never in a trunk's job

    def a_trunk_runs_while_its_branches_wait() -> bool:
        now = queue(jobs.values())
        return any(
            now.get(jobs[trunk], ("",))[0] == "RUNNING"
            and all(now.get(jobs[b], ("",))[0::2] == ("PENDING", "Dependency") for b in branches)
            for trunk, branches in branches_of.items()
        )

    wait_for(a_trunk_runs_while_its_branches_wait)
    again = launch_json(out)
    assert again["submitted"] == [] and set(again["skipped"].values()) <= {"queued", "running", "done"}
    assert {r["state"] for r in wait_states(out).values()} == {"done"}
    for run_id, trunk in trunk_of.items():
        assert [h["state"] for h in history(out, run_id)] == ["queued", "running", "done"]  # trained once
        assert not trunk or started_after_trunk_finished(out, run_id, trunk)
    assert launch_json(out)["submitted"] == []


def test_a_failed_trunk_fails_its_branches_with_its_reason_and_a_retry_trains_them(tmp_path):
    out = tmp_path / "failing"
    trunk_of = plan_shared_trunks(out)
    branches_of = {t: [r for r, p in trunk_of.items() if p == t] for t, parent in trunk_of.items() if not parent}
    cancelled, broken = [t for t, branches in branches_of.items() if len(branches) == 2]
    launch_json(out)
    jobs = run_jobs(out)
    # Its job dies while it runs: SLURM cancels its branches' jobs (a trunk's task cancelled while still
    # pending loses its dependents' dependency instead, and they start and fail without training).
    wait_for(lambda: queue([jobs[cancelled]]).get(jobs[cancelled], ("",))[0] == "RUNNING")
    subprocess.run(["scancel", jobs[cancelled]], check=True)
    spec = out / "runs" / broken / "spec.json"
    spec_text = spec.read_text()
    spec.unlink()  # it fails inside a job that succeeds: its branches' jobs start and fail them

    states = wait_states(out)
    assert f"job {jobs[cancelled]} ended" in states[cancelled]["reason"]  # CANCELLED, once accounting has the task
    assert states[broken]["reason"] == "spec.json is missing"
    for trunk in (cancelled, broken):
        for branch in branches_of[trunk]:
            assert (states[branch]["state"], states[branch]["reason"]) == (
                "failed", f"trunk {trunk} failed: {states[trunk]['reason']}"
            )  # fmt: skip
            assert [h["state"] for h in history(out, branch)] == ["queued", "failed"]  # never trained
            assert not (out / "runs" / branch / "result.json").exists()
    others = set(trunk_of) - {cancelled, broken, *branches_of[cancelled], *branches_of[broken]}
    assert {states[r]["state"] for r in others} == {"done"}
    # SLURM cancelled its branches' jobs before they started (an array that never ran is one record)
    arrays = {jobs[b].split("_")[0] for b in branches_of[cancelled]}
    accounting = ["sacct", "-n", "-X", "-j", ",".join(arrays), "-o", "State"]
    wait_for(lambda: set(subprocess.run(accounting, capture_output=True, text=True).stdout.split()) == {"CANCELLED"})

    spec.write_text(spec_text)
    retried = launch_json(out, "--retry-failed")
    assert retried["submitted"][:2] == [r for r in trunk_of if r in (cancelled, broken)]  # the trunks first
    assert sorted(retried["submitted"][2:]) == sorted([*branches_of[cancelled], *branches_of[broken]])
    assert {r["state"] for r in wait_states(out).values()} == {"done"}
    for trunk in (cancelled, broken):
        assert all(started_after_trunk_finished(out, branch, trunk) for branch in branches_of[trunk])


def test_a_requeued_trunk_resumes_while_its_branches_wait_and_they_end_where_runs_alone_end(tmp_path):
    from tests.unit.launch.test_trunks import trunk_sweep

    out = tmp_path / "requeue"
    # A trunk long enough (~1100 steps, 15-40 ms each) to outlast SLURM's 10 s KillWait after the requeue
    tiny = ["run.tokens=3000000", "train.eval_points=8"]
    sweep, family = trunk_sweep(out, "launcher=slurm", "launcher.slurm.mem_gb=2", *tiny, alone=True)
    assert len(launch_json(out)["submitted"]) == 5
    jobs = run_jobs(out)
    trunk, branches = family.trunk.run_id, [b.run_id for b in family.branches]
    wait_for(lambda: (out / "runs" / trunk / "checkpoint.pt").exists())
    subprocess.run(["scontrol", "requeue", jobs[trunk]], check=True)  # a hard requeue: resumes from its checkpoint
    wait_for(lambda: queue([jobs[trunk]]).get(jobs[trunk], ("",))[0] == "PENDING")
    now = queue(jobs[b] for b in branches)
    assert all(now[jobs[b]][:2] == ("PENDING", f"afterok:{jobs[trunk]}(unfulfilled)") for b in branches)  # still wait
    subprocess.run(["scontrol", "update", f"jobid={jobs[trunk]}", "StartTime=now"], check=True)  # skip the 2-min hold
    assert {r["state"] for r in wait_states(out).values()} == {"done"}
    assert [h["state"] for h in history(out, trunk)].count("running") == 2  # it really was cut and restarted
    for branch, alone in zip(family.branches, family.alone, strict=True):
        assert started_after_trunk_finished(out, branch.run_id, trunk)
        loss = sweep.run(branch.run_id).read_result()["loss"]
        assert loss == pytest.approx(sweep.run(alone.run_id).read_result()["loss"], rel=1e-6)
    assert launch_json(out)["submitted"] == []
