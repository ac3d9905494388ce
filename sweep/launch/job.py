"""What a job executes: train a bundle of runs one after another, recording each run's state.

A job never raises for a run's failure: the failure is the run's state (failed or diverged, with
the reason), and the job goes on to the next run of its bundle. A job that is preempted or hits
its time limit gets submitit's signal (SIGUSR2); we hold it until the current training step ends,
checkpoint there, and only then let submitit requeue the job with the same bundle. Finished runs
are skipped and the interrupted one resumes from that step.

A decay branch whose trunk is not done fails without training: SLURM starts a branch's job once
its trunk's job succeeded, and that job succeeds even when the trunk run in it failed.
"""

from __future__ import annotations

import fcntl
import os
import signal
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import submitit

from models.config import DataError, Diverged, Interrupted, TrainOptions
from models.tracking import close_abandoned_run
from sweep.config import Config
from sweep.launch.jobstate import trunk_unfinished
from sweep.rundir import FINISHED_STATES, RunDir


@contextmanager
def claim(run_dir: RunDir) -> Iterator[bool]:
    """Hold an exclusive lock on the run while training it. The kernel drops the lock when the
    process dies, so a crashed or killed job never blocks a later one, while two live jobs given
    the same run (a relaunch after the CLI died mid-launch) can never train it both."""
    run_dir.path.mkdir(parents=True, exist_ok=True)
    with open(run_dir.path / "lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


class DeferredSignal:
    """Holds a signal until the caller is at a safe point (between training steps), then hands it
    to the handler that was installed before (submitit's checkpoint-and-requeue)."""

    def __init__(self, signum: int = signal.SIGUSR2) -> None:
        self.signum = signum
        self.original = signal.getsignal(signum)
        self.received: tuple[int, object] | None = None
        signal.signal(signum, self._hold)

    def _hold(self, signum: int, frame: object) -> None:
        self.received = (signum, frame)

    def pending(self) -> bool:
        return self.received is not None

    def deliver(self) -> None:
        signal.signal(self.signum, self.original)
        if callable(self.original) and self.received is not None:
            self.original(*self.received)


def run_one(
    run_dir: RunDir, options: TrainOptions, job_id: str, stop: Callable[[], bool] | None = None, **placement: Any
) -> str:
    """Train one run in this process unless it is finished or being trained elsewhere; returns
    its state afterwards ('queued' when `stop` interrupted it: it resumes in the requeued job).
    `placement` (slot, cores, GPU) is recorded in the run's status."""
    with claim(run_dir) as mine:
        if not mine or run_dir.state in FINISHED_STATES:
            return run_dir.state
        return _train_claimed(run_dir, options, job_id, stop, placement)


class CancelWatch:
    """Whether `sweep cancel` has marked the run failed while it trains: a job on SLURM ignores the
    SIGTERM of scancel (submitit keeps it for preemption), so the run itself must notice and stop.
    Reads the status at most once a second."""

    def __init__(self, run_dir: RunDir, every_s: float = 1.0) -> None:
        self.run_dir, self.every_s, self.checked, self.cancelled = run_dir, every_s, time.monotonic(), False

    def __call__(self) -> bool:
        if not self.cancelled and time.monotonic() - self.checked >= self.every_s:
            self.checked = time.monotonic()
            self.cancelled = self.run_dir.state != "running"
        return self.cancelled


def _train_claimed(
    run_dir: RunDir, options: TrainOptions, job_id: str, stop: Callable[[], bool] | None, placement: dict[str, Any]
) -> str:
    spec, problem = run_dir.checked_spec()  # the spec may have changed since the launch looked
    problem = problem or trunk_unfinished(run_dir)
    if problem:
        run_dir.set_state("failed", reason=problem)
        return "failed"
    run_dir.set_state("running", pid=os.getpid(), job_id=job_id, **placement)
    cancelled = CancelWatch(run_dir)
    stop_training = cancelled if stop is None else lambda: cancelled() or stop()
    try:
        if options.trainer == "noop":
            from sweep.launch.noop import noop_train

            noop_train(spec, run_dir)
        else:
            from models.train import train  # imports torch: only in the job, only for real training

            train(spec, run_dir, options, stop_training)
    except Interrupted as exc:
        if not cancelled.cancelled:  # preempted: it resumes from this step in the requeued job
            run_dir.set_state("queued", interrupted_at_step=exc.step)
    except Diverged as exc:
        run_dir.set_state("diverged", reason=str(exc))
    except DataError as exc:
        run_dir.set_state("failed", reason=f"data: {exc}")
    except Exception as exc:  # noqa: BLE001 - any crash of one run is that run's failure, not the job's
        last = traceback.format_exc().strip().splitlines()[-1]
        run_dir.set_state("failed", reason=f"{type(exc).__name__}: {exc}", traceback=last)
    else:
        if run_dir.recorded_status()["state"] == "running":  # not cancelled while it finished
            run_dir.set_state("done")
    finally:
        close_abandoned_run()
    return run_dir.state


@dataclass
class TrainBundle(submitit.helpers.Checkpointable):
    """The callable submitted to submitit: the runs of one job, in order."""

    runs_dir: str
    run_ids: list[str]
    options: TrainOptions

    def __call__(self) -> dict[str, str]:
        job_id = os.environ.get("SLURM_JOB_ID", "") or str(os.getpid())
        preemption = DeferredSignal()
        states = {}
        for run_id in self.run_ids:
            if preemption.pending():
                break
            states[run_id] = run_one(RunDir(Path(self.runs_dir) / run_id), self.options, job_id, preemption.pending)
        preemption.deliver()  # requeues and exits if the signal came; otherwise just restores the handler
        return states


def train_options(config: Config, executor: str, sweep_name: str) -> TrainOptions:
    """How the runs of the sweep named `sweep_name` (its directory's name: their W&B group) train."""
    threads = config.train.threads
    if threads == 0 and executor in ("local", "debug"):  # elsewhere the job reads SLURM_CPUS_PER_TASK
        threads = config.launcher.cpus_per_run
    return TrainOptions(
        device=config.train.device, threads=threads, checkpoint=config.train.checkpoint,
        wandb_mode=str(config.wandb.mode), wandb_project=config.wandb.project, wandb_entity=config.wandb.entity,
        wandb_group=sweep_name, trainer=config.launcher.trainer, compile=config.train.compile.lower(),
        peak_flops=config.train.peak_flops,
    )  # fmt: skip
