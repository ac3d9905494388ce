"""Which prediction to trust: the approach that best predicted the sweep's own largest budget.

Hold out the top budget, fit the budgets below it (point fits, no bootstrap), and score every
approach on one quantity: the held-out budget's compute-optimal loss L*, the lowest loss its
compute reaches. It is what each approach predicts at the target (Approaches 1 and 2 and the L(C)
form directly, Approach 3 as its loss at the best shape), so it is the one error all of them can
be scored on: the L(C) form predicts no N*, and only Approach 3 predicts a run's own loss. The
observed L* is the vertex of the held-out budget's IsoFLOP parabola; Approach 3's is the vertex
of the parabola through its predicted losses at the same runs (same sizes, tokens and estimator,
so a grid that misses the optimum costs both sides alike). A budget whose minimum lies at an edge
of its sizes, or that has fewer than 3 sizes, gives its lowest loss instead.

With fewer than 3 budgets (2 to fit, 1 to hold out), or when the backtest scores none of the
approaches that predict the target, the first of FIXED_ORDER that predicts it is recommended, and
`why` says so. A recommendation is advice: nothing here ever makes a proposal fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from sweep.config import FitConfig
from sweep.fit.aspect import without_widthdepth, without_widthdepth_budgets
from sweep.fit.errors import FitError
from sweep.fit.isoflop import fit_budget
from sweep.fit.report import approach1, approach2, approach3, fit_forms, prepare

FIXED_ORDER = ("approach3", "approach2", "approach1", "L(C) form")
MIN_BUDGETS = 3  # 2 to fit, 1 to hold out; fewer leave the laws in C barely constrained (sweep.propose warns)


@dataclass(frozen=True)
class Recommendation:
    approach: str | None  # one of the proposal's predictions; None when it has none
    method: str  # "backtest" or "fixed order"; "only one" or "none" when there is nothing to choose from
    why: str
    errors: dict[str, float] = field(default_factory=dict)  # approach -> predicted / observed L* - 1
    held_out_budget: float | None = None
    observed_loss: float | None = None  # the held-out budget's L*


@dataclass(frozen=True)
class HeldOut:
    """The top budget's observed L* and each approach's prediction of it from the budgets below."""

    budget: float
    observed: float
    observed_from: str  # how the observed L* was read off the budget's runs
    predicted: dict[str, float]
    n_fitted_budgets: int

    def errors(self) -> dict[str, float]:
        return {a: loss / self.observed - 1 for a, loss in self.predicted.items() if np.isfinite(loss)}


def recommend(
    approaches: list[str], runs: pd.DataFrame, config: FitConfig, curves: pd.DataFrame | None = None
) -> Recommendation:
    """approaches: those the proposal predicts the target with; runs: the proxies it fitted; curves:
    the store's curves (for Approach 1), if any."""
    if not approaches:
        return Recommendation(None, "none", "no approach predicts the target")
    if len(approaches) == 1:
        return Recommendation(approaches[0], "only one", "the only approach that predicts the target")
    try:
        budgets = without_widthdepth_budgets(prepare(runs, config.counting))["budget"].nunique()
        if budgets < MIN_BUDGETS:
            return fixed_order(approaches, f"{budgets} budgets are too few for a backtest (it needs {MIN_BUDGETS}: "
                                           "2 to fit, 1 to hold out)")  # fmt: skip
        held_out = backtest_top_budget(runs, config, curves)
    except (FitError, ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:  # a fit that fails: fall back
        return fixed_order(approaches, f"the backtest failed ({type(exc).__name__}: {' '.join(str(exc).split())})")
    errors = held_out.errors()
    scored = {a: e for a, e in errors.items() if a in approaches}
    if not scored:
        return fixed_order(approaches, "the backtest on the top budget scores none of the approaches that predict "
                                       "the target")  # fmt: skip
    best = min(scored, key=lambda a: abs(scored[a]))
    listed = ", ".join(f"{a} {100 * e:+.2f}%" for a, e in sorted(errors.items(), key=lambda item: abs(item[1])))
    why = (
        f"the lowest error on the held-out top budget C = {held_out.budget:.3g} (observed L* "
        f"{held_out.observed:.4g}, {held_out.observed_from}), fitted on the {held_out.n_fitted_budgets} budgets "
        f"below it: {listed}"
    )
    return Recommendation(best, "backtest", why, errors, held_out.budget, held_out.observed)


def fixed_order(approaches: list[str], reason: str) -> Recommendation:
    first = next((a for a in FIXED_ORDER if a in approaches), approaches[0])
    why = f"by the fixed order {', '.join(FIXED_ORDER)}: {reason}"
    return Recommendation(first, "fixed order", why)


def backtest_top_budget(runs: pd.DataFrame, config: FitConfig, curves: pd.DataFrame | None) -> HeldOut:
    table = prepare(runs, config.counting)
    top = without_widthdepth_budgets(table)["budget"].max()  # a width/depth budget is not a valley to score
    below, held = table[table["budget"] < top], without_widthdepth(table[table["budget"] == top])
    observed, observed_from = valley_floor(held, held["loss"].to_numpy())
    return HeldOut(
        float(top), observed, observed_from, predictions(below, held, config, curves), below["budget"].nunique()
    )


def valley_floor(held: pd.DataFrame, losses: np.ndarray) -> tuple[float, str]:
    """L* of one budget's runs with these losses, and how it was read off them."""
    if held["N"].nunique() >= 3:
        vertex = fit_budget(held["N"].to_numpy(), held["D"].to_numpy(), losses, float(held["budget"].iloc[0]))
        if vertex.centred:
            return vertex.L_star, "its IsoFLOP vertex"
    return float(losses.min()), "its lowest loss: no interior minimum"


def predictions(
    below: pd.DataFrame, held: pd.DataFrame, config: FitConfig, curves: pd.DataFrame | None
) -> dict[str, float]:
    """Each approach fitted to the budgets below (point fits): its L* of the held-out budget. An
    approach that cannot be fitted there is not scored."""
    point, unfitted = replace(config, bootstrap=0), {}
    budget = float(held["budget"].iloc[0])
    predicted = {}
    if (parametric := approach3(below, point, unfitted)[0]) is not None:
        losses = parametric.law.loss(held["N"].to_numpy(), held["D"].to_numpy())
        predicted["approach3"] = valley_floor(held, losses)[0]
    for name, power_laws in (("approach2", approach2(below, point, unfitted)[0]),
                             ("approach1", approach1(below, curves, point, unfitted)[0])):  # fmt: skip
        if power_laws is not None:
            predicted[name] = float(power_laws.L_star(budget))
    if "compute" in config.forms:
        forms = fit_forms(below, replace(point, forms=["compute"]), unfitted)[0]
        if "compute" in forms:
            predicted["L(C) form"] = float(forms["compute"].loss(budget))
    return predicted
