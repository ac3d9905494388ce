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
BATCH_ELEMENTS = 2**21  # drawn rows per batch of resamples: 16 MB per (resamples x rows) array

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
    """A batch of the bootstrap's resamples: row positions of each and, with seed noise, the factor
    on each drawn loss. Every resample has the same number of rows (each group keeps its share),
    so batched refits treat a batch as one (resamples x rows) array."""

    rows: np.ndarray  # (b, m) positions into the table
    loss_factor: np.ndarray | None = None  # (b, m), or None without seed noise
    bounds: np.ndarray | None = None  # columns bounds[g]:bounds[g + 1] hold group g's draws (groups sorted)

    def __len__(self) -> int:
        return len(self.rows)

    def loss(self, loss: np.ndarray) -> np.ndarray:
        """(b, m): each resample's losses, seed noise applied."""
        drawn = np.asarray(loss, dtype=float)[self.rows]
        return drawn if self.loss_factor is None else drawn * self.loss_factor

    def lowest_per_group(self, drawn: np.ndarray) -> np.ndarray:
        """(b, groups): the lowest of each group's drawn values in each resample (drawn: (b, m))."""
        return np.minimum.reduceat(drawn, self.bounds[:-1], axis=1)


@dataclass(frozen=True)
class Draws:
    """n resamples of whole runs with replacement (within groups when drawn by a column), made batch
    by batch so that memory stays bounded however many are asked for: a batch holds at most
    `elements` drawn rows (one resample at least). The draws are the same however they are batched
    (rows and seed noise come from two generators, each read in order)."""

    n: int
    seed: int
    seed_noise: float
    order: np.ndarray  # the table's rows, grouped, groups in sorted order
    group_start: np.ndarray  # where each group begins in `order`
    group_size: np.ndarray
    sizes: np.ndarray  # rows drawn per group in each resample

    def __len__(self) -> int:
        return self.n

    def batches(self, elements: int | None = None) -> Iterator[Resamples]:
        """The resamples in batches of at most `elements` drawn rows (BATCH_ELEMENTS by default)."""
        rows_rng, noise_rng = np.random.default_rng([self.seed, 0]), np.random.default_rng([self.seed, 1])
        column_group = np.repeat(np.arange(len(self.sizes)), self.sizes)  # the group of each drawn column
        bounds = np.r_[0, np.cumsum(self.sizes)]
        per_batch = max(1, (elements or BATCH_ELEMENTS) // len(column_group))
        for start in range(0, self.n, per_batch):
            shape = (min(per_batch, self.n - start), len(column_group))
            picks = np.floor(rows_rng.random(shape) * self.group_size[column_group]).astype(np.intp)
            rows = self.order[self.group_start[column_group] + picks]
            factor = np.exp(noise_rng.normal(0.0, self.seed_noise, shape)) if self.seed_noise > 0 else None
            yield Resamples(rows, factor, bounds)


def draw(runs: pd.DataFrame, n: int, seed: int = 0, by: str | None = None, seed_noise: float = 0.0) -> Draws:
    """n resamples of whole runs with replacement (within each `by` group when given); seed_noise > 0
    also multiplies each drawn loss by exp(N(0, seed_noise)): the spread a run's final loss would
    have over training seeds, which resampling runs trained once cannot see. A table larger than
    MAX_RESAMPLE rows is resampled MAX_RESAMPLE rows at a time."""
    keys = np.zeros(len(runs)) if by is None else runs[by].to_numpy()
    order = np.argsort(keys, kind="stable")
    _, group_start, group_size = np.unique(keys[order], return_index=True, return_counts=True)
    fraction = min(1.0, MAX_RESAMPLE / max(len(runs), 1))
    sizes = np.maximum(1, np.round(group_size * fraction)).astype(int)
    return Draws(n, seed, seed_noise, order, group_start, group_size, sizes)


def finite(*values: float) -> bool:
    return bool(np.all(np.isfinite(np.asarray(values, dtype=float))))


def refit_batches(
    draws: Draws,
    refit: Callable[[Resamples], Iterable[T | None]],
    valid: Callable[[T], bool] = lambda fit: True,
    progress: Callable[[int, int], None] | None = None,
) -> Refits[T]:
    """The refits of every batch of draws (refit: one batch to its refits, None where one failed);
    progress(done, total) hears of each batch."""
    fits: list[T | None] = []
    for batch in draws.batches():
        fits.extend(refit(batch))
        if progress:
            progress(len(fits), len(draws))
    return collect(fits, len(draws), valid)


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
    draws = draw(runs, n, seed, by, seed_noise)
    return collect((refit_or_none(refit, sample) for sample in samples(runs, draws)), n, valid)


def samples(runs: pd.DataFrame, draws: Draws) -> Iterator[pd.DataFrame]:
    """Each resample as a table of its drawn runs."""
    for batch in draws.batches():
        for i, rows in enumerate(batch.rows):
            sample = runs.iloc[rows]
            if batch.loss_factor is not None:
                sample = sample.assign(loss=sample["loss"].to_numpy() * batch.loss_factor[i])
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
