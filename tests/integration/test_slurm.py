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
    states = subprocess.run(accounting, capture_output=True, text=True).stdout.split()
    assert states and set(states) == {"COMPLETED"}  # accounting works: submitit can see this sweep's jobs
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
