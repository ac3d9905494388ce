"""Everything a report shows, read once from a sweep directory: runs, curves, the fit, the proposal."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sweep import api
from sweep.config import Config
from sweep.fit.backtest import Backtest
from sweep.fit.report import FitReport, Progress, prepare, proxies
from sweep.propose import TargetCheck
from sweep.store import Store
from sweep.sweepdir import SweepDir


@dataclass(frozen=True)
class ReportData:
    path: Path  # the sweep directory
    config: Config
    runs: pd.DataFrame  # every finished run of the store (targets and trunks too), with its `role`
    fitted: pd.DataFrame  # the runs the fit used, prepared (prepare(): N under the fit's counting)
    curves: pd.DataFrame  # the store's curves: run_id, step, tokens, flops, train_loss, eval_loss, lr
    fit: FitReport
    proposal: dict | None  # the latest target proposal (Proposal.to_dict()), None when none was made
    targets: list[TargetCheck]  # trained targets beside their predictions
    backtest: Backtest | None  # the fit on all but the largest budget, None when too few budgets
    proposal_made: float | None = None  # when the proposal was written (seconds since the epoch)
    trained_since_proposal: int = 0  # fitted runs that finished after it: the proposal did not see them
    comparison: dict | None = None  # the latest `sweep compare` (Comparison.to_dict()), None when none was made

    @property
    def name(self) -> str:
        return self.path.resolve().name


def gather(path: Path, progress: Progress | None = None, fit: FitReport | None = None) -> ReportData:
    """Read what the report shows; the sweep's fit is `fit` where the caller has just made it, else fitted
    here (cached in the sweep, so mostly read)."""
    sweep = SweepDir.open(path)
    config = api.sweep_config(path)
    runs = api.finished_runs(path)
    curves = api.stored_curves(sweep)
    report = fit or api.fit_recorded(path, progress=progress)
    fitted = prepare(proxies(runs, config.fit.include_targets)[0], config.fit.counting)
    proposal, made = latest_proposal(sweep)
    return ReportData(
        path=path, config=config, runs=runs, fitted=fitted, curves=curves, fit=report, proposal=proposal,
        targets=api.trained_targets(path), backtest=held_out_backtest(path, progress), proposal_made=made,
        trained_since_proposal=finished_after(sweep, fitted, made) if made else 0,
        comparison=latest_comparison(sweep),
    )  # fmt: skip


def latest_proposal(sweep: SweepDir) -> tuple[dict | None, float | None]:
    """The newest target proposal file (proposals/target-*.json), by modification time, and that time."""
    files = sorted(sweep.proposals_dir.glob("target-*.json"), key=lambda p: p.stat().st_mtime)
    for path in reversed(files):
        try:
            return json.loads(path.read_text()), path.stat().st_mtime
        except (OSError, ValueError):
            continue
    return None, None


COMPARISON_KEYS = {"baseline", "sweeps", "shared_e", "refits", "targets", "crossovers", "crossover_searched",
                   "curves", "notes", "compute_counted_as"}  # fmt: skip


def latest_comparison(sweep: SweepDir) -> dict | None:
    """The newest comparison in the store's fits table (approach "compare"); a row that is not one
    (unreadable JSON, a key the report reads missing) is passed over for the one before it."""
    with Store(sweep.db_file, create=False) as store:
        rows = store.db.execute("SELECT params_json FROM fits WHERE approach = 'compare' ORDER BY fit_id DESC")
        for (text,) in rows:
            try:
                payload = json.loads(text)
            except (TypeError, ValueError):
                continue
            if is_comparison(payload):
                return payload
    return None


def is_comparison(payload: object) -> bool:
    """Whether payload has what the report reads of a comparison, down to its targets and curves."""
    if not isinstance(payload, dict) or not payload.keys() >= COMPARISON_KEYS:
        return False
    curves, targets = payload["curves"], payload["targets"]
    return (
        isinstance(curves, dict) and {"compute", "loss", "multiplier"} <= curves.keys()
        and isinstance(targets, list) and len(targets) > 0
        and all(isinstance(t, dict) and {"compute", "variants"} <= t.keys() for t in targets)
    )  # fmt: skip


def finished_after(sweep: SweepDir, fitted: pd.DataFrame, moment: float) -> int:
    """How many of the fitted runs wrote their result after `moment` (imported runs have no result file)."""
    results = (sweep.run(run_id).result_file for run_id in fitted.get("run_id", []))
    return sum(1 for result in results if result.exists() and result.stat().st_mtime > moment)


def held_out_backtest(path: Path, progress: Progress | None) -> Backtest | None:
    """The backtest with the largest budget held out; None where the sweep has too few budgets for one."""
    from sweep.errors import UserError
    from sweep.fit.errors import FitError

    try:
        return api.backtest_source(path, api.CsvColumns(), None, 1, progress)
    except (UserError, FitError):
        return None
