"""Where a queued or running run's job is, whether it is alive, and why it ended: the state of a
run as the scheduler (SLURM, the local queue) sees it, not only as its status.json says.

The CLI writes `queued` to a run's status before submitting it and, for SLURM, the job id to
`runs/<id>/job.json` after; only the job (or the local worker) writes later states, and a running
run names the job or process that trains it.

A decay branch (a run whose spec names a `parent`, its trunk) starts from its trunk's stable
checkpoint, so it waits, queued, until its trunk is done; a trunk that fails or diverges fails its
queued branches with "trunk <id> failed: <the trunk's reason>", and they never train.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

from sweep.launch import localqueue
from sweep.launch.trunks import trunk, trunk_failure
from sweep.rundir import ACTIVE_STATES, FAILED_STATES, RunDir
from sweep.sweepdir import SweepDir

JOB_FILE = "job.json"
LOCAL_QUEUE = "queue"  # the job id of a run waiting in the local queue


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
        if out.returncode != 0:  # a job SLURM no longer knows is gone; a slurmctld that did not answer is not
            return "Invalid job id" not in out.stderr
        return bool(out.stdout.strip())
    if not job_id:
        return False
    if executor == "local" and job_id == LOCAL_QUEUE:
        return bool(localqueue.live_workers(sweep))
    # A process: a local worker, or a debug or foreground run (`sweep launch --executor debug`, `sweep train`)
    if job.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(job_id), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return not _is_zombie(int(job_id))


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
    recorded as failed with the scheduler's reason, and a queued branch whose trunk failed as failed
    with the trunk's; one that nothing will run is 'lost' (never known to be submitted, waiting in a
    local queue whose workers are gone, or a branch whose trunk is lost or not launched)."""
    status = run_dir.read_status()
    state = status["state"]
    if state not in ACTIVE_STATES:
        return state
    parent = trunk(run_dir) if state == "queued" else None
    parent_state = effective_state(parent) if parent else "done"
    if parent_state in FAILED_STATES:
        return _fail(run_dir, status, trunk_failure(parent))
    if parent_state in ("planned", "lost"):
        return "lost"
    job = run_job(run_dir, status)
    if job_alive(job, SweepDir(run_dir.path.parent.parent)):
        return state
    if not job.get("job_id") or job.get("job_id") == LOCAL_QUEUE:
        return "lost"
    return _fail(run_dir, status, job_end_reason(job))


def _fail(run_dir: RunDir, status: dict, reason: str) -> str:
    # Only if nothing changed since we looked: a launch may have queued the run again meanwhile.
    if run_dir.set_state("failed", unless_changed_since=status, reason=reason):
        return "failed"
    return run_dir.state


def trunk_unfinished(run_dir: RunDir) -> str | None:
    """Why the run cannot start now because of its trunk (the trunk's failure, when it failed);
    None when it has no trunk or its trunk is done."""
    parent = trunk(run_dir)
    state = effective_state(parent) if parent else "done"
    if state == "done":
        return None
    if state in FAILED_STATES:
        return trunk_failure(parent)
    return f"trunk {parent.run_id} was {state}, not done, when this branch started; retry it once the trunk is done"


def attempts(run_dir: RunDir) -> int:
    return sum(1 for entry in run_dir.read_status().get("history", []) if entry["state"] == "queued")
