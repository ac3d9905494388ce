"""Approach 2: per compute budget, a robust parabola of loss in log N; its vertex gives N*(C) and
L*(C); power laws in C across the budgets whose minimum is inside the sampled sizes.

A budget whose vertex lies outside the sizes it sampled (or whose parabola opens downwards) is
off-centre: its vertex is an extrapolation, so it is flagged and, by default, left out of the laws.

The bootstrap refits every resample at once (`isoflop_refits`): each budget's parabolas are fitted
across resamples as one stack, and the point fit is the batch of one resample, the table itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sweep.fit.bootstrap import Resamples
from sweep.fit.errors import FitError
from sweep.fit.forms import PowerLaw, fit_lines


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


@dataclass(frozen=True)
class BudgetFits:
    """One budget's parabola in each of a batch of resamples: arrays over resamples. A resample with
    fewer than 3 distinct sizes at the budget is not fitted (fitted False, NaN vertex)."""

    budget: float
    n_runs: int  # runs of the budget in each resample (duplicates counted)
    fitted: np.ndarray
    N_star: np.ndarray
    D_star: np.ndarray
    L_star: np.ndarray
    centred: np.ndarray
    edge: np.ndarray  # "", "below" or "above"

    def fit(self, i: int) -> BudgetFit:
        """Resample i's fit."""
        return BudgetFit(
            self.budget, self.n_runs, float(self.N_star[i]), float(self.D_star[i]), float(self.L_star[i]),
            bool(self.centred[i]), str(self.edge[i]),
        )  # fmt: skip


def robust_parabolas(x: np.ndarray, y: np.ndarray, iterations: int = 20) -> np.ndarray:
    """Coefficients (c2, c1, c0) of y ~ c2 x^2 + c1 x + c0 for each row of x, y (rows, points), under a
    Huber loss with scale 0.5% of the row's median y, by iteratively reweighted least squares
    (residuals beyond the scale get weight scale/|r|). A row stops at the iteration where its
    weights stop changing. The weighted fits are least-squares solutions through the pseudo-inverse
    (as np.linalg.lstsq: a line of fewer than 3 distinct x still gets its minimum-norm fit)."""
    scale = 0.005 * np.median(y, axis=1, keepdims=True)
    design = np.stack([x**2, x, np.ones_like(x)], axis=-1)
    weights = np.ones_like(y)
    coefficients = np.empty((len(y), 3))
    active = np.ones(len(y), dtype=bool)  # the rows whose weights still change
    for _ in range(iterations):
        if not active.any():
            break
        rows, root = np.flatnonzero(active), np.sqrt(weights[active])
        solved = np.linalg.pinv(design[rows] * root[..., None]) @ (y[rows] * root)[..., None]
        coefficients[rows] = solved[..., 0]
        residuals = np.abs((design[rows] @ solved)[..., 0] - y[rows])
        new = np.where(residuals <= scale[rows], 1.0, scale[rows] / np.maximum(residuals, 1e-300))
        converged = np.isclose(new, weights[rows]).all(axis=1)  # np.allclose, row by row
        weights[rows[~converged]] = new[~converged]
        active[rows[converged]] = False
    return coefficients


def robust_parabola(x: np.ndarray, y: np.ndarray, iterations: int = 20) -> np.ndarray:
    """`robust_parabolas` of one set of points."""
    return robust_parabolas(x[None], y[None], iterations)[0]


def fit_budgets(budget: float, N: np.ndarray, D: np.ndarray, loss: np.ndarray) -> BudgetFits:
    """The parabola of one budget in each resample: N, D, loss (resamples, runs), runs in any order."""
    order = np.argsort(N, axis=1, kind="stable")
    N, D, loss = (np.take_along_axis(values, order, axis=1) for values in (N, D, loss))
    fitted = (np.diff(N, axis=1) > 0).sum(axis=1) >= 2  # 3+ distinct sizes
    n, x, log_d, y = N[fitted], np.log(N[fitted]), np.log(D[fitted]), loss[fitted]
    # the size of the lowest loss; a smallest (largest) size drawn twice is an edge whichever copy is lowest
    lowest = np.take_along_axis(n, y.argmin(axis=1)[:, None], axis=1)[:, 0]
    edge = np.select([lowest == n[:, 0], lowest == n[:, -1]], ["below", "above"], "")
    c2, c1, c0 = robust_parabolas(x, y).T
    with np.errstate(divide="ignore", invalid="ignore"):
        vertex = np.where(c2 > 0, -c1 / (2 * c2), np.log(lowest))
    centred = (c2 > 0) & (x[:, 0] <= vertex) & (vertex <= x[:, -1]) & (edge == "")
    log_d_slope, log_d_intercept = fit_lines(x, log_d)

    def per_resample(values: np.ndarray, fill) -> np.ndarray:
        out = np.full(len(fitted), fill, dtype=values.dtype)
        out[fitted] = values
        return out

    return BudgetFits(
        budget=float(budget),
        n_runs=N.shape[1],
        fitted=fitted,
        N_star=per_resample(np.exp(vertex), np.nan),
        D_star=per_resample(np.exp(log_d_intercept + log_d_slope * vertex), np.nan),
        L_star=per_resample((c2 * vertex + c1) * vertex + c0, np.nan),
        centred=per_resample(centred, False),
        edge=per_resample(edge, ""),
    )


def fit_budget(N: np.ndarray, D: np.ndarray, loss: np.ndarray, budget: float) -> BudgetFit:
    """The parabola of one budget's runs (arrays in any order, 3+ distinct sizes)."""
    return fit_budgets(budget, N[None], D[None], loss[None]).fit(0)


def budget_batches(runs: pd.DataFrame, resamples: Resamples) -> list[BudgetFits]:
    """Each budget's parabolas across resamples (runs: columns N, D, loss, budget), but for budgets of
    fewer than 3 runs, which never hold 3 sizes. The resamples must hold each budget's runs in the
    same columns, as `draw(by="budget")` gives them."""
    budget = runs["budget"].to_numpy(dtype=float)[resamples.rows]
    if np.any(budget != budget[:1]):
        raise ValueError("Approach 2 refits resamples drawn within budgets (draw(..., by='budget'))")
    N, D = (runs[k].to_numpy(dtype=float)[resamples.rows] for k in ("N", "D"))
    loss = resamples.loss(runs["loss"].to_numpy())
    bounds = np.flatnonzero(np.diff(budget[0], prepend=np.nan, append=np.nan) != 0)  # where a budget starts or ends
    return [
        fit_budgets(budget[0, i], N[:, i:j], D[:, i:j], loss[:, i:j])
        for i, j in zip(bounds[:-1], bounds[1:], strict=True)
        if j - i >= 3
    ]


def whole(runs: pd.DataFrame) -> Resamples:
    """The table itself as the one resample, its budgets in contiguous columns."""
    return Resamples(np.argsort(runs["budget"].to_numpy(), kind="stable")[None])


def budget_fits(runs: pd.DataFrame) -> list[BudgetFit]:
    """The parabola of each budget with 3+ sizes (runs: columns N, D, loss, budget)."""
    return [b.fit(0) for b in budget_batches(runs, whole(runs)) if b.fitted[0]]


def used_budgets(budgets: list[BudgetFits], exclude_off_centre: bool) -> np.ndarray:
    """(resamples, budgets): which budgets each resample's power laws are fitted to."""
    return np.array([b.fitted & (b.centred | (not exclude_off_centre)) for b in budgets]).T


def isoflop_fits(budgets: list[BudgetFits], n_resamples: int, exclude_off_centre: bool) -> list[IsoflopFit | None]:
    """Each resample's power laws in C over its used budgets; None where fewer than 2 are used."""
    if not budgets:
        return [None] * n_resamples
    used = used_budgets(budgets, exclude_off_centre)
    C = np.array([b.budget for b in budgets])
    N_star, D_star, L_star = (
        PowerLaw.fit_each(C, np.array([getattr(b, name) for b in budgets]).T, used)
        for name in ("N_star", "D_star", "L_star")
    )
    return [
        IsoflopFit([b.fit(i) for b in budgets if b.fitted[i]], N_star[i], D_star[i], L_star[i])
        if used[i].sum() >= 2
        else None
        for i in range(n_resamples)
    ]


def fit_isoflop(runs: pd.DataFrame, exclude_off_centre: bool = True) -> IsoflopFit:
    """runs: columns N, D, C, loss, budget. Budgets with fewer than 3 sizes are left out."""
    budgets = budget_batches(runs, whole(runs))
    fit = isoflop_fits(budgets, 1, exclude_off_centre)[0]
    if fit is None:
        used, fitted = int(used_budgets(budgets, exclude_off_centre).sum()), sum(int(b.fitted[0]) for b in budgets)
        raise FitError(
            f"Approach 2 needs at least 2 budgets with 3+ sizes and an interior minimum; found {used} "
            f"of {fitted} (train sizes around each budget's optimum, or set fit.exclude_edge_budgets=false)"
        )
    return fit


def isoflop_refits(
    runs: pd.DataFrame, resamples: Resamples, exclude_off_centre: bool = True
) -> list[IsoflopFit | None]:
    """fit_isoflop of every resample (drawn with by="budget"), all at once: None where it would raise."""
    if not len(resamples):
        return []
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # a degenerate refit: inf, dropped later
        return isoflop_fits(budget_batches(runs, resamples), len(resamples), exclude_off_centre)
