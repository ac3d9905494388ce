"""The Python API behind every CLI command: a notebook can drive a sweep the same way.

Each function takes paths and overrides, does one stage of the loop, and returns dataclasses or
DataFrames; nothing here prints.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from sweep.config import SEED_MAX, Config, FitConfig, compose
from sweep.csvinput import CsvColumns, read_runs
from sweep.errors import UserError
from sweep.export import ExportedTable, ExportFormat, store_tables, write_tables
from sweep.fit.backtest import Backtest
from sweep.fit.backtest import backtest as run_backtest
from sweep.fit.cache import FitCache, cached_fit_all
from sweep.fit.curvelaw import CurveBacktest, backtest_curves, run_curves
from sweep.fit.hparams import HparamFit, fit_hparams, grid_runs
from sweep.fit.report import FitReport, Progress, fit_all, prepare, proxies, sized_proxies
from sweep.plan.flops import spec_counts
from sweep.provenance import origin
from sweep.rundir import FAILED_STATES, FINISHED_STATES, RunDir, atomic_write_json, atomic_write_text
from sweep.spec import RunSpec
from sweep.store import CollectReport, Store
from sweep.sweepdir import SweepDir
from sweep.wandb_log import log_fit, log_proposal

# sweep.launch (submitit, rich.progress) and sweep.propose are imported in the functions that use
# them: commands that need neither, such as `sweep fit`, start faster without them.
if TYPE_CHECKING:
    from sweep.compare import CompareResult
    from sweep.launch.executors import LaunchReport
    from sweep.launch.monitor import RunState
    from sweep.nextwave import NextWave
    from sweep.propose import Proposal, TargetCheck
    from sweep.report.build import ReportResult


StepReport = Callable[[int, int, float | None, float], None]  # see models/config.py TrainOptions.on_step


@dataclass(frozen=True)
class PlannedRun:
    spec: RunSpec
    N: int
    N_total: int
    flops_per_token: float

    @property
    def compute(self) -> float:
        return self.spec.tokens * self.flops_per_token

    @property
    def spent(self) -> float:
        """FLOPs this run trains itself: a decay branch only its decay, its trunk paid the rest."""
        return self.spec.trained_tokens * self.flops_per_token

    def row(self) -> dict:
        s = self.spec
        return {
            "run_id": s.run_id, "budget": s.budget, "N": self.N, "N_total": self.N_total, "D": s.tokens,
            "C": self.compute, "d_model": s.d_model, "n_layers": s.n_layers, "n_heads": s.n_heads,
            "batch_size": s.batch_size, "steps": s.steps, "lr": s.lr, "tokens_per_param": s.tokens / self.N,
            "role": s.role, "parent": s.parent, "branch_step": s.branch_step, "flops_spent": self.spent,
        }  # fmt: skip


@dataclass(frozen=True)
class PlanCost:
    planned_flops: float  # what the plan spends: each trunk once, each branch its decay
    independent_flops: float  # its fitted runs trained each on its own from scratch
    trunks: int
    branches: int

    @classmethod
    def of(cls, runs: list[PlannedRun]) -> PlanCost:
        fitted = [r for r in runs if r.spec.role != "trunk"]
        return cls(
            sum(r.spent for r in runs), sum(r.compute for r in fitted), len(runs) - len(fitted),
            sum(1 for r in fitted if r.spec.parent),
        )  # fmt: skip


def describe(spec: RunSpec) -> PlannedRun:
    n, n_total, fpt = spec_counts(spec)
    return PlannedRun(spec, n, n_total, fpt)


def plan(overrides: list[str], out: Path) -> tuple[SweepDir, list[PlannedRun]]:
    """Compose the config, expand the grid and write (or extend) the sweep directory."""
    from sweep.plan.grids import make_plan

    config = compose(overrides)
    specs = make_plan(config).specs
    sweep = SweepDir.create(out, config, specs)
    return sweep, [describe(s) for s in specs]


def launch(path: Path, executor: str | None = None, retry_failed: bool = False) -> LaunchReport:
    from sweep.launch import executors

    _check_executor(executor)
    return executors.launch(SweepDir.open(path), executor, retry_failed)


def _check_executor(executor: str | None) -> None:
    if executor not in (None, "local", "slurm", "debug"):
        raise UserError(f"--executor {executor!r} is not one of local, slurm, debug")


@dataclass(frozen=True)
class TargetLaunch:
    proposal_id: str
    run_ids: dict[int, str]  # seed -> the target run trained with it
    report: LaunchReport


def check_launch_options(seeds: list[int] | None, executor: str | None) -> None:
    """Refuse a target launch's bad seeds or executor before anything is written."""
    _check_executor(executor)
    if bad := [seed for seed in seeds or [] if not 0 <= seed <= SEED_MAX]:
        raise UserError(f"--seeds: {bad[0]} is out of range; a seed is between 0 and {SEED_MAX}")


def launch_proposal(
    path: Path,
    proposal: Path,
    seeds: list[int] | None = None,
    executor: str | None = None,
    retry_failed: bool = False,
) -> TargetLaunch:
    """Add a proposal's target run to the sweep's plan, once per seed (default: the proposal's own),
    and submit those runs, and only those, like any launch. Each seed's run is checked against the
    same prediction: the proposal's record is copied to every seed's run id that is not yet trained."""
    from sweep.launch import executors

    check_launch_options(seeds, executor)
    sweep = SweepDir.open(path)
    target, record = proposed_target(sweep, Path(proposal))
    specs = [replace(target, seed=seed) for seed in dict.fromkeys(seeds or [target.seed])]
    for spec in specs:
        if sweep.run(spec.run_id).state != "done":  # a trained run keeps the prediction made before it ran
            atomic_write_json(recorded_proposal_file(sweep, spec.run_id), record)
    sweep.add_runs(specs)
    report = executors.launch(sweep, executor, retry_failed, only={s.run_id for s in specs})
    return TargetLaunch(record["proposal_id"], {s.seed: s.run_id for s in specs}, report)


def proposed_target(sweep: SweepDir, proposal: Path) -> tuple[RunSpec, dict]:
    """The run a proposal YAML of this sweep names (role target), and the proposal recorded for it."""
    from sweep.plan.grids import single_run_spec

    written_by = f"`sweep propose {sweep.path}` writes one to launch"
    if not proposal.is_file():
        raise UserError(f"--proposal {proposal} is not a file; {written_by} (proposals/<id>.yaml)")
    config = compose(config_file=proposal)
    if config.run.role != "target":
        raise UserError(f"{proposal} is not a proposal: its run.role is {config.run.role}, not target; {written_by}")
    try:
        spec = single_run_spec(config)
    except UserError as exc:
        raise UserError(f"{proposal} is not a proposal: {exc}; {written_by}") from None
    record = proposal_record(sweep, spec.run_id)
    if record is None:
        raise UserError(
            f"{proposal} is not a proposal of {sweep.path}: it proposed no run {spec.run_id} (the file is from "
            f"another sweep, or was edited); {written_by}"
        )
    return spec, record


def cancel(path: Path) -> list[str]:
    from sweep.launch import executors

    return executors.cancel(SweepDir.open(path))


def status(path: Path) -> list[RunState]:
    """The planned runs' states, then the runs only the store holds (imported runs, trained targets)."""
    from sweep.launch import monitor

    sweep = SweepDir.open(path)
    states = _roles_named(sweep, monitor.run_states(sweep))
    planned = {s.run_id for s in states}
    if not sweep.db_file.exists():
        return states
    with Store(sweep.db_file) as store:
        stored = store.runs()
    return states + [
        monitor.RunState(r.run_id, r.budget, r.state, "imported" if r.run_id.startswith("import-") else r.role)
        for r in stored.itertuples()
        if r.run_id not in planned
    ]


# The columns of status_table: the run's state, then its shape and plan (from its spec), then why.
STATUS_COLUMNS = (
    "run_id", "state", "role", "budget", "N", "D", "C", "d_model", "n_layers", "n_heads", "batch_size", "steps",
    "lr", "parent", "branch_step", "reason",
)  # fmt: skip


def status_table(path: Path, states: list[RunState]) -> pd.DataFrame:
    """The states (of `status` or `wait`) as a DataFrame, one row per run, with the shape and role its
    spec gives; a run only the store holds has no spec here, and its role is the one `status` names."""
    specs = {run.run_id: spec for run in SweepDir.open(path).runs() if (spec := run.checked_spec()[0])}
    rows = [
        {**(describe(specs[s.run_id]).row() if s.run_id in specs else {"role": s.reason}),
         "run_id": s.run_id, "state": s.state, "budget": s.budget, "reason": s.reason}
        for s in states
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=list(STATUS_COLUMNS))


def _roles_named(sweep: SweepDir, states: list[RunState]) -> list[RunState]:
    """The states with the role as the reason of each target or trunk run that has no other."""
    roles = {entry["run_id"]: entry["role"] for entry in sweep.planned() if entry.get("role") in ("target", "trunk")}
    return [replace(s, reason=s.reason or roles[s.run_id]) if s.run_id in roles else s for s in states]


def local_workers(path: Path) -> list[int]:
    """Pids of the workers of the sweep's local queue that are alive."""
    from sweep.launch import localqueue

    return localqueue.live_workers(SweepDir.open(path))


def wait(path: Path, show_progress: bool = True) -> list[RunState]:
    from sweep.launch import monitor

    sweep = SweepDir.open(path)
    return _roles_named(sweep, monitor.wait(sweep, show_progress=show_progress))


def collect(path: Path, rebuild: bool = False) -> CollectReport:
    """Ingest the run directories into the store. `rebuild` makes a new store from the run
    directories, the source of truth, beside the old one, and only once it is whole moves the old
    one aside (to results.db.<time>.bak); imported runs are not in run directories and must be
    imported again."""
    sweep = SweepDir.open(path)
    budgets = {entry["run_id"]: entry["budget"] for entry in sweep.planned()}
    run_dirs = sorted((RunDir(p) for p in sweep.runs_dir.glob("*") if p.is_dir()), key=lambda r: r.run_id)
    if not rebuild:
        with Store(sweep.db_file) as store:
            return store.collect(run_dirs, budgets)
    with sweep.lock():  # a second rebuild, or a launch, waits until the new store is in place
        return _rebuild(sweep, run_dirs, budgets)


def _rebuild(sweep: SweepDir, run_dirs: list[RunDir], budgets: dict[str, float]) -> CollectReport:
    fresh = sweep.path / f".{sweep.db_file.name}.rebuild"
    for leftover in _store_files(fresh):
        leftover.unlink()
    try:
        with Store(fresh) as store:
            report = store.collect(run_dirs, budgets)
    except BaseException:
        for partial in _store_files(fresh):
            partial.unlink()
        raise
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for old in _store_files(sweep.db_file):
        old.rename(old.with_name(f"{old.name}.{stamp}.bak"))
    fresh.rename(sweep.db_file)
    return report


def _store_files(db: Path) -> list[Path]:
    """The database and SQLite's files beside it (write-ahead log, shared memory), those that exist."""
    return [p for p in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")) if p.exists()]


def finished_runs(path: Path) -> pd.DataFrame:
    with Store(SweepDir.open(path).db_file, create=False) as store:
        return store.runs(state="done")


def export(path: Path, fmt: ExportFormat | str, out: Path) -> list[ExportedTable]:
    """The sweep's runs, curves, fits and proposals as out/<table>.<fmt> (see sweep/export.py); a sweep
    with nothing collected gives the tables empty."""
    sweep = SweepDir.open(path)
    root, target = sweep.path.resolve(), Path(out).resolve()
    if target == root or any(target.is_relative_to(root / own) for own in SWEEP_FOLDERS):
        raise UserError(f"--out {out} is the sweep directory {path} or one of its own folders; export elsewhere, "
                        f"e.g. --out {Path(path) / 'export'} or --out exports/{root.name}")  # fmt: skip
    return write_tables(store_tables(sweep.db_file), fmt, out)


SWEEP_FOLDERS = ("runs", "fits", "proposals", "jobs", "report", "wandb")  # what the sweep writes, besides its files


def fit(path: Path, overrides: list[str] | None = None, progress: Progress | None = None) -> FitReport:
    """Fit the sweep's collected runs (fit_recorded), and log the fit to W&B when it is on. The W&B
    run's figures are the report's, which fits the sweep's saved config: they are left out when
    overrides change the fit section."""
    report = fit_recorded(path, overrides, progress)
    config = sweep_config(path, overrides)
    log_fit(path, config, report, with_figures=config.fit == sweep_config(path).fit)
    return report


def fit_recorded(path: Path, overrides: list[str] | None = None, progress: Progress | None = None) -> FitReport:
    """Fit the sweep's collected runs; the report goes to fits/fit.json and the store's fits table.
    progress(stage, done, total) hears how the fit goes (sweep/fit/report.py fit_all), unless it is
    read from the sweep's saved fits."""
    sweep = SweepDir.open(path)
    return _fit(sweep, _sweep_config(sweep, overrides), finished_runs(path), stored_curves(sweep), progress=progress)


def stored_curves(sweep: SweepDir) -> pd.DataFrame:
    with Store(sweep.db_file, create=False) as store:
        return store.curves()


def _fit(
    sweep: SweepDir,
    config: Config,
    runs: pd.DataFrame,
    curves: pd.DataFrame,
    allow_unfitted: bool = False,
    progress: Progress | None = None,
) -> FitReport:
    report = cached_fit_all(runs, config.fit, curves, allow_unfitted, fit_cache(sweep), progress)
    payload = report.to_dict()
    atomic_write_json(sweep.fits_dir / "fit.json", payload)
    fitted_from = origin(sized_proxies(runs, config.fit)["run_id"], config.fit)
    with Store(sweep.db_file) as store:
        for approach in ("approach1", "approach2", "approach3"):
            if approach in payload:
                store.record_fit(approach, report.counting, report.n_runs, payload[approach], fitted_from)
    return report


def fit_cache(sweep: SweepDir) -> FitCache:
    """The sweep's saved fits: a fit of unchanged runs with an unchanged fit config is read, not redone."""
    return FitCache(sweep.fits_dir / "cache")


def compare(
    paths: list[Path],
    overrides: list[str] | None = None,
    computes: list[float] | None = None,
    shared_floor: bool = False,
    progress: Progress | None = None,
) -> CompareResult:
    """Each sweep against the first: predicted losses, the effective-compute multiplier and the crossover,
    with intervals, at `computes` counted as 6ND (default: powers of ten from the smallest run's 6ND up to
    1000x the largest's); recorded in every sweep's store (sweep/compare.py, sweep/fit/compare.py)."""
    from sweep.compare import compare as compare_sweeps

    return compare_sweeps([Path(p) for p in paths], overrides, computes, shared_floor, progress)


def read_csv_runs(csv: Path, columns: CsvColumns = CsvColumns()) -> pd.DataFrame:
    """External results: N, loss, and D or C (the other from C = 6 N D); optional budget and run
    name columns. Every row is checked first (sweep.csvinput)."""
    return read_runs(csv, columns)


def is_csv(source: Path) -> bool:
    """Whether a command's SOURCE names a CSV file rather than a sweep directory."""
    return Path(source).suffix.lower() == ".csv" or Path(source).is_file()


def source_runs(source: Path, columns: CsvColumns, overrides: list[str] | None) -> tuple[pd.DataFrame, FitConfig]:
    """The runs to fit and the fit section of the config, from a sweep directory or a CSV file."""
    if is_csv(source):
        return read_csv_runs(source, columns), compose(overrides or []).fit
    _no_csv_options(source, columns)
    return finished_runs(source), sweep_config(source, overrides).fit


def fit_source(
    source: Path, columns: CsvColumns, overrides: list[str] | None, progress: Progress | None = None
) -> FitReport:
    """A CSV file's fit (written nowhere) or a sweep directory's (`fit`: recorded in it, logged to W&B)."""
    if is_csv(source):
        return fit_table(*source_runs(source, columns, overrides), progress)
    _no_csv_options(source, columns)
    return fit(source, overrides, progress)


def _no_csv_options(source: Path, columns: CsvColumns) -> None:
    if columns != CsvColumns():
        raise UserError(f"{source} is a sweep directory: the CSV options (--n-col ...) apply to CSV files only")


@dataclass(frozen=True)
class ImportReport:
    sweep_dir: Path
    rows: int
    new: int
    budgets: pd.DataFrame  # budget, runs, C_min, C_max: how the rows were grouped
    skipped: dict[str, str] = field(default_factory=dict)  # a run not imported -> why (W&B runs)


def import_csv(csv: Path, into: Path, columns: CsvColumns = CsvColumns()) -> ImportReport:
    """Add a CSV's finished runs to a sweep's store (a new sweep directory if `into` does not
    exist), so that `sweep fit` fits them, alone or with the sweep's own runs. Every row is
    checked before anything is written."""
    return _import_runs(read_csv_runs(csv, columns), into, str(Path(csv).resolve()))


def import_wandb(project: str, into: Path, columns: CsvColumns = CsvColumns()) -> ImportReport:
    """Add the finished runs of the W&B project ENTITY/PROJECT, and their curves, to a sweep's store (see
    sweep/wandb_import.py for what is read). Online only; nothing is written unless the runs were read."""
    from sweep import wandb_import

    if columns.name_col or columns.drop_highest_loss:
        raise UserError("--name-col and --drop-highest-loss apply to CSV files; W&B runs are named by their id")
    runs = wandb_import.convert(wandb_import.fetch_runs(project), columns)
    if runs.table.empty:
        why = "; ".join(f"{run_id}: {reason}" for run_id, reason in list(runs.skipped.items())[:3]) or "it has none"
        raise UserError(f"no finished run of {project} can be imported ({why}); name the summary's keys with "
                        "--n-col, --d-col, --c-col, --loss-col")  # fmt: skip
    return _import_runs(runs.table, into, f"wandb:{project}", runs.curves, runs.skipped)


def _import_runs(
    runs: pd.DataFrame, into: Path, source: str, curves: dict[str, list[dict]] | None = None,
    skipped: dict[str, str] | None = None,
) -> ImportReport:  # fmt: skip
    table = prepare(runs)
    if "name" in runs:
        table["name"] = runs["name"].to_numpy()
    sweep = SweepDir.open(into) if (Path(into) / "plan.json").exists() else SweepDir.create(into, compose([]))
    with Store(sweep.db_file) as store:
        new = store.import_runs(table, source, curves)
    budgets = table.groupby("budget")["C"].agg(runs="count", C_min="min", C_max="max").reset_index()
    return ImportReport(sweep.path, len(table), new, budgets, skipped or {})


def fit_table(runs: pd.DataFrame, fit_config: FitConfig, progress: Progress | None = None) -> FitReport:
    """Fit a table of runs from elsewhere (see read_csv_runs); nothing is written."""
    return fit_all(runs, fit_config, progress=progress)


def backtest_source(
    source: Path, columns: CsvColumns, overrides: list[str] | None, holdout_top: int, progress: Progress | None = None
) -> Backtest:
    """A sweep directory's backtest (its fits saved in the sweep, see fit_cache) or a CSV file's (written
    nowhere). Target runs are held out of the backtest too (unless fit.include_targets): see trained_targets."""
    runs, fit_config = source_runs(source, columns, overrides)
    if is_csv(source):
        return run_backtest(proxies(runs, fit_config.include_targets)[0], fit_config, holdout_top, None, progress)
    sweep = SweepDir.open(source)
    fitted = proxies(runs, fit_config.include_targets)[0]
    return run_backtest(fitted, fit_config, holdout_top, fit_cache(sweep), progress, stored_curves(sweep))


def curve_backtest(source: Path, overrides: list[str] | None = None) -> CurveBacktest:
    """Each run's final loss predicted by the curve law of the other runs of its shape (trunks among
    them), beside a naive baseline (sweep/fit/curvelaw.py). Target runs are left out unless
    fit.include_targets."""
    if is_csv(source):
        raise UserError(f"--curves needs a sweep directory; {source} is a CSV file, which has no training curves")
    sweep = SweepDir.open(source)
    config = _sweep_config(sweep, overrides)
    runs = proxies(finished_runs(source), config.fit.include_targets)[0]
    curves = run_curves(runs, stored_curves(sweep))
    if not curves:
        raise UserError(f"{source} has no finished runs with training curves in its store; train runs with "
                        "`sweep launch` and `sweep collect` them (imported runs have no curves)")  # fmt: skip
    return backtest_curves(curves, config.fit.huber_delta)


MAX_COMPUTE = 1e35  # the largest compute proposed for, and the largest run.budget `sweep train --config` accepts


def check_compute(compute: float | None) -> None:
    if compute is not None and not (math.isfinite(compute) and 0 < compute <= MAX_COMPUTE):
        raise UserError(f"--compute {compute} must be a positive number of FLOPs up to {MAX_COMPUTE:g}")


def propose_target(
    path: Path,
    compute: float | None = None,
    overrides: list[str] | None = None,
    hparams_from: Path | None = None,
    progress: Progress | None = None,
) -> tuple[FitReport, Proposal]:
    """Fit, then propose the run at `compute` (default: target_multiplier x the largest budget, of
    the config or of the runs: an imported sweep's budgets are not in its config). A fit that cannot
    choose a shape never fails the proposal: it falls back and says so in the warnings. The LR and
    batch come from the LR x batch grid of `hparams_from` (a sweep=lrbatch directory), else of this
    sweep, where it identifies their laws; else from the rules. Logged to W&B when it is on (see fit)."""
    check_compute(compute)
    from sweep.propose import propose, target_yaml

    sweep = SweepDir.open(path)
    config = _sweep_config(sweep, overrides)
    hparams = lrbatch_fit(hparams_from, config) if hparams_from else None  # refused before anything is written
    runs, curves = finished_runs(path), stored_curves(sweep)
    report = _fit(sweep, config, runs, curves, allow_unfitted=True, progress=progress)
    fitted = proxies(runs, config.fit.include_targets)[0]
    compute = compute or config.sweep.target_multiplier * max([*config.sweep.budgets, *fitted["budget"].dropna()])
    proposal = propose(report, fitted, config, compute, hparams, curves, target_max_tokens(config, fitted))
    atomic_write_text(proposal_file(sweep, proposal), target_yaml(proposal, config))
    atomic_write_json(sweep.proposals_dir / f"{proposal.proposal_id}.json", proposal.to_dict())
    record = recorded_proposal_file(sweep, proposal.run_id)
    if sweep.run(proposal.run_id).state != "done":  # a trained target keeps the prediction made before it ran
        atomic_write_json(record, proposal.to_dict())
    with Store(sweep.db_file) as store:
        lrbatch = [f"{hparams_from}:{run}" for run in lrbatch_runs(hparams_from)["run_id"]] if hparams_from else []
        source = origin([*fitted["run_id"], *lrbatch], config.fit)
        store.record_proposal(proposal.proposal_id, compute, proposal.to_dict(), source)
    log_proposal(path, config, report, proposal, with_figures=config.fit == sweep.config().fit)
    return report, proposal


def report(path: Path, progress: Progress | None = None) -> ReportResult:
    """Write the sweep's report: DIR/report/index.html, one self-contained page, with each figure beside
    it as PNG and SVG, and provenance.json. progress(stage, done, total) hears the fit and the figures."""
    from sweep.report.build import write_report  # matplotlib: imported only by the command that draws

    return write_report(path, progress)


# What, besides the model and data, moves the optimal LR and batch (train.lr and the batch rules only
# centre the grid; the device, threads and seed do not change the optimum).
OPTIMIZER_SETTINGS = (
    "parameterization", "lr_ref_width", "warmup_frac", "min_lr_ratio", "weight_decay", "beta1", "beta2", "grad_clip",
)  # fmt: skip


def lrbatch_fit(path: Path, config: Config) -> HparamFit:
    """The LR/batch laws of another sweep's LR x batch grid, trained like this sweep's runs."""
    other = sweep_config(path)
    differ = [name for name in ("model", "data") if getattr(other, name) != getattr(config, name)]
    differ += [
        f"train.{name}" for name in OPTIMIZER_SETTINGS if getattr(other.train, name) != getattr(config.train, name)
    ]
    if differ:
        raise UserError(f"--hparams-from {path} was planned with other {', '.join(differ)} settings than this sweep; "
                        "its optimal LR and batch need not transfer: plan it with the same overrides")  # fmt: skip
    return fit_hparams(lrbatch_runs(path), config.fit)


def lrbatch_runs(path: Path) -> pd.DataFrame:
    """The finished runs of a sweep's LR x batch grid."""
    runs = proxies(finished_runs(path))[0]
    in_grid = grid_runs(runs)
    if not in_grid.any():
        raise UserError(
            f"--hparams-from {path} has no finished runs of an LR x batch grid; plan one with sweep=lrbatch"
        )
    return runs[in_grid]


def proposal_record(sweep: SweepDir, run_id: str) -> dict | None:
    """The proposal of this sweep that proposed this run: the one recorded for it, else the latest
    at its compute (a run already trained when proposed, as a proxy, has no record of its own)."""
    for path in [recorded_proposal_file(sweep, run_id), *sorted(sweep.proposals_dir.glob("*.json"))]:
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and record.get("run_id") == run_id and "proposal_id" in record:
            return record
    return None


def target_max_tokens(config: Config, fitted: pd.DataFrame) -> int | None:
    """The training tokens a target may see: the data's, where the proxies were trained here (an
    imported sweep's data is not this config's)."""
    trained_here = not fitted["run_id"].str.startswith("import-").all() if "run_id" in fitted else False
    return data_tokens(config) if trained_here else None


def data_tokens(config: Config) -> int | None:
    """Training tokens of the config's data (None when it cannot be read here: no limit then)."""
    from models.config import DataError
    from models.data import train_tokens

    d = config.data
    try:
        return train_tokens(d.source, d.path, d.val_fraction, d.synthetic_tokens)
    except (DataError, OSError):
        return None


def recorded_proposal_file(sweep: SweepDir, run_id: str) -> Path:
    """The last proposal of this exact run made before it was trained: what its loss is checked against."""
    return sweep.proposals_dir / "runs" / f"{run_id}.json"


def trained_targets(path: Path) -> list[TargetCheck]:
    """Each trained target run (role=target) beside the loss its proposal predicted."""
    from sweep.propose import check_target

    sweep = SweepDir.open(path)
    runs = finished_runs(path)
    checks = []
    for run in runs[runs["role"] == "target"].itertuples():
        try:
            recorded = json.loads(recorded_proposal_file(sweep, run.run_id).read_text())
        except (OSError, ValueError):
            recorded = None  # trained from a config of the user's, or its record is unreadable
        checks.append(check_target(run.run_id, run.budget, run.loss, recorded))
    return checks


def proposal_file(sweep: SweepDir, proposal: Proposal) -> Path:
    return sweep.proposals_dir / f"{proposal.proposal_id}.yaml"


def add_next_wave(path: Path, proposal: Proposal, wave: int) -> list[RunSpec]:
    from sweep.propose import wave_specs

    sweep = SweepDir.open(path)
    return sweep.add_runs(wave_specs(proposal, sweep.config(), usable_trunks(sweep)), wave=wave)


def usable_trunks(sweep: SweepDir) -> list[RunSpec]:
    """The sweep's trunks that a new branch may start from: trained, or planned to be, but not failed."""
    runs = [(r, r.checked_spec()[0]) for r in sweep.runs()]
    return [spec for r, spec in runs if spec and spec.role == "trunk" and r.state not in FAILED_STATES]


def propose_next_wave(
    path: Path,
    budget_flops: float,
    compute: float | None = None,
    overrides: list[str] | None = None,
    progress: Progress | None = None,
) -> NextWave:
    """Fit, propose the target, and plan the runs within budget_flops FLOPs that most narrow the 95%
    interval of its predicted loss (sweep/nextwave.py) as a new wave, which `sweep launch` trains;
    the wave is recorded in proposals/next-wave-<wave>.json. Nothing is written when the allowance
    buys no run or Approach 3 has no interval to narrow."""
    check_compute(compute)
    if not (math.isfinite(budget_flops) and budget_flops > 0):
        raise UserError(f"--budget-flops {budget_flops} must be a positive number of FLOPs, e.g. 1e13")
    sweep = SweepDir.open(path)
    wave = choose_next_wave(sweep, overrides, budget_flops, progress, compute=compute)
    plan_next_wave(sweep, wave, sweep.next_wave())
    return wave


def choose_next_wave(
    sweep: SweepDir,
    overrides: list[str] | None,
    allowance: float,
    progress: Progress | None = None,
    proposal: Proposal | None = None,
    compute: float | None = None,
) -> NextWave:
    """The next wave bought with `allowance` FLOPs for the target of `proposal` (default: proposed now,
    at `compute`)."""
    from sweep.nextwave import candidates, check_affordable, fitted_table, next_wave

    config = _sweep_config(sweep, overrides)
    if config.sweep.kind != "isoflop":
        raise UserError(f"--next-wave adds IsoFLOP runs; {sweep.path} is a sweep={config.sweep.kind.value} sweep")
    runs = finished_runs(sweep.path)
    untrained = [r.run_id for r in sweep.runs() if r.state not in FINISHED_STATES]
    if untrained:
        raise UserError(
            f"{len(untrained)} runs of {sweep.path} are not trained yet (e.g. {untrained[0]}): a wave is bought "
            f"against the fit of trained runs; `sweep launch {sweep.path}`, wait, then propose again"
        )
    offered = candidates(fitted_table(runs, config.fit), {e["run_id"] for e in sweep.planned()}, config,
                         usable_trunks(sweep))  # fmt: skip
    check_affordable(offered, allowance)
    report = cached_fit_all(runs, config.fit, stored_curves(sweep), True, fit_cache(sweep), progress)
    if report.parametric is None or (why := report.parametric.law.unidentified()):
        why = report.errors.get("approach3", "not fitted") if report.parametric is None else f"unidentified, {why}"
        raise UserError(f"--next-wave narrows the interval of Approach 3's predicted loss, but Approach 3 has none "
                        f"({why}); train more sizes per budget and more budgets, then propose again")  # fmt: skip
    if proposal is None:
        report, proposal = propose_target(sweep.path, compute, overrides, progress=progress)
    fitted = proxies(runs, config.fit.include_targets)[0]
    return next_wave(report, runs, offered, config, proposal, target_max_tokens(config, fitted), allowance, progress)


def plan_next_wave(sweep: SweepDir, wave: NextWave, number: int) -> list[RunSpec]:
    """Add the wave's runs to the plan as wave `number`, and record it; nothing for an empty wave."""
    if not wave.picks:
        return []
    atomic_write_json(sweep.proposals_dir / f"next-wave-{number}.json", wave.to_dict())
    return sweep.add_runs(wave.specs, wave=number)


def train(
    overrides: list[str], out: Path, config_file: Path | None = None, on_step: StepReport | None = None
) -> tuple[RunSpec, str, dict]:
    """Train the run named by the config's `run` section in this process, under out/runs/<id>.
    on_step(step, total, eval loss or None, tokens/s) hears how training goes (TrainOptions.on_step)."""
    from sweep.launch.job import run_one, train_options
    from sweep.plan.grids import single_run_spec

    config = compose(overrides, config_file)
    spec = single_run_spec(config)
    run_dir = RunDir(Path(out) / "runs" / spec.run_id)
    if run_dir.state == "done":
        return spec, "done", run_dir.read_result()
    run_dir.write_spec(spec)
    if run_dir.state in FAILED_STATES:
        run_dir.set_state("queued", executor="foreground")  # asked for explicitly: try again
    options = replace(train_options(config, "foreground", Path(out).resolve().name), on_step=on_step)
    state = run_one(run_dir, options, str(os.getpid()))
    result = run_dir.read_result() if state == "done" else run_dir.read_status()
    return spec, state, result


@dataclass(frozen=True)
class RunReport:
    sweep: SweepDir
    planned: list[PlannedRun]
    waves: list[list[PlannedRun]]  # the runs each extension wave added
    report: FitReport
    proposal: Proposal
    proposal_file: Path
    stopped: str = ""  # why no further wave was bought, when sweep.next_wave_flops could not buy one


def run(
    overrides: list[str],
    out: Path,
    executor: str | None = None,
    show_progress: bool = True,
    on_wave: Callable[[int, list[PlannedRun]], None] | None = None,
    progress: Progress | None = None,
) -> RunReport:
    """Plan, launch, wait, collect, fit and propose; while a budget's minimum is at an edge of its
    sizes, add the proposed shapes beyond it as a new wave (at most sweep.max_extensions) and go again.
    With sweep.next_wave_flops > 0, each new wave is instead the runs that FLOPs buy which most narrow
    the target's interval (`extension`), until none narrows it.
    `on_wave(wave, runs)` is called with the plan (wave 0) and as each later wave is added (after
    that wave's fit); `progress` hears how each fit goes (see `fit`)."""
    sweep, planned = plan(overrides, out)
    if on_wave:
        on_wave(0, planned)
    config = sweep.config()
    waves, stopped = [], ""
    for wave in range(config.sweep.max_extensions + 1):
        launch(out, executor)
        wait(out, show_progress=show_progress)
        collect(out)
        report, proposal = propose_target(out, progress=progress)
        if wave == config.sweep.max_extensions:
            break
        try:
            added = [describe(s) for s in extension(sweep, proposal, wave + 1, progress)]
        except UserError as exc:  # the allowance buys no run now, or Approach 3 has no interval to narrow
            stopped = f"no wave {wave + 1} bought with sweep.next_wave_flops: {exc}"
            break
        if not added:
            break
        waves.append(added)
        if on_wave:
            on_wave(wave + 1, added)
    return RunReport(sweep, planned, waves, report, proposal, proposal_file(sweep, proposal), stopped)


def extension(sweep: SweepDir, proposal: Proposal, number: int, progress: Progress | None = None) -> list[RunSpec]:
    """The runs an extension round of `run` adds: the next wave bought with sweep.next_wave_flops
    when it is set, else shapes beyond each budget whose lowest loss is at an edge."""
    allowance = sweep.config().sweep.next_wave_flops
    if allowance > 0:
        return plan_next_wave(sweep, choose_next_wave(sweep, None, allowance, progress, proposal), number)
    return add_next_wave(sweep.path, proposal, number) if proposal.next_wave else []


def sweep_config(path: Path, overrides: list[str] | None = None) -> Config:
    return _sweep_config(SweepDir.open(path), overrides)


def _sweep_config(sweep: SweepDir, overrides: list[str] | None) -> Config:
    if not overrides:
        return sweep.config()
    return compose(overrides, config_file=sweep.config_file)
