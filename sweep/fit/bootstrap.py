"""Bootstrap over runs: resample whole runs with replacement and refit. The refits are kept, so an
interval can be read off for any quantity derived from a fit (parameters, frontiers, predictions)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

import numpy as np
import pandas as pd

from sweep.errors import UserError

T = TypeVar("T")


def resample(runs: pd.DataFrame, rng: np.random.Generator, by: str | None) -> pd.DataFrame:
    if by is None:
        return runs.iloc[rng.integers(0, len(runs), len(runs))]
    parts = [group.iloc[rng.integers(0, len(group), len(group))] for _, group in runs.groupby(by)]
    return pd.concat(parts)


def bootstrap(
    runs: pd.DataFrame, refit: Callable[[pd.DataFrame], T], n: int, seed: int = 0, by: str | None = None
) -> list[T]:
    """n refits on resampled runs (within each `by` group when given); unfittable resamples are dropped."""
    rng = np.random.default_rng(seed)
    fits = []
    for _ in range(n):
        try:
            fits.append(refit(resample(runs, rng, by)))
        except (UserError, ValueError, np.linalg.LinAlgError):
            continue
    return fits


def interval(values: Iterable[float], level: float = 0.95) -> tuple[float, float] | None:
    finite = [v for v in values if np.isfinite(v)]
    if len(finite) < 2:
        return None
    tail = (1 - level) / 2 * 100
    return float(np.percentile(finite, tail)), float(np.percentile(finite, 100 - tail))
