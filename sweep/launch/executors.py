"""Submit planned runs: to this machine's queue (localqueue.py), as SLURM job arrays through
submitit, or in-process (debug).

Launching is idempotent by run id: a run that is done, diverged, failed, or queued/running in a
job that is still alive is never submitted again. The CLI writes `queued` to a run's status before
submitting it and, for SLURM, the job id to `runs/<id>/job.json` after; only the job (or the local
worker) writes later states, and a running run names the job or process that trains it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import submitit

from models.config import TrainOptions
from sweep.config import Config, LauncherConfig
from sweep.launch import localqueue
from sweep.plan.flops import spec_counts
from sweep.rundir import ACTIVE_STATES, RunDir, atomic_write_json
from sweep.sweepdir import SweepDir

JOB_FILE = "job.json"
LOCAL_QUEUE = "queue"  # the job id of a run waiting in the local queue


@dataclass(frozen=True)
class LaunchReport:
    executor: str
    submitted: list[str]
    skipped: dict[str, str]  # run id -> why
    job_ids: list[str]  # local: the pids of the workers this launch started


def read_job(run_dir: RunDir) -> dict:
    try:
        return json.loads((run_dir.path / JOB_FILE).read_text())
    except (OSError, ValueError):
        return {}


def job_alive(job: dict, sweep: SweepDir) -> bool:
    """Whether the job a run was submitted in can still run it. Unknown counts as alive."""
    executor, job_id = job.get("executor"), str(job.get("job_id") or "")
    if executor == "slurm" and (job_id or job.get("job_name")):
        if shutil.which("squeue") is None:
            return True
        which = ["-j", job_id] if job_id else [f"--name={job['job_name']}"]
        out = subprocess.run(["squeue", "-h", *which, "-o", "%T"], capture_output=True, text=True)
        return out.returncode == 0 and bool(out.stdout.strip())
    if not job_id:
        return False
    if executor == "local" and job_id == LOCAL_QUEUE:
        return bool(localqueue.live_workers(sweep))
    if executor == "local":
        if job.get("host") != socket.gethostname():
            return True
        try:
            os.kill(int(job_id), 0)
        except ProcessLookupError:
            return False
        except (PermissionError, ValueError):
            return True
        return not _is_zombie(int(job_id))
    return False  # debug runs in-process: if it is not this process, it is gone


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z")
    except OSError:
        return False


SLURM_END_STATES = ("OUT_OF_MEMORY", "TIMEOUT", "PREEMPTED", "NODE_FAIL", "FAILED", "CANCELLED")


def job_end_reason(job: dict) -> str:
    """Why a job that is no longer alive ended, as far as the scheduler knows. For SLURM the most
    telling state of the job and its steps wins (a step killed OUT_OF_MEMORY leaves the job FAILED)."""
    job_id = job.get("job_id")
    if job.get("executor") == "slurm" and shutil.which("sacct"):
        out = subprocess.run(
            ["sacct", "-n", "-P", "-j", str(job_id), "-o", "State,ExitCode"], capture_output=True, text=True
        )
        rows = [line.split("|") for line in out.stdout.strip().splitlines() if line.count("|") == 1]
        states = {state.split()[0]: code for state, code in rows if state}
        for state in (*SLURM_END_STATES, *states):
            if state in states:
                return f"SLURM job {job_id} ended {state} (exit {states[state]}) before the run finished"
    return f"{job.get('executor')} job {job_id} ended before the run finished (killed or crashed)"


def run_job(run_dir: RunDir, status: dict) -> dict:
    """The job or process a queued or running run depends on; {} if none is known."""
    named = {k: status.get(k) for k in ("executor", "job_id", "host")}
    if status["state"] == "running" and named["job_id"]:  # it names its own job, even without job.json
        return named
    if named["executor"] == "local" and named["job_id"] == LOCAL_QUEUE:
        return named
    # Submitted to SLURM but the CLI died before writing job.json: the job is found by its name.
    fallback = {"executor": "slurm", "job_name": status["job_name"]} if status.get("job_name") else {}
    return read_job(run_dir) or fallback


def effective_state(run_dir: RunDir) -> str:
    """The run's state after checking its job: a queued or running run whose job has died is
    recorded as failed with the scheduler's reason; one that nothing will run is 'lost' (never
    known to be submitted, or waiting in a local queue whose workers are gone)."""
    status = run_dir.read_status()
    state = status["state"]
    if state not in ACTIVE_STATES:
        return state
    job = run_job(run_dir, status)
    if job_alive(job, SweepDir(run_dir.path.parent.parent)):
        return state
    if not job.get("job_id") or job.get("job_id") == LOCAL_QUEUE:
        return "lost"
    run_dir.set_state("failed", reason=job_end_reason(job))
    return "failed"


def attempts(run_dir: RunDir) -> int:
    return sum(1 for entry in run_dir.read_status().get("history", []) if entry["state"] == "queued")


def run_flops(run_dir: RunDir) -> float:
    spec = run_dir.read_spec()
    return spec.tokens * spec_counts(spec)[2]


def balance(run_dirs: list[RunDir], bundles: int) -> list[list[str]]:
    """Split runs into bundles of near-equal FLOPs (largest first onto the lightest bundle)."""
    costs = {r.run_id: run_flops(r) for r in run_dirs}
    loads: list[tuple[float, list[str]]] = [(0.0, []) for _ in range(min(bundles, len(run_dirs)))]
    for run_id in sorted(costs, key=costs.get, reverse=True):
        i = min(range(len(loads)), key=lambda k: loads[k][0])
        loads[i] = (loads[i][0] + costs[run_id], [*loads[i][1], run_id])
    return [ids for _, ids in loads if ids]


def slurm_bundles(run_dirs: list[RunDir], launcher: LauncherConfig) -> list[list[str]]:
    """One array task per run, unless runs are so short that a job's start-up would dominate:
    then as many bundles as keep each at least launcher.slurm.min_job_seconds long (estimated)."""
    minimum = launcher.slurm.min_job_seconds
    if minimum <= 0:
        return [[r.run_id] for r in run_dirs]
    seconds = sum(run_flops(r) for r in run_dirs) / launcher.flops_per_second
    return balance(run_dirs, max(1, min(len(run_dirs), int(seconds // minimum))))


def make_executor(kind: str, folder: Path, launcher: LauncherConfig, name: str) -> submitit.Executor:
    if kind == "debug":
        return submitit.DebugExecutor(folder=folder)
    s = launcher.slurm
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    optional = {
        "slurm_partition": s.partition, "slurm_account": s.account, "slurm_qos": s.qos,
        "slurm_constraint": s.constraint, "gpus_per_node": s.gpus_per_node,
    }  # fmt: skip
    executor.update_parameters(
        name=name,
        timeout_min=s.time_min,
        cpus_per_task=s.cpus_per_task,
        mem_gb=s.mem_gb,
        slurm_array_parallelism=s.array_parallelism,
        slurm_additional_parameters=dict(s.additional_parameters),
        slurm_setup=list(s.setup),
        **{k: v for k, v in optional.items() if v},
    )
    return executor


def train_options(config: Config, executor: str) -> TrainOptions:
    threads = config.train.threads
    if threads == 0 and executor in ("local", "debug"):  # elsewhere the job reads SLURM_CPUS_PER_TASK
        threads = config.launcher.cpus_per_run
    return TrainOptions(
        device=config.train.device, threads=threads, checkpoint=config.train.checkpoint,
        wandb_mode=config.wandb.mode, wandb_project=config.wandb.project, trainer=config.launcher.trainer,
    )  # fmt: skip


def launch(sweep: SweepDir, executor: str | None = None, retry_failed: bool = False) -> LaunchReport:
    """Submit the runs not yet done, queued or running; with retry_failed also the failed and
    diverged ones that have had fewer than launcher.max_attempts attempts. Holds the sweep's lock:
    a second launch at the same moment waits, then finds these runs queued and submits nothing."""
    with sweep.lock():
        return _launch(sweep, executor, retry_failed)


def _launch(sweep: SweepDir, executor: str | None, retry_failed: bool) -> LaunchReport:
    config = sweep.config()
    kind = executor or config.launcher.executor
    pending, skipped = [], {}
    for run_dir in sweep.runs():
        state = effective_state(run_dir)
        retry = retry_failed and state in ("failed", "diverged") and attempts(run_dir) < config.launcher.max_attempts
        problem = run_dir.spec_problem() if state in ("planned", "lost") or retry else None
        if problem:  # this run fails alone, with its reason; the others are submitted
            run_dir.set_state("failed", reason=f"not submitted: {problem}")
            skipped[run_dir.run_id] = "failed"
        elif state in ("planned", "lost") or retry:
            pending.append(run_dir)
        else:
            skipped[run_dir.run_id] = state
    if not pending:
        return LaunchReport(kind, [], skipped, [])

    job_name = f"sweep-{uuid.uuid4().hex[:10]}"  # lets a relaunch find this submission without job.json
    for run_dir in pending:  # forget any earlier attempt's job before this one is submitted
        (run_dir.path / JOB_FILE).unlink(missing_ok=True)
        job_id = LOCAL_QUEUE if kind == "local" else ""
        run_dir.set_state(
            "queued", executor=kind, job_id=job_id, pid=None, job_name=job_name if kind == "slurm" else ""
        )
    if kind == "local":
        waiting = localqueue.queued_runs(sweep)
        workers = localqueue.start_workers(sweep, config.launcher, len(waiting))
        return LaunchReport(kind, [r.run_id for r in pending], skipped, [str(pid) for pid in workers])

    bundles = slurm_bundles(pending, config.launcher) if kind == "slurm" else [[r.run_id for r in pending]]
    options = train_options(config, kind)
    submitter = make_executor(kind, sweep.jobs_dir, config.launcher, job_name)
    from sweep.launch.job import TrainBundle  # imports torch: only when something is submitted

    calls = [TrainBundle(str(sweep.runs_dir), ids, options) for ids in bundles]
    if kind == "slurm":
        with submitter.batch():
            jobs = [submitter.submit(call) for call in calls]
    else:
        jobs = [submitter.submit(call) for call in calls]
    for job, ids in zip(jobs, bundles, strict=True):
        record = {"executor": kind, "job_id": str(job.job_id), "host": socket.gethostname(), "bundle": ids}
        for run_id in ids:
            atomic_write_json(sweep.run(run_id).path / JOB_FILE, record)
    if kind == "debug":
        for job in jobs:
            job.result()
    return LaunchReport(kind, [r.run_id for r in pending], skipped, [str(job.job_id) for job in jobs])


def cancel(sweep: SweepDir) -> list[str]:
    """Cancel the jobs of every queued or running run (and stop the sweep's local workers); the
    runs are recorded as failed."""
    with sweep.lock():
        return _cancel(sweep)


def _cancel(sweep: SweepDir) -> list[str]:
    active = [r for r in sweep.runs() if effective_state(r) in ACTIVE_STATES]
    localqueue.stop_workers(sweep)
    for run_dir in active:
        job = run_job(run_dir, run_dir.read_status())  # as effective_state found it: by id, or by name
        if job.get("executor") == "slurm":
            target = str(job["job_id"]) if job.get("job_id") else f"--name={job['job_name']}"
            subprocess.run(["scancel", target], capture_output=True)
        if run_dir.state != "done":  # it may have finished while we cancelled
            run_dir.set_state("failed", reason="cancelled by `sweep cancel`")
    return [r.run_id for r in active]
