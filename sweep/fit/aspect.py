"""Shape from evidence: the aspect ratio d_model / n_layers that a width/depth grid prefers.

A width/depth group is the runs of one budget at nearly one size (sorted by N, each within 25% of
the one before, all within 1.5x) spanning 3+ aspect ratios; an IsoFLOP grid spaces its sizes
further apart than that (1.7x for 5 sizes over 8x). The plan does not reach the store, so the grid
a run came from is read from its size and shape; an IsoFLOP grid finer than 25% per step would be
read as width/depth.

Per group, a robust parabola of loss in log(aspect) (isoflop.robust_parabola): its vertex is the
preferred aspect, with a 95% bootstrap interval over the group's runs.

Shapes snap to multiples of the head dimension, so a group's sizes differ by up to 1.5x, and at one
budget D differs with them. Where Approach 3 is identified, each loss is first moved to the group's
mean size by the difference its law predicts, L3(N, D) - L3(N_mean, D_mean): what is left is the
aspect's doing. Without Approach 3 the losses are fitted as they are, and the fit says so.

A fit is unidentified when its parabola opens downwards, its vertex lies outside the aspects tried,
or the lowest loss is at the smallest or largest aspect: the preferred aspect is then not known,
and nothing uses it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sweep.config import FitConfig
from sweep.fit.bootstrap import bootstrap, interval
from sweep.fit.errors import FitError
from sweep.fit.forms import Chinchilla
from sweep.fit.isoflop import robust_parabola

SIZE_GAP = 1.25  # sizes of one group follow each other by less than this factor
SIZE_SPAN = 1.5  # and span less than this in all
MIN_ASPECTS = 3


@dataclass(frozen=True)
class AspectFit:
    budget: float
    N: float  # the group's geometric mean size
    aspects: list[float]  # the distinct aspect ratios tried, ascending
    n_runs: int
    aspect_ratio: float  # the vertex; when unidentified, the aspect of the lowest loss
    interval: tuple[float, float] | None  # 95% bootstrap interval of the vertex
    corrected: bool  # whether the losses were moved to the group's mean size by Approach 3
    unidentified: str  # "" when identified, else why
    bootstrap: int  # refits in the interval
    dropped: int  # refits that failed (fewer than 3 aspects drawn, or a parabola opening downwards)

    @property
    def identified(self) -> bool:
        return not self.unidentified


def aspects(runs: pd.DataFrame) -> np.ndarray:
    """d_model / n_layers of each run (NaN where the shape is unknown, e.g. imported runs)."""
    if "d_model" not in runs or "n_layers" not in runs:
        return np.full(len(runs), np.nan)
    return runs["d_model"].to_numpy(dtype=float) / runs["n_layers"].to_numpy(dtype=float)


def widthdepth_groups(runs: pd.DataFrame) -> list[np.ndarray]:
    """Row positions of each width/depth group (columns budget, N, d_model, n_layers)."""
    aspect = aspects(runs)
    budget, n = runs["budget"].to_numpy(dtype=float), runs["N"].to_numpy(dtype=float)
    groups = []
    for b in np.unique(budget[np.isfinite(aspect)]):
        rows = np.flatnonzero((budget == b) & np.isfinite(aspect))
        rows = rows[np.argsort(n[rows], kind="stable")]
        gaps = np.flatnonzero(n[rows][1:] > n[rows][:-1] * SIZE_GAP) + 1
        groups += [
            group for group in np.split(rows, gaps)
            if len(np.unique(aspect[group])) >= MIN_ASPECTS and n[group[-1]] <= n[group[0]] * SIZE_SPAN
        ]  # fmt: skip
    return groups


def in_groups(runs: pd.DataFrame, groups: list[np.ndarray]) -> np.ndarray:
    """Whether each run belongs to one of the groups."""
    grouped = np.zeros(len(runs), dtype=bool)
    grouped[np.concatenate(groups)] = True
    return grouped


def without_widthdepth(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs Approach 2 reads as IsoFLOP valleys: each width/depth group counts as one size, its
    run at the aspect nearest the median of the budget's other runs (the shape an IsoFLOP grid
    picks), or at the group's median aspect when its budget has no other runs."""
    groups = widthdepth_groups(runs)
    if not groups:
        return runs
    aspect, budget = aspects(runs), runs["budget"].to_numpy(dtype=float)
    grouped = in_groups(runs, groups)
    keep = ~grouped
    for group in groups:
        others = aspect[~grouped & (budget == budget[group[0]]) & np.isfinite(aspect)]
        reference = np.median(others if len(others) else aspect[group])
        keep[group[np.argmin(np.abs(np.log(aspect[group] / reference)))]] = True
    return runs[keep]


def without_widthdepth_budgets(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs of budgets with runs outside width/depth groups: a budget of width/depth runs alone
    trained one size, so its lowest loss is not the budget's optimum."""
    groups = widthdepth_groups(runs)
    if not groups:
        return runs
    budget = runs["budget"].to_numpy(dtype=float)
    return runs[np.isin(budget, budget[~in_groups(runs, groups)])]


def vertex(log_aspect: np.ndarray, loss: np.ndarray) -> float:
    """The preferred log aspect: the vertex of a robust parabola; FitError when it has none."""
    if len(np.unique(log_aspect)) < MIN_ASPECTS:
        raise FitError(f"a width/depth fit needs {MIN_ASPECTS}+ distinct aspect ratios")
    coefficients = robust_parabola(log_aspect, loss)
    if not coefficients[0] > 0:
        raise FitError("loss vs log(aspect) opens downwards (non-convex)")
    return float(-coefficients[1] / (2 * coefficients[0]))


def unidentified_why(log_aspect: np.ndarray, loss: np.ndarray) -> tuple[float, str]:
    """The point fit's preferred log aspect and why it is unidentified ("" when it is not)."""
    lowest = float(log_aspect[np.argmin(loss)])
    try:
        best = vertex(log_aspect, loss)
    except FitError as exc:
        return lowest, str(exc)
    tried = f"the aspects tried ({np.exp(log_aspect.min()):.3g}-{np.exp(log_aspect.max()):.3g})"
    if lowest in (log_aspect.min(), log_aspect.max()):
        return lowest, f"the lowest loss is at an edge of {tried}, at {np.exp(lowest):.3g}"
    if not log_aspect.min() <= best <= log_aspect.max():
        return best, f"the vertex {np.exp(best):.3g} is outside {tried}"
    return best, ""


def size_corrected(group: pd.DataFrame, law: Chinchilla | None) -> np.ndarray:
    """The group's losses moved to its mean size by Approach 3's law (unchanged without one)."""
    loss = group["loss"].to_numpy(dtype=float)
    if law is None:
        return loss
    n, d = group["N"].to_numpy(dtype=float), group["D"].to_numpy(dtype=float)
    n_mean, d_mean = np.exp(np.log(n).mean()), np.exp(np.log(d).mean())
    return loss - (law.loss(n, d) - law.loss(n_mean, d_mean))


def fit_group(group: pd.DataFrame, law: Chinchilla | None, config: FitConfig) -> AspectFit:
    log_aspect = np.log(aspects(group))
    best, why = unidentified_why(log_aspect, size_corrected(group, law))

    def refit(sample: pd.DataFrame) -> float:
        return vertex(np.log(aspects(sample)), size_corrected(sample, law))

    refits = bootstrap(group, refit, config.bootstrap, config.seed, seed_noise=config.seed_noise, valid=np.isfinite)
    band = interval(refits)
    return AspectFit(
        budget=float(group["budget"].iloc[0]),
        N=float(np.exp(np.log(group["N"].to_numpy(dtype=float)).mean())),
        aspects=sorted({float(a) for a in np.exp(log_aspect)}),
        n_runs=len(group),
        aspect_ratio=float(np.exp(best)),
        interval=None if band is None else (float(np.exp(band[0])), float(np.exp(band[1]))),
        corrected=law is not None,
        unidentified=why,
        bootstrap=len(refits),
        dropped=refits.dropped,
    )


def fit_aspects(runs: pd.DataFrame, law: Chinchilla | None, config: FitConfig) -> list[AspectFit]:
    """The fit of each width/depth group among the runs (columns N, D, loss, budget, d_model,
    n_layers), smallest size first; law: Approach 3's, identified, or None."""
    fits = [fit_group(runs.iloc[rows], law, config) for rows in widthdepth_groups(runs)]
    return sorted(fits, key=lambda f: f.N)
