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


def resample(groups: list[np.ndarray], rng: np.random.Generator, fraction: float = 1.0) -> np.ndarray:
    """Row positions drawn with replacement within each group, each group keeping `fraction` of its size."""
    draws = [group[rng.integers(0, len(group), max(1, round(len(group) * fraction)))] for group in groups]
    return np.concatenate(draws)


def finite(*values: float) -> bool:
    return bool(np.all(np.isfinite(np.asarray(values, dtype=float))))


def bootstrap(
    runs: pd.DataFrame,
    refit: Callable[[pd.DataFrame], T],
    n: int,
    seed: int = 0,
    by: str | None = None,
    seed_noise: float = 0.0,
    valid: Callable[[T], bool] = lambda fit: True,
) -> Refits[T]:
    """n refits on resampled runs (within each `by` group when given). A refit that raises, or that
    `valid` rejects (e.g. a parameter that overflowed to inf), is dropped and counted.
    seed_noise > 0 also multiplies each resampled loss by exp(N(0, seed_noise)): the spread a run's
    final loss would have over training seeds, which resampling runs trained once cannot see."""
    rng = np.random.default_rng(seed)
    keys = np.zeros(len(runs)) if by is None else runs[by].to_numpy()
    groups = [np.flatnonzero(keys == key) for key in np.unique(keys)]
    refits: Refits[T] = Refits(attempted=n)
    fraction = min(1.0, MAX_RESAMPLE / max(len(runs), 1))
    for _ in range(n):
        sample = runs.iloc[resample(groups, rng, fraction)]
        if seed_noise > 0:
            sample = sample.assign(loss=sample["loss"] * np.exp(rng.normal(0.0, seed_noise, len(sample))))
        try:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                fit = refit(sample)
        except REFIT_FAILURES:
            continue
        if valid(fit):
            refits.fits.append(fit)
    return refits


def interval(values: Iterable[float], level: float = 0.95) -> tuple[float, float] | None:
    finite_values = [v for v in values if np.isfinite(v)]
    if len(finite_values) < 2:
        return None
    tail = (1 - level) / 2 * 100
    return float(np.percentile(finite_values, tail)), float(np.percentile(finite_values, 100 - tail))
