"""Approach 1 (Hoffmann et al. 2022): the lower envelope of every run's loss-vs-compute curve.

Intermediate evaluations count: a run evaluated at 12 points along its training contributes 12
points. On a log grid of compute C, the run with the lowest (interpolated) loss at C gives N_opt(C)
and D_opt(C) (its tokens at C); power laws in C are fitted to those points. A grid point counts
only where at least 3 runs reach it and the winner is neither the smallest nor the largest of
them: at an edge the true optimum may lie beyond the sizes trained (as with off-centre budgets).

Caveat: with one cosine schedule per run, a run's loss midway is higher than that of a run
scheduled to stop there, so the envelope favours runs near their end; Approaches 2 and 3 use final
losses only.

The bootstrap refits every resample at once (`envelope_refits`) on the full table's grid.
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


@dataclass(frozen=True)
class GridCurves:
    """Every run's curve interpolated on one log grid of compute: what each envelope is read from."""

    run_id: np.ndarray  # (runs,)
    N: np.ndarray  # (runs,)
    C: np.ndarray  # (grid points,)
    loss: np.ndarray  # (runs, grid points); inf where the run does not reach C
    tokens: np.ndarray  # (runs, grid points)


@dataclass(frozen=True)
class EnvelopePoints:
    """Per resample (rows) and grid point (columns): whether the point is on the envelope (see the
    module's docstring) and its winning run's N, tokens and loss."""

    on: np.ndarray
    N: np.ndarray
    D: np.ndarray
    loss: np.ndarray


def on_grid(curves: pd.DataFrame) -> GridCurves:
    """curves: one row per evaluation, columns run_id, N, tokens, flops, loss. Runs with fewer than 2
    evaluations are left out; the grid spans the others' compute."""
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
    run_ids = np.array([r["run_id"].iloc[0] for r in runs])
    sizes = np.array([r["N"].iloc[0] for r in runs], dtype=float)
    return GridCurves(run_ids, sizes, grid, losses, tokens)


def envelope_points(grid: GridCurves, members: np.ndarray) -> EnvelopePoints:
    """The envelope of each resample's runs; members: (resamples, runs), which runs each one holds.
    One grid point at a time, all resamples at once (memory: resamples x runs)."""
    shape = (len(members), len(grid.C))
    on = np.zeros(shape, dtype=bool)
    N, D, loss = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    for k in range(len(grid.C)):
        reached = members & np.isfinite(grid.loss[:, k])
        best = np.argmin(np.where(reached, grid.loss[:, k], np.inf), axis=1)
        smallest = np.where(reached, grid.N, np.inf).min(axis=1)
        largest = np.where(reached, grid.N, -np.inf).max(axis=1)
        N[:, k], D[:, k], loss[:, k] = grid.N[best], grid.tokens[best, k], grid.loss[best, k]
        on[:, k] = (reached.sum(axis=1) >= MIN_RUNS_AT_C) & (N[:, k] != smallest) & (N[:, k] != largest)
    return EnvelopePoints(on, N, D, loss)


def fit_envelope(curves: pd.DataFrame) -> EnvelopeFit:
    """curves: one row per evaluation, columns run_id, N, tokens, flops, loss."""
    return envelope_fit(on_grid(curves))


def envelope_fit(grid: GridCurves) -> EnvelopeFit:
    """The envelope of all the grid's runs."""
    points = envelope_points(grid, np.ones((1, len(grid.N)), dtype=bool))
    on = points.on[0]
    if len(np.unique(points.N[0, on])) < 2:
        raise FitError("Approach 1: the lower envelope has fewer than 2 interior optima; train more sizes per budget")
    C = grid.C[on]
    return EnvelopeFit(
        int(on.sum()),
        PowerLaw.fit(C, points.N[0, on]),
        PowerLaw.fit(C, points.D[0, on]),
        PowerLaw.fit(C, points.loss[0, on]),
    )


def envelope_refits(grid: GridCurves, run_ids: np.ndarray) -> list[EnvelopeFit | None]:
    """The envelope of each resample's runs, all at once; run_ids: (resamples, runs drawn). A run drawn
    twice counts once, a run without a curve on the grid not at all; None where the envelope has
    fewer than 2 interior optima (where fit_envelope would raise).

    Every resample is read on the full table's grid (`grid`), not on one spanning its own runs as
    fit_envelope of its curves would (the refits before the batch did): a run drawn twice never
    changes an envelope, so a resample differs from the table only in the runs it holds, and on one
    grid its points stay comparable with the point fit's and with each other.
    """
    position = pd.Index(grid.run_id).get_indexer(run_ids.ravel()).reshape(run_ids.shape)
    members = np.zeros((len(run_ids), len(grid.run_id) + 1), dtype=bool)
    members[np.arange(len(run_ids))[:, None], position] = True  # a run without a curve (-1): the spare last column
    points = envelope_points(grid, members[:, :-1])
    laws = [PowerLaw.fit_each(grid.C, values, points.on) for values in (points.N, points.D, points.loss)]
    distinct = np.where(points.on, points.N, np.inf).min(axis=1) < np.where(points.on, points.N, -np.inf).max(axis=1)
    return [
        EnvelopeFit(int(points.on[i].sum()), *(law[i] for law in laws)) if distinct[i] else None
        for i in range(len(run_ids))
    ]
