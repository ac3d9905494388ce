"""Approach 2: per compute budget, a robust parabola of loss in log N; its vertex gives N*(C) and
L*(C); power laws in C across the budgets whose minimum is inside the sampled sizes.

A budget whose vertex lies outside the sizes it sampled (or whose parabola opens downwards) is
off-centre: its vertex is an extrapolation, so it is flagged and, by default, left out of the laws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sweep.fit.errors import FitError
from sweep.fit.forms import PowerLaw


@dataclass(frozen=True)
class BudgetFit:
    budget: float
    n_runs: int
    N_star: float
    D_star: float
    L_star: float
    centred: bool
    edge: str  # "" when the observed minimum is interior, else "below" or "above"


@dataclass(frozen=True)
class IsoflopFit:
    budgets: list[BudgetFit]
    N_star: PowerLaw  # N*(C)
    D_star: PowerLaw  # D*(C)
    L_star: PowerLaw  # L*(C), a pure power law


def robust_parabola(x: np.ndarray, y: np.ndarray, iterations: int = 20) -> np.ndarray:
    """Coefficients (c2, c1, c0) of y ~ c2 x^2 + c1 x + c0 under a Huber loss with scale 0.5% of y,
    by iteratively reweighted least squares (residuals beyond the scale get weight scale/|r|)."""
    scale = 0.005 * np.median(y)
    design = np.vander(x, 3)
    weights = np.ones_like(y)
    for _ in range(iterations):
        root = np.sqrt(weights)
        coefficients = np.linalg.lstsq(design * root[:, None], y * root, rcond=None)[0]
        residuals = np.abs(design @ coefficients - y)
        new = np.where(residuals <= scale, 1.0, scale / np.maximum(residuals, 1e-300))
        if np.allclose(new, weights):
            break
        weights = new
    return coefficients


def fit_budget(N: np.ndarray, D: np.ndarray, loss: np.ndarray, budget: float) -> BudgetFit:
    """The parabola of one budget's runs (arrays in any order)."""
    order = np.argsort(N)
    x, y, log_d = np.log(N[order]), loss[order], np.log(D[order])
    argmin = int(np.argmin(y))
    edge = "below" if argmin == 0 else "above" if argmin == len(y) - 1 else ""
    c2, c1, c0 = robust_parabola(x, y)
    if c2 > 0:
        vertex = -c1 / (2 * c2)
        centred = bool(x.min() <= vertex <= x.max()) and not edge
    else:
        vertex, centred = x[argmin], False
    log_d_slope, log_d_intercept = np.polyfit(x, log_d, 1)
    return BudgetFit(
        budget=float(budget),
        n_runs=len(y),
        N_star=float(np.exp(vertex)),
        D_star=float(np.exp(log_d_intercept + log_d_slope * vertex)),
        L_star=float(np.polyval((c2, c1, c0), vertex)),
        centred=centred,
        edge=edge,
    )


def budget_fits(runs: pd.DataFrame) -> list[BudgetFit]:
    """The parabola of each budget with 3+ sizes (runs: columns N, D, loss, budget)."""
    # numpy rather than groupby: the bootstrap calls this a thousand times
    order = np.argsort(runs["budget"].to_numpy(), kind="stable")
    budget, n, d, loss = (runs[k].to_numpy(dtype=float)[order] for k in ("budget", "N", "D", "loss"))
    starts = np.flatnonzero(np.r_[True, budget[1:] != budget[:-1]])
    return [
        fit_budget(n[i:j], d[i:j], loss[i:j], budget[i])
        for i, j in zip(starts, np.r_[starts[1:], len(budget)], strict=True)
        if len(np.unique(n[i:j])) >= 3
    ]


def fit_isoflop(runs: pd.DataFrame, exclude_off_centre: bool = True) -> IsoflopFit:
    """runs: columns N, D, C, loss, budget. Budgets with fewer than 3 sizes are left out."""
    budgets = budget_fits(runs)
    used = [b for b in budgets if b.centred or not exclude_off_centre]
    if len(used) < 2:
        raise FitError(
            f"Approach 2 needs at least 2 budgets with 3+ sizes and an interior minimum; found {len(used)} "
            f"of {len(budgets)} (train sizes around each budget's optimum, or set fit.exclude_edge_budgets=false)"
        )
    C = np.array([b.budget for b in used])
    return IsoflopFit(
        budgets=budgets,
        N_star=PowerLaw.fit(C, [b.N_star for b in used]),
        D_star=PowerLaw.fit(C, [b.D_star for b in used]),
        L_star=PowerLaw.fit(C, [b.L_star for b in used]),
    )
