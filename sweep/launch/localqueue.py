"""The queue for this machine: runs wait for a free slot, each slot a group of CPU cores or a GPU.

There is no daemon and no queue file: a run waiting in the queue is a run directory in state
`queued` with executor `local`. `sweep launch` marks runs queued and starts detached workers
(processes that outlive the CLI), at most one per slot. A worker takes a free slot, pins itself to
the slot's cores (CPU affinity) and GPU (CUDA_VISIBLE_DEVICES, set before torch is imported), and
trains queued runs of its sweep one after another until none is left. A decay branch is taken only
once its trunk is done; while its trunk is queued or running it waits, and a worker that finds
nothing but such runs gives its slot back and looks again every POLL_S.

Everything is held with flock, which the kernel releases when a process dies, so a killed worker
never leaves a slot or a run locked:
- a slot is `<slots_dir>/<slot>.lock`, shared by every sweep on the machine, so two sweeps take
  turns on the cores and GPUs instead of oversubscribing them;
- a worker is alive while it holds a registration lock, `jobs/workers/<id>.lock` holding its pid;
  a later `sweep launch` or `sweep status` counts these, so it finds the running queue and never
  starts a second one. `sweep launch` takes the lock itself and hands it to the worker it starts
  (an inherited descriptor), so the worker counts as alive from the moment the launch returns;
- a run is claimed by `runs/<id>/lock` (see job.py).

A worker about to exit could miss runs queued just after its last look; so it unregisters first
and looks once more. A launch marks runs queued first and counts workers after: either it sees the
worker (which will see the runs on its last look) or it starts a new one.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from sweep.config import Config, LauncherConfig
from sweep.launch.trunks import trunk
from sweep.rundir import RunDir
from sweep.sweepdir import SweepDir

POLL_S = 0.5


@dataclass(frozen=True)
class Slot:
    name: str  # its lock file, the same for every sweep on the machine
    cpus: tuple[int, ...]
    gpu: int | None


def machine_slots(launcher: LauncherConfig) -> list[Slot]:
    """One slot per GPU (runs_per_gpu for several small runs each), else one per cpus_per_run
    cores; launcher.parallel, when set, is the number of slots. Cores are shared out in order."""
    cores = sorted(os.sched_getaffinity(0))
    if launcher.gpus:
        names = [(f"gpu{g}.{k}", g) for g in launcher.gpus for k in range(launcher.runs_per_gpu)]
        count = launcher.parallel or len(names)
        width = max(1, len(cores) // count)
    else:
        width = min(launcher.cpus_per_run, len(cores))
        count = launcher.parallel or max(1, len(cores) // width)
        names = [(f"cpu-slot{i}", None) for i in range(count)]
    groups = [tuple(cores[(i * width + k) % len(cores)] for k in range(width)) for i in range(count)]
    return [Slot(name, cpus, gpu) for (name, gpu), cpus in zip(names[:count], groups, strict=False)]


def slots_dir(launcher: LauncherConfig) -> Path:
    return Path(launcher.slots_dir or f"/tmp/scaling-sweep-slots-{os.getuid()}")


def workers_dir(sweep: SweepDir) -> Path:
    return sweep.jobs_dir / "workers"


def _try_lock(path: Path) -> IO | None:
    """An open handle holding an exclusive flock on path, or None if another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a")  # noqa: SIM115 - the lock lives as long as the handle
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def live_workers(sweep: SweepDir) -> list[int]:
    """Pids of the sweep's workers that are alive (their registration lock is held); 0 for one
    being started whose pid is not written yet."""
    pids = []
    for path in sorted(workers_dir(sweep).glob("*.lock")):
        handle = _try_lock(path)
        if handle is None:
            with suppress(OSError, ValueError):
                pids.append(int(path.read_text() or 0))
        else:  # a killed worker's leftover; not deleted, as a worker may be registering under that name
            handle.close()
    return pids


def queued_runs(sweep: SweepDir) -> list[RunDir]:
    return [r for r in sweep.runs() if _waiting(r)]


def _waiting(run_dir: RunDir) -> bool:
    status = run_dir.read_status()
    return status["state"] == "queued" and status.get("executor") == "local"


def work_left(sweep: SweepDir) -> bool:
    """Whether a run in the queue will still start: one without a trunk, or whose trunk is done,
    queued or running (a branch of a failed or lost trunk never will)."""
    return any(_trunk_state(r) in ("done", "queued", "running") for r in queued_runs(sweep))


def _trunk_state(run_dir: RunDir) -> str:
    """The state its trunk's status records; done for a run without one."""
    parent = trunk(run_dir)
    return parent.state if parent else "done"


class Registration:
    """A worker's registration: a locked file in jobs/workers holding its pid, held while the
    worker may still pick up queued runs. Made by the launch (for the worker it starts) or by the
    worker itself when it registers again."""

    def __init__(self, sweep: SweepDir) -> None:
        self.path = workers_dir(sweep) / f"{uuid.uuid4().hex[:12]}.lock"
        self.handle = _try_lock(self.path)

    @classmethod
    def inherited(cls, path: Path, fd: int) -> Registration:
        registration = cls.__new__(cls)
        registration.path, registration.handle = path, os.fdopen(fd, "a")
        return registration

    def record(self, pid: int) -> None:
        self.handle.truncate(0)
        self.handle.write(str(pid))
        self.handle.flush()

    def close(self) -> None:
        self.path.unlink(missing_ok=True)
        if self.handle:
            self.handle.close()
            self.handle = None


def start_workers(sweep: SweepDir, launcher: LauncherConfig, waiting: int) -> list[int]:
    """Start workers until there is one per slot or per waiting run, whichever is fewer."""
    wanted = min(len(machine_slots(launcher)), waiting) - len(live_workers(sweep))
    started = []
    for _ in range(max(0, wanted)):
        registration = Registration(sweep)
        fd = registration.handle.fileno()
        log = open(registration.path.with_suffix(".log"), "a")  # noqa: SIM115
        with log:
            process = subprocess.Popen(
                [sys.executable, "-m", "sweep.launch.localqueue", str(sweep.path), str(registration.path), str(fd)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, pass_fds=(fd,),
            )  # fmt: skip
        registration.record(process.pid)
        registration.handle.close()  # the worker holds the lock now, through its copy of the descriptor
        started.append(process.pid)
    return started


def stop_workers(sweep: SweepDir, timeout_s: float = 10.0) -> list[int]:
    """SIGTERM every worker of the sweep (and its process group) and wait for them to exit."""
    pids = live_workers(sweep)
    for pid in pids:
        if pid > 0:  # never 0: killpg(0) would signal our own process group
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGTERM)
    deadline = time.time() + timeout_s
    while live_workers(sweep) and time.time() < deadline:
        time.sleep(0.05)
    return pids


def take_slot(sweep: SweepDir, launcher: LauncherConfig) -> tuple[Slot, IO] | None:
    """Wait for a free slot; None if the sweep has nothing queued any more."""
    while True:
        for slot in machine_slots(launcher):
            handle = _try_lock(slots_dir(launcher) / f"{slot.name}.lock")
            if handle is not None:
                return slot, handle
        if not work_left(sweep):
            return None
        time.sleep(POLL_S)


def pin(slot: Slot) -> dict:
    """Pin this process to the slot; returns where it now runs, as the process sees it."""
    os.sched_setaffinity(0, slot.cpus)
    if slot.gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(slot.gpu)
    return {"slot": slot.name, "cpus": sorted(os.sched_getaffinity(0)),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}  # fmt: skip


def work(sweep: SweepDir, registration: Registration) -> None:
    """A worker's life: take a slot, train queued runs of the sweep until none is left."""
    config = sweep.config()
    taken = None
    try:
        while True:
            taken = taken or take_slot(sweep, config.launcher)  # held until this process exits or idles
            trained = taken is not None and train_startable(sweep, taken[0], config)
            if not trained and work_left(sweep):  # only branches waiting for their trunks: free the slot meanwhile
                if taken is not None:
                    taken[1].close()
                    taken = None
                time.sleep(POLL_S)
                continue
            registration.close()
            if not work_left(sweep):  # looked at after unregistering: see the module docstring
                return
            registration = Registration(sweep)
            registration.record(os.getpid())
    finally:
        registration.close()


def train_startable(sweep: SweepDir, slot: Slot, config: Config) -> bool:
    """Train, in this slot, each queued run that can start (its trunk, if any, is done); returns
    whether it trained any. A branch whose trunk failed is failed here with the trunk's reason."""
    from sweep.launch.job import run_one, train_options
    from sweep.launch.jobstate import effective_state

    placement = pin(slot)
    options = replace(train_options(config, "local", sweep.path.resolve().name), threads=len(slot.cpus))
    trained = False
    for run_dir in queued_runs(sweep):
        if not _waiting(run_dir):  # taken by another worker meanwhile
            continue
        if _trunk_state(run_dir) == "done":
            run_one(run_dir, options, str(os.getpid()), **placement)
            trained = True
        else:
            effective_state(run_dir)  # records it failed if its trunk failed, or died unrecorded
    return trained


if __name__ == "__main__":  # started by start_workers: sweep dir, registration file, its locked descriptor
    work(SweepDir(Path(sys.argv[1])), Registration.inherited(Path(sys.argv[2]), int(sys.argv[3])))
