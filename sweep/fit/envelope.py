"""Approach 1 (Hoffmann et al. 2022): the lower envelope of every run's loss-vs-compute curve.

Intermediate evaluations count: a run evaluated at 12 points along its training contributes 12
points. On a log grid of compute C, the run with the lowest (interpolated) loss at C gives N_opt(C)
and D_opt(C) (its tokens at C); power laws in C are fitted to those points. A grid point counts
only where at least 3 runs reach it and the winner is neither the smallest nor the largest of
them: at an edge the true optimum may lie beyond the sizes trained (as with off-centre budgets).

Caveat: with one cosine schedule per run, a run's loss midway is higher than that of a run
scheduled to stop there, so the envelope favours runs near their end; Approaches 2 and 3 use final
losses only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sweep.fit.errors import FitError
from sweep.fit.forms import PowerLaw

GRID_POINTS = 60
MIN_RUNS_AT_C = 3


@dataclass(frozen=True)
class EnvelopeFit:
    n_points: int  # grid points on the envelope that the laws were fitted to
    N_star: PowerLaw
    D_star: PowerLaw
    L_star: PowerLaw


def fit_envelope(curves: pd.DataFrame) -> EnvelopeFit:
    """curves: one row per evaluation, columns run_id, N, tokens, flops, loss."""
    runs = [group.sort_values("flops") for _, group in curves.groupby("run_id", sort=False)]
    runs = [r for r in runs if len(r) >= 2]
    if len(runs) < MIN_RUNS_AT_C:
        raise FitError(
            f"Approach 1 needs training curves (2+ evaluations) of at least {MIN_RUNS_AT_C} runs; found {len(runs)}"
        )
    low = min(r["flops"].iloc[0] for r in runs)
    high = max(r["flops"].iloc[-1] for r in runs)
    grid = np.logspace(np.log10(low), np.log10(high), GRID_POINTS)
    log_grid = np.log(grid)
    losses = np.full((len(runs), GRID_POINTS), np.inf)
    tokens = np.zeros((len(runs), GRID_POINTS))
    for i, r in enumerate(runs):
        x = np.log(r["flops"].to_numpy())
        inside = (log_grid >= x[0]) & (log_grid <= x[-1])
        losses[i, inside] = np.exp(np.interp(log_grid[inside], x, np.log(r["loss"].to_numpy())))
        tokens[i, inside] = np.exp(np.interp(log_grid[inside], x, np.log(r["tokens"].to_numpy())))
    sizes = np.array([r["N"].iloc[0] for r in runs], dtype=float)

    points = []
    for k in range(GRID_POINTS):
        reached = np.isfinite(losses[:, k])
        if reached.sum() < MIN_RUNS_AT_C:
            continue
        best = int(np.argmin(losses[:, k]))
        if sizes[best] in (sizes[reached].min(), sizes[reached].max()):
            continue
        points.append((grid[k], sizes[best], tokens[best, k], losses[best, k]))
    if len({n for _, n, _, _ in points}) < 2:
        raise FitError("Approach 1: the lower envelope has fewer than 2 interior optima; train more sizes per budget")
    c, n, d, loss = (np.array(column) for column in zip(*points, strict=True))
    return EnvelopeFit(len(points), PowerLaw.fit(c, n), PowerLaw.fit(c, d), PowerLaw.fit(c, loss))
