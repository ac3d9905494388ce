"""Bootstrap over runs: resample whole runs with replacement and refit. The refits are kept, so an
interval can be read off for any quantity derived from a fit (parameters, frontiers, predictions).
A refit that fails or overflows is dropped and counted, never fatal: the count is reported beside
the intervals, since many drops mean the intervals describe only the resamples that could be fitted."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np
import pandas as pd

from sweep.errors import UserError
from sweep.fit.errors import FitError

T = TypeVar("T")
# A larger table is resampled MAX_RESAMPLE rows at a time (m-out-of-n): refits stay fast and memory
# bounded, and the intervals are those of MAX_RESAMPLE runs, wider than the table's own.
MAX_RESAMPLE = 20_000

# What an unfittable resample raises. UserError: the fitting modules raised it before FitError existed.
REFIT_FAILURES = (FitError, UserError, ValueError, ArithmeticError, np.linalg.LinAlgError)


@dataclass
class Refits(Generic[T]):
    """The refits that succeeded, out of `attempted`."""

    fits: list[T] = field(default_factory=list)
    attempted: int = 0

    @property
    def dropped(self) -> int:
        return self.attempted - len(self.fits)

    def note(self, name: str) -> str | None:
        """'k of n refits dropped' when any were, else None."""
        if not self.dropped:
            return None
        return f"{name}: {self.dropped} of {self.attempted} bootstrap refits dropped (failed or overflowed)"

    def __iter__(self) -> Iterator[T]:
        return iter(self.fits)

    def __len__(self) -> int:
        return len(self.fits)


@dataclass(frozen=True)
class Resamples:
    """The bootstrap's draws, all at once: row positions of each resample and, with seed noise, the
    factor on each drawn loss. Every resample has the same number of rows (each group keeps its share),
    so batched refits can treat them as one (resamples x rows) array."""

    rows: np.ndarray  # (n, m) positions into the table
    loss_factor: np.ndarray | None = None  # (n, m), or None without seed noise
    bounds: np.ndarray | None = None  # columns bounds[g]:bounds[g + 1] hold group g's draws (groups sorted)

    def __len__(self) -> int:
        return len(self.rows)

    def loss(self, loss: np.ndarray) -> np.ndarray:
        """(n, m): each resample's losses, seed noise applied."""
        drawn = np.asarray(loss, dtype=float)[self.rows]
        return drawn if self.loss_factor is None else drawn * self.loss_factor

    def lowest_per_group(self, drawn: np.ndarray) -> np.ndarray:
        """(n, groups): the lowest of each group's drawn values in each resample (drawn: (n, m))."""
        return np.minimum.reduceat(drawn, self.bounds[:-1], axis=1)


def draw(runs: pd.DataFrame, n: int, seed: int = 0, by: str | None = None, seed_noise: float = 0.0) -> Resamples:
    """n resamples of whole runs with replacement (within each `by` group when given); seed_noise > 0
    also multiplies each drawn loss by exp(N(0, seed_noise)): the spread a run's final loss would
    have over training seeds, which resampling runs trained once cannot see. A table larger than
    MAX_RESAMPLE rows is resampled MAX_RESAMPLE rows at a time."""
    rng = np.random.default_rng(seed)
    keys = np.zeros(len(runs)) if by is None else runs[by].to_numpy()
    order = np.argsort(keys, kind="stable")  # each group's rows, groups in sorted order
    _, group_start, group_size = np.unique(keys[order], return_index=True, return_counts=True)
    fraction = min(1.0, MAX_RESAMPLE / max(len(runs), 1))
    sizes = np.maximum(1, np.round(group_size * fraction)).astype(int)
    column_group = np.repeat(np.arange(len(sizes)), sizes)  # the group each drawn column belongs to
    picks = np.floor(rng.random((n, sizes.sum())) * group_size[column_group]).astype(np.intp)
    rows = order[group_start[column_group] + picks]
    factor = np.exp(rng.normal(0.0, seed_noise, rows.shape)) if seed_noise > 0 else None
    return Resamples(rows, factor, np.r_[0, np.cumsum(sizes)])


def finite(*values: float) -> bool:
    return bool(np.all(np.isfinite(np.asarray(values, dtype=float))))


def collect(fits: Iterable[T | None], attempted: int, valid: Callable[[T], bool] = lambda fit: True) -> Refits[T]:
    """The refits that exist (None: failed) and that `valid` accepts."""
    return Refits([fit for fit in fits if fit is not None and valid(fit)], attempted)


def bootstrap(
    runs: pd.DataFrame,
    refit: Callable[[pd.DataFrame], T],
    n: int,
    seed: int = 0,
    by: str | None = None,
    seed_noise: float = 0.0,
    valid: Callable[[T], bool] = lambda fit: True,
) -> Refits[T]:
    """n refits on resampled runs (see `draw`), one resample at a time. A refit that raises, or that
    `valid` rejects (e.g. a parameter that overflowed to inf), is dropped and counted."""
    resamples = draw(runs, n, seed, by, seed_noise)
    return collect((refit_or_none(refit, sample) for sample in samples(runs, resamples)), n, valid)


def samples(runs: pd.DataFrame, resamples: Resamples) -> Iterator[pd.DataFrame]:
    """Each resample as a table of its drawn runs."""
    for i, rows in enumerate(resamples.rows):
        sample = runs.iloc[rows]
        if resamples.loss_factor is not None:
            sample = sample.assign(loss=sample["loss"].to_numpy() * resamples.loss_factor[i])
        yield sample


def refit_or_none(refit: Callable[[pd.DataFrame], T], sample: pd.DataFrame) -> T | None:
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return refit(sample)
    except REFIT_FAILURES:
        return None


def interval(values: Iterable[float], level: float = 0.95) -> tuple[float, float] | None:
    finite_values = [v for v in values if np.isfinite(v)]
    if len(finite_values) < 2:
        return None
    tail = (1 - level) / 2 * 100
    return float(np.percentile(finite_values, tail)), float(np.percentile(finite_values, 100 - tail))
