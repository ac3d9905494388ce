"""The local queue with real worker processes (no-op trainer): slots, pinning, restarts, kills."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sweep.config import compose
from sweep.launch import localqueue
from sweep.launch.jobstate import effective_state
from sweep.launch.noop import noop_train
from sweep.rundir import RunDir
from sweep.sweepdir import SweepDir
from tests.conftest import sweep_cli
from tests.unit.launch.test_executors import history, started_after_trunk_finished
from tests.unit.launch.test_trunks import trunk_sweep

CORES = sorted(os.sched_getaffinity(0))


def slots(*overrides):
    return localqueue.machine_slots(compose(list(overrides)).launcher)


def test_cpu_slots_split_the_cores_and_gpu_slots_name_their_gpu():
    assert [s.cpus for s in slots()] == [(c,) for c in CORES]
    assert [s.cpus for s in slots(f"launcher.cpus_per_run={len(CORES)}")] == [tuple(CORES)]
    assert len(slots("launcher.parallel=5")) == 5  # more slots than cores share them
    gpu = slots("launcher.gpus=[0,3]", "launcher.runs_per_gpu=2")
    assert [(s.name, s.gpu) for s in gpu] == [("gpu0.0", 0), ("gpu0.1", 0), ("gpu3.0", 3), ("gpu3.1", 3)]
    assert all(set(s.cpus) <= set(CORES) for s in gpu)


def plan(out, slots_dir, *overrides):
    planned = sweep_cli("plan", "sweep=smoke", "launcher.trainer=noop", f"launcher.slots_dir={slots_dir}",
                        *overrides, "--out", out)  # fmt: skip
    assert planned.returncode == 0, planned.stderr


def launch(out, *flags):
    launched = sweep_cli("launch", out, "--executor", "local", "--json", *flags)
    assert launched.returncode == 0, launched.stderr
    return json.loads(launched.stdout)


def states(out):
    return {r["run_id"]: r["state"] for r in json.loads(sweep_cli("status", out, "--json").stdout)["runs"]}


def wait_for(predicate, timeout=60.0):
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, "timed out"
        time.sleep(0.1)


@pytest.fixture
def held_slot(tmp_path):
    """The one slot of launcher.parallel=1, held by this test as another sweep's worker would."""
    slots_dir = tmp_path / "slots"
    slots_dir.mkdir()
    handle = open(slots_dir / "cpu-slot0.lock", "a")  # noqa: SIM115
    fcntl.flock(handle, fcntl.LOCK_EX)
    yield slots_dir, handle
    handle.close()


def test_runs_wait_for_a_free_slot_and_a_relaunch_finds_the_queue(tmp_path, held_slot):
    slots_dir, handle = held_slot
    out = tmp_path / "s"
    plan(out, slots_dir, "launcher.parallel=1")
    first = launch(out)
    assert len(first["submitted"]) == 6 and len(first["jobs"]) == 1
    time.sleep(2)
    assert set(states(out).values()) == {"queued"}  # the worker lives, waiting for the slot
    again = launch(out)
    assert again["submitted"] == [] and again["jobs"] == []  # no second queue
    assert json.loads(sweep_cli("status", out, "--json").stdout)["local_workers"] == [int(first["jobs"][0])]

    handle.close()  # the slot frees: the waiting worker takes it and drains the queue
    waited = json.loads(sweep_cli("wait", out, "--json").stdout)
    assert {r["state"] for r in waited["runs"]} == {"done"}
    pids = {json.loads((run / "status.json").read_text())["pid"] for run in (out / "runs").iterdir()}
    assert pids == {int(first["jobs"][0])}
    wait_for(lambda: not localqueue.live_workers(SweepDir(out)))  # and exits when it is empty


def test_gpu_slots_pin_each_run_to_its_gpu(tmp_path):
    out = tmp_path / "g"
    plan(out, tmp_path / "slots", "launcher.gpus=[0,1]")
    assert len(launch(out)["jobs"]) == 2
    assert {r["state"] for r in json.loads(sweep_cli("wait", out, "--json").stdout)["runs"]} == {"done"}
    for run in (out / "runs").iterdir():
        status = json.loads((run / "status.json").read_text())  # what the worker process itself saw
        assert status["cuda_visible_devices"] == status["slot"][3] and status["slot"] in ("gpu0.0", "gpu1.0")
        assert len(status["cpus"]) == max(1, len(CORES) // 2)


def test_runs_of_a_killed_queue_are_lost_and_a_relaunch_runs_them(tmp_path, held_slot):
    slots_dir, handle = held_slot
    out = tmp_path / "k"
    plan(out, slots_dir, "launcher.parallel=1")
    (worker,) = launch(out)["jobs"]
    os.kill(int(worker), signal.SIGKILL)
    wait_for(lambda: set(states(out).values()) == {"lost"})
    assert len(launch(out)["submitted"]) == 6
    handle.close()
    assert {r["state"] for r in json.loads(sweep_cli("wait", out, "--json").stdout)["runs"]} == {"done"}


def test_a_run_whose_worker_died_is_failed_with_the_reason(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run = RunDir(tmp_path / "sweep" / "runs" / "r")
    run.set_state("running", executor="local", job_id=str(dead.pid), pid=dead.pid)
    assert effective_state(run) == "failed"
    assert f"local job {dead.pid} ended before the run finished" in run.read_status()["reason"]


def test_cancel_stops_the_workers_and_fails_the_waiting_runs(tmp_path, held_slot):
    slots_dir, _ = held_slot
    out = tmp_path / "c"
    plan(out, slots_dir, "launcher.parallel=1")
    assert len(launch(out)["jobs"]) == 1
    cancelled = json.loads(sweep_cli("cancel", out, "--json").stdout)["cancelled"]
    assert len(cancelled) == 6
    assert not localqueue.live_workers(SweepDir(out))
    assert set(states(out).values()) == {"failed"}


def test_runs_are_queued_not_lost_the_moment_launch_returns(tmp_path):
    from sweep import api

    out = tmp_path / "now"
    plan(out, tmp_path / "slots")
    api.launch(out, "local")  # in-process: the workers have had no time to start
    assert {effective_state(r) for r in SweepDir(out).runs()} <= {"queued", "running", "done"}
    assert {r["state"] for r in json.loads(sweep_cli("wait", out, "--json").stdout)["runs"]} == {"done"}


def json_wait(out):
    waited = sweep_cli("wait", out, "--json")
    assert waited.returncode == 0, waited.stderr
    return {r["run_id"]: r["state"] for r in json.loads(waited.stdout)["runs"]}


def reasons(out):
    return {r["run_id"]: r["reason"] for r in json.loads(sweep_cli("status", out, "--json").stdout)["runs"]}


def test_a_run_without_its_spec_fails_alone_and_the_rest_train(tmp_path):
    out = tmp_path / "m"
    plan(out, tmp_path / "slots")
    victim = sorted((out / "runs").iterdir())[0].name
    (out / "runs" / victim / "spec.json").unlink()
    first = launch(out)
    assert len(first["submitted"]) == 5 and first["skipped"] == {victim: "failed"}
    waited = {r["run_id"]: r["state"] for r in json.loads(sweep_cli("wait", out, "--json").stdout)["runs"]}
    assert waited.pop(victim) == "failed" and set(waited.values()) == {"done"}
    assert "spec.json is missing" in reasons(out)[victim]
    again = launch(out)  # what really happened: nothing left to submit, no new workers
    assert again["submitted"] == [] and again["jobs"] == []


def test_a_spec_lost_while_queued_fails_that_run_in_the_worker_and_retries_stop_at_the_cap(tmp_path):
    slots_dir = tmp_path / "slots"
    out = tmp_path / "w"
    plan(out, slots_dir, "launcher.parallel=1", "launcher.max_attempts=2")
    victim = sorted((out / "runs").iterdir())[0]
    spec = (victim / "spec.json").read_text()
    for attempt, flags in enumerate([(), ("--retry-failed",)], start=1):
        slots_dir.mkdir(exist_ok=True)
        with open(slots_dir / "cpu-slot0.lock", "a") as slot:  # held: the worker waits
            fcntl.flock(slot, fcntl.LOCK_EX)
            assert victim.name in launch(out, *flags)["submitted"]
            (victim / "spec.json").unlink()  # after the launch looked, before the worker gets there
        waited = {r["run_id"]: r["state"] for r in json.loads(sweep_cli("wait", out, "--json").stdout)["runs"]}
        assert waited.pop(victim.name) == "failed" and set(waited.values()) == {"done"}, attempt
        assert "spec.json is missing" in reasons(out)[victim.name]
        assert launch(out)["submitted"] == []  # failed runs wait for --retry-failed
        (victim / "spec.json").write_text(spec)
    assert launch(out, "--retry-failed")["submitted"] == []  # the cap: 2 attempts made
    history = [h["state"] for h in json.loads((victim / "status.json").read_text())["history"]]
    assert history.count("queued") == 2


def test_two_launches_at_once_submit_each_run_once(tmp_path):
    out = tmp_path / "two"
    plan(out, tmp_path / "slots", "sweep.seeds=[0,1,2,3]")
    command = [sys.executable, "-m", "sweep.cli", "launch", str(out), "--executor", "local", "--json"]
    env = {**os.environ, "WANDB_MODE": "disabled"}
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    outputs = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    submitted = [run for o in outputs for run in o["submitted"]]
    assert len(submitted) == len(set(submitted)) == 24
    assert sorted(len(o["submitted"]) for o in outputs) == [0, 24]
    assert {r["state"] for r in json.loads(sweep_cli("wait", out, "--json").stdout)["runs"]} == {"done"}
    for run in (out / "runs").iterdir():
        history = [h["state"] for h in json.loads((run / "status.json").read_text())["history"]]
        assert history == ["queued", "running", "done"], history


def test_a_finished_run_with_a_torn_status_is_never_trained_again(tmp_path):
    out = tmp_path / "t"
    plan(out, tmp_path / "slots")
    launch(out)
    assert {r["state"] for r in json.loads(sweep_cli("wait", out, "--json").stdout)["runs"]} == {"done"}
    assert sweep_cli("collect", out).returncode == 0
    run = sorted((out / "runs").iterdir())[0]
    result = (run / "result.json").read_bytes()
    (run / "status.json").write_text('{"state": "do')
    assert launch(out)["submitted"] == []
    assert (run / "result.json").read_bytes() == result
    assert sweep_cli("collect", out).returncode == 0
    from sweep.store import Store

    with Store(out / "results.db") as store:
        assert set(store.runs()["state"]) == {"done"} and store.runs()["loss"].notna().all()


def test_a_debug_or_foreground_run_in_a_live_process_is_not_failed(tmp_path):
    run = RunDir(tmp_path / "sweep" / "runs" / "0123456789ab")
    run.set_state("queued", executor="debug", job_id="")
    run.set_state("running", pid=os.getpid(), job_id=str(os.getpid()))
    assert effective_state(run) == "running"


def test_a_slurm_controller_that_does_not_answer_is_not_a_dead_job(tmp_path, monkeypatch):
    from sweep.launch import jobstate

    def squeue(args, **kwargs):
        return subprocess.CompletedProcess(args, 1, "", "slurm_load_jobs error: Socket timed out on send/recv")

    monkeypatch.setattr(jobstate.shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(jobstate.subprocess, "run", squeue)
    assert jobstate.job_alive({"executor": "slurm", "job_id": "12_3"}, SweepDir(tmp_path))
    monkeypatch.setattr(
        jobstate.subprocess,
        "run",
        lambda args, **kw: subprocess.CompletedProcess(args, 1, "", "Invalid job id specified"),
    )
    assert not jobstate.job_alive({"executor": "slurm", "job_id": "12_3"}, SweepDir(tmp_path))


def cpu_seconds(pid: int) -> float:
    utime, stime = map(int, Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].split()[11:13])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def trunk_training_elsewhere(tmp_path):
    """A sweep of a trunk and two branches whose trunk is being trained by another process (a stand-in
    that sleeps), and a one-slot queue holding its branches: (sweep dir, family, that process, the worker)."""
    out = tmp_path / "s"
    sweep, family = trunk_sweep(out, "launcher.trainer=noop", f"launcher.slots_dir={tmp_path / 'slots'}",
                                "launcher.parallel=1")  # fmt: skip
    trainer = subprocess.Popen(["sleep", "120"])
    sweep.run(family.trunk.run_id).set_state("running", executor="local", job_id=str(trainer.pid), pid=trainer.pid)
    launched = launch(out)
    assert sorted(launched["submitted"]) == sorted(b.run_id for b in family.branches)
    assert launched["skipped"] == {family.trunk.run_id: "running"}
    (worker,) = launched["jobs"]
    return sweep, family, trainer, int(worker)


def test_branches_wait_while_their_trunk_runs_without_spinning_and_start_once_it_is_done(tmp_path):
    sweep, family, trainer, worker = trunk_training_elsewhere(tmp_path)
    time.sleep(2)  # the worker has started and found nothing it may take
    before = cpu_seconds(worker)
    time.sleep(3)
    assert cpu_seconds(worker) - before < 0.5  # it polls; a busy loop would burn the whole 3 s
    assert {b.run_id: "queued" for b in family.branches}.items() <= states(sweep.path).items()
    assert {reasons(sweep.path)[b.run_id] for b in family.branches} == {f"waits for trunk {family.trunk.run_id}"}
    assert localqueue.live_workers(sweep) == [worker]  # and it does not leave while they wait

    trunk = sweep.run(family.trunk.run_id)
    noop_train(family.trunk, trunk)  # the trunk's trainer finishes
    trunk.set_state("done")
    trainer.kill()
    trainer.wait()
    assert set(json_wait(sweep.path).values()) == {"done"}
    for branch in family.branches:
        run = sweep.run(branch.run_id)
        assert run.read_status()["pid"] == worker
        assert started_after_trunk_finished(run, trunk)
    wait_for(lambda: not localqueue.live_workers(sweep))


def test_a_trunk_that_dies_fails_its_waiting_branches_and_a_retry_trains_it_then_them(tmp_path):
    sweep, family, trainer, worker = trunk_training_elsewhere(tmp_path)
    trainer.kill()
    trainer.wait()
    assert set(json_wait(sweep.path).values()) == {"failed"}
    trunk = sweep.run(family.trunk.run_id)
    died = f"local job {trainer.pid} ended before the run finished (killed or crashed)"
    assert reasons(sweep.path) == {trunk.run_id: died, **{b.run_id: f"trunk {trunk.run_id} failed: {died}"
                                                          for b in family.branches}}  # fmt: skip
    wait_for(lambda: not localqueue.live_workers(sweep))  # nothing left that will start: the worker leaves
    for branch in family.branches:
        assert history(sweep.run(branch.run_id)) == ["queued", "failed"]

    retried = launch(sweep.path, "--retry-failed")
    assert retried["submitted"] == [trunk.run_id, *(b.run_id for b in family.branches)]
    assert set(json_wait(sweep.path).values()) == {"done"}
    for branch in family.branches:
        run = sweep.run(branch.run_id)
        assert history(run) == ["queued", "failed", "queued", "running", "done"]
        assert started_after_trunk_finished(run, trunk)
    assert launch(sweep.path, "--retry-failed")["submitted"] == []  # nothing is trained twice


def test_a_trunk_and_its_branches_train_in_the_queue_and_each_branch_ends_where_its_run_alone_ends(tmp_path):
    out = tmp_path / "real"
    sweep, family = trunk_sweep(out, f"launcher.slots_dir={tmp_path / 'slots'}", "launcher.parallel=2", alone=True)
    assert len(launch(out)["submitted"]) == 5
    assert set(json_wait(out).values()) == {"done"}
    trunk = sweep.run(family.trunk.run_id)
    for branch, alone in zip(family.branches, family.alone, strict=True):
        run = sweep.run(branch.run_id)
        assert started_after_trunk_finished(run, trunk)
        assert run.read_result()["loss"] == pytest.approx(sweep.run(alone.run_id).read_result()["loss"], rel=1e-6)
        assert run.read_result()["steps"] == alone.steps


def test_a_shared_trunk_plan_trains_every_trunk_before_its_branches_in_the_queue(tmp_path):
    out = tmp_path / "wsd"
    plan(out, tmp_path / "slots", "train.schedule=wsd", "sweep.share_trunks=true")
    sweep = SweepDir(out)
    trunk_of = {r.run_id: r.read_spec().parent for r in sweep.runs()}
    assert len(launch(out)["submitted"]) == len(trunk_of) == 10
    assert set(json_wait(out).values()) == {"done"}
    for run_id, parent in trunk_of.items():
        assert history(sweep.run(run_id)) == ["queued", "running", "done"]
        assert not parent or started_after_trunk_finished(sweep.run(run_id), sweep.run(parent))
