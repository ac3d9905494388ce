"""Fit Approaches 2 and 3 to a table of runs, with bootstrap refits, as one JSON-able report."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sweep.config import FitConfig
from sweep.errors import UserError
from sweep.fit.bootstrap import bootstrap, interval
from sweep.fit.forms import Chinchilla
from sweep.fit.isoflop import IsoflopFit, fit_isoflop
from sweep.fit.parametric import ParametricFit, fit_parametric

CHINCHILLA_PARAMS = ("E", "A", "B", "alpha", "beta")


@dataclass(frozen=True)
class FitReport:
    counting: str
    n_runs: int
    parametric: ParametricFit | None
    isoflop: IsoflopFit | None
    parametric_samples: list[Chinchilla]  # bootstrap refits of Approach 3
    isoflop_samples: list[IsoflopFit]  # bootstrap refits of Approach 2
    errors: dict[str, str]  # approach -> why it could not be fitted

    def parameter_intervals(self) -> dict[str, tuple[float, float] | None]:
        return {k: interval(getattr(s, k) for s in self.parametric_samples) for k in CHINCHILLA_PARAMS}

    def to_dict(self) -> dict:
        out: dict = {"counting": self.counting, "n_runs": self.n_runs, "errors": self.errors}
        if self.parametric:
            out["approach3"] = {
                **self.parametric.law.as_dict(),
                "objective": self.parametric.objective,
                "intervals": self.parameter_intervals(),
                "bootstrap": len(self.parametric_samples),
            }
        if self.isoflop:
            f = self.isoflop
            out["approach2"] = {
                name: {
                    "coefficient": getattr(f, name).coefficient,
                    "exponent": getattr(f, name).exponent,
                    "exponent_interval": interval(getattr(s, name).exponent for s in self.isoflop_samples),
                }
                for name in ("N_star", "D_star", "L_star")
            }
            out["approach2"]["budgets"] = [vars(b) for b in f.budgets]
            out["approach2"]["bootstrap"] = len(self.isoflop_samples)
        return out


def prepare(runs: pd.DataFrame, counting: str = "non_embedding") -> pd.DataFrame:
    """Columns N, D, C, loss, budget from a store or CSV table; N per the chosen counting."""
    table = runs.copy()
    if counting == "total":
        if "N_total" not in table or table["N_total"].isna().any():
            raise UserError("fit.counting=total needs N_total for every run; use fit.counting=non_embedding")
        table["N"] = table["N_total"]
    validate(table, ("N", "D", "C", "loss"))
    if "budget" not in table or table["budget"].isna().any():
        table["budget"] = table["C"].map(lambda c: float(f"{c:.2g}"))
    return table[["N", "D", "C", "loss", "budget"]].reset_index(drop=True)


def validate(table: pd.DataFrame, columns: tuple[str, ...]) -> None:
    for column in columns:
        if column not in table:
            raise UserError(f"column {column!r} is missing")
        values = pd.to_numeric(table[column], errors="coerce")
        bad = table.index[~(np.isfinite(values) & (values > 0))]
        if len(bad):
            rows = ", ".join(str(i) for i in bad[:5]) + (" ..." if len(bad) > 5 else "")
            raise UserError(f"column {column!r} has non-positive or non-finite values in rows {rows}; fix or drop them")
        table[column] = values


def fit_all(runs: pd.DataFrame, config: FitConfig) -> FitReport:
    table = prepare(runs, config.counting)
    if len(table) == 0:
        raise UserError("no finished runs to fit; wait for runs to finish and `sweep collect`")
    errors: dict[str, str] = {}
    parametric = isoflop = None
    parametric_samples: list[Chinchilla] = []
    isoflop_samples: list[IsoflopFit] = []
    try:
        parametric = fit_parametric(table["N"], table["D"], table["loss"], config.huber_delta)
    except UserError as exc:
        errors["approach3"] = str(exc)
    try:
        isoflop = fit_isoflop(table, config.exclude_edge_budgets)
    except UserError as exc:
        errors["approach2"] = str(exc)
    if parametric is None and isoflop is None:
        raise UserError(f"too few points to fit: {errors['approach3']}")

    if parametric is not None:
        start = parametric.theta

        def refit3(sample: pd.DataFrame) -> Chinchilla:
            # From the full fit's optimum an identified problem converges in tens of iterations;
            # the cap only bounds the time spent wandering along an unidentified ridge.
            sample_fit = fit_parametric(
                sample["N"], sample["D"], sample["loss"], config.huber_delta, starts=start, max_iterations=300
            )
            return sample_fit.law

        parametric_samples = bootstrap(table, refit3, config.bootstrap, config.seed)
    if isoflop is not None:

        def refit2(sample: pd.DataFrame) -> IsoflopFit:
            return fit_isoflop(sample, config.exclude_edge_budgets)

        isoflop_samples = bootstrap(table, refit2, config.bootstrap, config.seed, by="budget")
    return FitReport(config.counting, len(table), parametric, isoflop, parametric_samples, isoflop_samples, errors)
