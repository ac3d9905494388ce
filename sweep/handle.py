"""`Sweep`: a sweep directory as one object, for notebooks and scripts. Each method is one stage
of the loop (plan, launch, wait, collect, fit, propose, compare, report, export) and calls sweep.api, as
the CLI's commands do; tables come back as pandas DataFrames.

    from sweep import Sweep
    sweep = Sweep.plan(["sweep=smoke"], "sweeps/smoke")
    sweep.launch(); sweep.wait(); sweep.collect()
    report = sweep.fit()
    proposal = sweep.propose(compute=1e13)
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from sweep import api
from sweep.config import Config
from sweep.fit.report import FitReport, Progress
from sweep.store import CollectReport
from sweep.sweepdir import SweepDir

if TYPE_CHECKING:
    from sweep.export import ExportedTable, ExportFormat
    from sweep.fit.compare import Comparison
    from sweep.launch.executors import LaunchReport
    from sweep.launch.monitor import RunState
    from sweep.propose import Proposal, TargetCheck
    from sweep.report.build import ReportResult


class Sweep:
    """A sweep directory made by `sweep plan` (Sweep.plan) or opened as it is (Sweep.open)."""

    def __init__(self, directory: SweepDir, planned: list[api.PlannedRun] | None = None) -> None:
        self.directory = directory
        self.planned = planned or []  # the runs the Sweep.plan call that made this object wrote

    @classmethod
    def plan(cls, overrides: list[str], out: Path | str) -> Sweep:
        """Compose the config from Hydra overrides, expand the grid and write (or extend) `out`."""
        directory, planned = api.plan(list(overrides), Path(out))
        return cls(directory, planned)

    @classmethod
    def open(cls, path: Path | str) -> Sweep:
        """An existing sweep directory; UserError when `path` is none."""
        return cls(SweepDir.open(Path(path)))

    @property
    def path(self) -> Path:
        return self.directory.path

    @property
    def config(self) -> Config:
        return self.directory.config()

    def launch(self, executor: str | None = None, retry_failed: bool = False) -> LaunchReport:
        """Submit every planned run that is not done, queued or running (executor: local, slurm, debug;
        default launcher.executor of the config)."""
        return api.launch(self.path, executor, retry_failed)

    def wait(self, show_progress: bool = True) -> pd.DataFrame:
        """Block until no run is queued or running; the planned runs' states, as `status` gives them."""
        return api.status_table(self.path, api.wait(self.path, show_progress))

    def collect(self, rebuild: bool = False) -> CollectReport:
        """Ingest the run directories into the store (results.db)."""
        return api.collect(self.path, rebuild)

    def run_states(self) -> list[RunState]:
        """Each run's state, planned runs first, then the runs only the store holds."""
        return api.status(self.path)

    def status(self) -> pd.DataFrame:
        """One row per run: run_id, state, role, budget, shape (N, D, C, d_model, ...) and reason."""
        return api.status_table(self.path, self.run_states())

    def local_workers(self) -> list[int]:
        """Pids of the live workers of the sweep's local queue."""
        return api.local_workers(self.path)

    def runs(self) -> pd.DataFrame:
        """The finished (done) runs in the store, one row each: shape, N, D, C, loss, ..."""
        return api.finished_runs(self.path)

    def curves(self) -> pd.DataFrame:
        """Every stored run's training curve: run_id, step, tokens, flops, train_loss, eval_loss, lr."""
        return api.stored_curves(self.directory)

    def fit(self, overrides: list[str] | None = None, progress: Progress | None = None) -> FitReport:
        """Fit Approaches 1-3 to the collected runs (fit.* overrides change the fit, e.g. fit.bootstrap=500);
        the report is also written to fits/fit.json and the store."""
        return api.fit(self.path, overrides, progress)

    def propose(
        self,
        compute: float | None = None,
        overrides: list[str] | None = None,
        hparams_from: Path | str | None = None,
        progress: Progress | None = None,
    ) -> Proposal:
        """Fit, then propose the compute-optimal run at `compute` FLOPs (default: target_multiplier x the
        largest budget); written to proposals/<id>.yaml (proposal_file) for `sweep launch --proposal`."""
        hparams = Path(hparams_from) if hparams_from is not None else None
        return api.propose_target(self.path, compute, overrides, hparams, progress)[1]

    def proposal_file(self, proposal: Proposal) -> Path:
        """The config YAML of a proposal's target run."""
        return api.proposal_file(self.directory, proposal)

    def trained_targets(self) -> list[TargetCheck]:
        """Each trained target run beside the loss its proposal predicted."""
        return api.trained_targets(self.path)

    def report(self, progress: Progress | None = None) -> ReportResult:
        """Write the HTML report (report/index.html: figures, fit tables, the proposal) and each figure
        as PNG and SVG beside it; what was written, and which figures did not apply and why."""
        return api.report(self.path, progress)

    def compare(
        self,
        *others: Path | str,
        computes: list[float] | None = None,
        shared_e: bool = False,
        overrides: list[str] | None = None,
        progress: Progress | None = None,
    ) -> Comparison:
        """This sweep as the baseline against each of `others`: predicted losses, the effective-compute
        multiplier and the crossover, each with its interval (to_dict() for the numbers)."""
        return api.compare([self.path, *map(Path, others)], overrides, computes, shared_e, progress).comparison

    def export(self, format: ExportFormat | str, out: Path | str) -> list[ExportedTable]:
        """Write runs, curves, fits and proposals as out/<table>.<format> (csv, parquet or json)."""
        return api.export(self.path, format, Path(out))

    def __repr__(self) -> str:
        counts = Counter(s.state for s in self.run_states())
        states = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        return f"<Sweep {self.path.name!r} at {self.path}: {sum(counts.values())} runs ({states or 'none planned'})>"
