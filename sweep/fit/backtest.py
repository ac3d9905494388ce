"""Backtest: fit on all but the largest budgets, then score the predictions for the held-out ones.

This is the question a user of the proposal asks ("would the fit have predicted my largest runs?"),
answered on data already in hand: per held-out run the error of Approach 3's predicted loss, and
per held-out budget the error of the predicted compute-optimal size N* and loss L* against that
budget's own IsoFLOP vertex (when its minimum lies inside the sizes it sampled).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from sweep.config import FitConfig
from sweep.fit.cache import FitCache, cached_fit_all
from sweep.fit.errors import FitError
from sweep.fit.isoflop import fit_budget
from sweep.fit.report import FitReport, Progress, prepare


@dataclass(frozen=True)
class HeldOutBudget:
    budget: float
    n_runs: int
    observed_N_star: float | None  # the budget's own vertex; None when it is off-centre or has < 3 sizes
    observed_L_star: float | None
    approach2_N_star: float | None
    approach2_L_star: float | None
    approach3_N_star: float | None
    approach3_L_star: float | None  # the law's loss at its own optimal (N, D = C / 6N)

    def errors(self) -> dict[str, float | None]:
        """Relative errors (predicted / observed - 1) of each approach's N* and L*."""

        def rel(predicted, observed):
            return None if predicted is None or observed is None else predicted / observed - 1

        return {
            "approach2_N_star": rel(self.approach2_N_star, self.observed_N_star),
            "approach2_L_star": rel(self.approach2_L_star, self.observed_L_star),
            "approach3_N_star": rel(self.approach3_N_star, self.observed_N_star),
            "approach3_L_star": rel(self.approach3_L_star, self.observed_L_star),
        }


@dataclass(frozen=True)
class Backtest:
    fitted_budgets: list[float]
    held_out: list[HeldOutBudget]
    n_fitted_runs: int
    n_held_out_runs: int
    loss_mean_ape: float | None  # Approach 3 on every held-out run, in percent
    loss_max_ape: float | None
    report: FitReport  # the fit on the kept budgets

    def to_dict(self) -> dict:
        return {
            "fitted_budgets": self.fitted_budgets,
            "n_fitted_runs": self.n_fitted_runs,
            "n_held_out_runs": self.n_held_out_runs,
            "loss_mean_ape_percent": self.loss_mean_ape,
            "loss_max_ape_percent": self.loss_max_ape,
            "held_out": [{**asdict(b), "errors": b.errors()} for b in self.held_out],
            "fit": self.report.to_dict(),
        }


def backtest(
    runs: pd.DataFrame,
    config: FitConfig,
    holdout_top: int,
    cache: FitCache | None = None,
    progress: Progress | None = None,
    curves: pd.DataFrame | None = None,
) -> Backtest:
    """cache: where the fit on the kept budgets is saved and reused (sweep/fit/cache.py); None fits
    anew. progress: fit_all's, for that fit. curves: the runs' (a store's), read by the fit of the
    kept budgets only with fit.curve_law_points, and only the kept runs' curves."""
    table = prepare(runs, config.counting)
    budgets = sorted(table["budget"].unique())
    if len(budgets) < 3:
        raise FitError(
            f"backtest needs at least 3 budgets (2 to fit, 1 to hold out); the data has {len(budgets)}: "
            "add budgets, or give a budget column"
        )
    if holdout_top < 1 or holdout_top > len(budgets) - 2:
        raise FitError(
            f"--holdout-top {holdout_top}: the data has {len(budgets)} budgets; hold out between 1 and "
            f"{len(budgets) - 2} so that at least 2 remain to fit"
        )
    held_budgets = budgets[-holdout_top:]
    held = table[table["budget"].isin(held_budgets)]
    kept = table[~table["budget"].isin(held_budgets)]
    if config.curve_law_points and curves is not None:  # the law reads the runs' specs: the store's rows
        kept_curves = curves[curves["run_id"].isin(kept["run_id"])]
        report = cached_fit_all(runs.iloc[kept.index], config, kept_curves, cache=cache, progress=progress)
    else:
        report = cached_fit_all(kept, config, cache=cache, progress=progress)

    ape = None
    if report.parametric is not None:
        law = report.parametric.law
        ape = 100 * np.abs(law.loss(held["N"].to_numpy(), held["D"].to_numpy()) / held["loss"].to_numpy() - 1)
    checks = [_check_budget(report, group, budget) for budget, group in held.groupby("budget")]
    return Backtest(
        fitted_budgets=[float(b) for b in budgets[:-holdout_top]],
        held_out=checks,
        n_fitted_runs=len(kept),
        n_held_out_runs=len(held),
        loss_mean_ape=None if ape is None else float(ape.mean()),
        loss_max_ape=None if ape is None else float(ape.max()),
        report=report,
    )


def _check_budget(report: FitReport, group: pd.DataFrame, budget: float) -> HeldOutBudget:
    arrays = (group[k].to_numpy(dtype=float) for k in ("N", "D", "loss"))
    observed = fit_budget(*arrays, budget) if group["N"].nunique() >= 3 else None
    if observed is not None and not observed.centred:
        observed = None
    a2 = report.isoflop
    a3 = report.parametric.law if report.parametric else None
    a3_n = float(a3.optimal_params(budget)) if a3 else None
    return HeldOutBudget(
        budget=float(budget),
        n_runs=len(group),
        observed_N_star=observed.N_star if observed else None,
        observed_L_star=observed.L_star if observed else None,
        approach2_N_star=float(a2.N_star(budget)) if a2 else None,
        approach2_L_star=float(a2.L_star(budget)) if a2 else None,
        approach3_N_star=a3_n,
        approach3_L_star=float(a3.loss(a3_n, budget / (6 * a3_n))) if a3 else None,
    )
