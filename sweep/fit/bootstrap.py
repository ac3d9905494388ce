"""Bootstrap over runs: resample whole runs with replacement and refit. The refits are kept, so an
interval can be read off for any quantity derived from a fit (parameters, frontiers, predictions)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

import numpy as np
import pandas as pd

from sweep.errors import UserError
from sweep.fit.errors import FitError

T = TypeVar("T")
# A larger table is resampled MAX_RESAMPLE rows at a time (m-out-of-n): refits stay fast and memory
# bounded, and the intervals are those of MAX_RESAMPLE runs, wider than the table's own.
MAX_RESAMPLE = 20_000


def resample(groups: list[np.ndarray], rng: np.random.Generator, fraction: float = 1.0) -> np.ndarray:
    """Row positions drawn with replacement within each group, each group keeping `fraction` of its size."""
    draws = [group[rng.integers(0, len(group), max(1, round(len(group) * fraction)))] for group in groups]
    return np.concatenate(draws)


def bootstrap(
    runs: pd.DataFrame,
    refit: Callable[[pd.DataFrame], T],
    n: int,
    seed: int = 0,
    by: str | None = None,
    seed_noise: float = 0.0,
) -> list[T]:
    """n refits on resampled runs (within each `by` group when given); unfittable resamples are dropped.
    seed_noise > 0 also multiplies each resampled loss by exp(N(0, seed_noise)): the spread a run's
    final loss would have over training seeds, which resampling runs trained once cannot see."""
    rng = np.random.default_rng(seed)
    keys = np.zeros(len(runs)) if by is None else runs[by].to_numpy()
    groups = [np.flatnonzero(keys == key) for key in np.unique(keys)]
    fraction = min(1.0, MAX_RESAMPLE / max(len(runs), 1))
    fits = []
    for _ in range(n):
        sample = runs.iloc[resample(groups, rng, fraction)]
        if seed_noise > 0:
            sample = sample.assign(loss=sample["loss"] * np.exp(rng.normal(0.0, seed_noise, len(sample))))
        try:
            fits.append(refit(sample))
        except (UserError, FitError, ValueError, np.linalg.LinAlgError):
            continue
    return fits


def interval(values: Iterable[float], level: float = 0.95) -> tuple[float, float] | None:
    finite = [v for v in values if np.isfinite(v)]
    if len(finite) < 2:
        return None
    tail = (1 - level) / 2 * 100
    return float(np.percentile(finite, tail)), float(np.percentile(finite, 100 - tail))
