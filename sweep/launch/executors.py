"""Submit planned runs: to this machine's queue (localqueue.py), as SLURM job arrays through
submitit, or in-process (debug).

Launching is idempotent by run id: a run that is done, diverged, failed, or queued/running in a
job that is still alive (jobstate.py) is never submitted again.

Decay branches come after their trunks (trunks.py): on SLURM each trunk's branches are submitted
as arrays of their own that wait for the trunk's job (--dependency=afterok, and
--kill-on-invalid-dep so that a trunk whose job fails takes its branches' jobs with it); the local
queue's workers take a branch only once its trunk is done; the debug executor trains trunks first.
"""

from __future__ import annotations

import socket
import subprocess
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import submitit

from sweep.config import Config, LauncherConfig
from sweep.launch import localqueue
from sweep.launch.job import TrainBundle, train_options
from sweep.launch.jobstate import JOB_FILE, LOCAL_QUEUE, attempts, effective_state, read_job, run_job
from sweep.launch.trunks import in_trunk_order, submission_groups, trunk, trunk_failure
from sweep.plan.flops import spec_counts
from sweep.rundir import ACTIVE_STATES, FAILED_STATES, RunDir, atomic_write_json
from sweep.sweepdir import SweepDir


@dataclass(frozen=True)
class LaunchReport:
    executor: str
    submitted: list[str]
    skipped: dict[str, str]  # run id -> why
    job_ids: list[str]  # local: the pids of the workers this launch started


def run_flops(run_dir: RunDir) -> float:
    spec = run_dir.read_spec()
    return spec.trained_tokens * spec_counts(spec)[2]  # a decay branch trains only its decay


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


def make_executor(kind: str, folder: Path, launcher: LauncherConfig, name: str, after: str = "") -> submitit.Executor:
    """`after`: the SLURM job id (an array task's too: 123_4) whose success the jobs wait for."""
    if kind == "debug":
        return submitit.DebugExecutor(folder=folder)
    s = launcher.slurm
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    optional = {
        "slurm_partition": s.partition, "slurm_account": s.account, "slurm_qos": s.qos,
        "slurm_constraint": s.constraint, "gpus_per_node": s.gpus_per_node,
    }  # fmt: skip
    waits = {"dependency": f"afterok:{after}", "kill_on_invalid_dep": "yes"} if after else {}
    executor.update_parameters(
        name=name,
        timeout_min=s.time_min,
        cpus_per_task=s.cpus_per_task,
        mem_gb=s.mem_gb,
        slurm_array_parallelism=s.array_parallelism,
        slurm_additional_parameters={**s.additional_parameters, **waits},
        slurm_setup=list(s.setup),
        **{k: v for k, v in optional.items() if v},
    )
    return executor


def launch(
    sweep: SweepDir, executor: str | None = None, retry_failed: bool = False, only: Collection[str] | None = None
) -> LaunchReport:
    """Submit the runs not yet done, queued or running (of those named in `only`, when given); with
    retry_failed also the failed and diverged ones that have had fewer than launcher.max_attempts
    attempts. Holds the sweep's lock: a second launch at the same moment waits, then finds these
    runs queued and submits nothing."""
    with sweep.lock():
        return _launch(sweep, executor, retry_failed, only)


def _launch(sweep: SweepDir, executor: str | None, retry_failed: bool, only: Collection[str] | None) -> LaunchReport:
    config = sweep.config()
    kind = executor or config.launcher.executor
    pending, skipped = [], {}
    for run_dir in sweep.runs():
        if only is not None and run_dir.run_id not in only:
            continue
        state = effective_state(run_dir)
        retry = retry_failed and state in FAILED_STATES and attempts(run_dir) < config.launcher.max_attempts
        problem = run_dir.spec_problem() if state in ("planned", "lost") or retry else None
        if problem:  # this run fails alone, with its reason; the others are submitted
            run_dir.set_state("failed", reason=f"not submitted: {problem}")
            skipped[run_dir.run_id] = "failed"
        elif state in ("planned", "lost") or retry:
            pending.append(run_dir)
        else:
            skipped[run_dir.run_id] = state
    pending = _after_trunks(pending, skipped, kind)
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

    jobs = _submit(sweep, config, kind, pending, job_name)
    if kind == "debug":
        for job in jobs:  # in submission order: trunks before their branches
            job.result()
    return LaunchReport(kind, [r.run_id for r in pending], skipped, [str(job.job_id) for job in jobs])


def _submit(sweep: SweepDir, config: Config, kind: str, pending: list[RunDir], job_name: str) -> list[submitit.Job]:
    """Submit the runs group by group (trunks.submission_groups), each group's jobs waiting for
    its trunk's job; write each run's job.json as soon as its job exists."""
    options = train_options(config, kind, sweep.path.resolve().name)
    job_of: dict[str, str] = {}  # run id -> the job this launch submitted it in
    jobs = []
    for parent, runs in submission_groups(pending):
        after = job_of.get(parent) or _earlier_job(sweep, parent)
        bundles = slurm_bundles(runs, config.launcher) if kind == "slurm" else [[r.run_id for r in runs]]
        submitter = make_executor(kind, sweep.jobs_dir, config.launcher, job_name, after)
        calls = [TrainBundle(str(sweep.runs_dir), ids, options) for ids in bundles]
        if kind == "slurm":
            with submitter.batch():
                submitted = [submitter.submit(call) for call in calls]
        else:
            submitted = [submitter.submit(call) for call in calls]
        for job, ids in zip(submitted, bundles, strict=True):
            record = {"executor": kind, "job_id": str(job.job_id), "host": socket.gethostname(), "bundle": ids}
            for run_id in ids:
                atomic_write_json(sweep.run(run_id).path / JOB_FILE, record)
                job_of[run_id] = str(job.job_id)
        jobs += submitted
    return jobs


def _earlier_job(sweep: SweepDir, run_id: str) -> str:
    """The job an earlier launch submitted the run in ("" for none, or no run)."""
    return str(read_job(sweep.run(run_id)).get("job_id", "")) if run_id else ""


def _after_trunks(pending: list[RunDir], skipped: dict[str, str], kind: str) -> list[RunDir]:
    """The runs to submit, trunks before their branches. A branch whose trunk failed or diverged
    fails with the trunk's reason; one whose trunk is neither done nor submitted now is held back
    (not submitted) unless this launch can make it wait: the local queue waits for any trunk that is
    queued or running, SLURM for a trunk queued or running in a SLURM job it knows."""
    submitted: list[RunDir] = []
    for run_dir in in_trunk_order(pending):
        parent = trunk(run_dir)
        state = "done" if parent is None or parent in submitted else effective_state(parent)
        if state in FAILED_STATES:
            run_dir.set_state("failed", reason=trunk_failure(parent))
            skipped[run_dir.run_id] = "failed"
        elif state == "done" or (state in ACTIVE_STATES and _can_wait_for(parent, kind)):
            submitted.append(run_dir)
        else:
            skipped[run_dir.run_id] = f"waiting for trunk {parent.run_id} ({state})"
    return submitted


def _can_wait_for(parent: RunDir, kind: str) -> bool:
    job = read_job(parent)
    return kind == "local" or (kind == "slurm" and job.get("executor") == "slurm" and bool(job.get("job_id")))


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
