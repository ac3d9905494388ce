"""Functional forms of scaling laws and their closed-form consequences."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Chinchilla:
    """L(N, D) = E + A / N^alpha + B / D^beta (Hoffmann et al. 2022, Approach 3)."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float

    def loss(self, N, D):
        return self.E + self.A / np.power(N, self.alpha) + self.B / np.power(D, self.beta)

    def unidentified(self) -> str | None:
        """Why the law has no compute-optimal allocation (a non-finite parameter, or an exponent <= 0:
        the loss does not fall with N or D), or None when it has one."""
        values = self.as_dict()
        bad = [f"{k} = {v}" for k, v in values.items() if not np.isfinite(v)]
        bad = bad or [f"{k} = {values[k]:.3g} <= 0" for k in ("alpha", "beta") if values[k] <= 0]
        return ", ".join(bad) or None

    def optimal_params(self, C):
        """N_opt(C) = G (C/6)^(beta/(alpha+beta)) with G = (alpha A / (beta B))^(1/(alpha+beta)), under C = 6ND.
        NaN where the law is unidentified; inf where it overflows."""
        C = np.asarray(C, dtype=float)
        if self.unidentified():
            return np.full_like(C, np.nan)
        alpha, beta = np.float64(self.alpha), np.float64(self.beta)  # numpy overflows to inf, never raises
        with np.errstate(over="ignore", invalid="ignore"):  # inf / inf: NaN, which callers reject
            G = np.power(alpha * self.A / (beta * self.B), 1 / (alpha + beta))
            return G * np.power(C / 6.0, beta / (alpha + beta))

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class FloorPowerLaw:
    """L(x) = E + A / x^alpha, x one of N, D (Kaplan et al. 2020, with a constant) or C."""

    variable: str
    E: float
    A: float
    alpha: float

    def loss(self, x):
        return self.E + self.A / np.power(x, self.alpha)

    def as_dict(self) -> dict[str, float]:
        return {"E": self.E, "A": self.A, "alpha": self.alpha}


@dataclass(frozen=True)
class PowerLaw:
    """y = coefficient * x^exponent, fitted in log space."""

    coefficient: float
    exponent: float

    def __call__(self, x):
        return self.coefficient * np.power(x, self.exponent)

    @classmethod
    def fit(cls, x, y) -> PowerLaw:
        exponent, log_coefficient = np.polyfit(np.log(x), np.log(y), 1)
        with np.errstate(over="ignore"):  # a degenerate bootstrap refit: an infinite coefficient, left out of intervals
            return cls(float(np.exp(log_coefficient)), float(exponent))

    @classmethod
    def fit_each(cls, x, y, used) -> list[PowerLaw]:
        """`fit` of each row of y (rows, k) against x (k,) over that row's `used` points, all rows at
        once (bootstrap refits). A row with fewer than 2 used points, or a used y <= 0, gets NaN."""
        with np.errstate(divide="ignore", invalid="ignore"):
            exponent, log_coefficient = fit_lines(np.log(x), np.log(y), used)
        with np.errstate(over="ignore"):
            coefficient = np.exp(log_coefficient)
        return [cls(float(c), float(e)) for c, e in zip(coefficient, exponent, strict=True)]


def fit_lines(x, y, used=None) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares slope and intercept of each row of y (rows, k) against x (k,) or (rows, k), over
    the row's `used` points (all when None): np.polyfit(x, y, 1) row by row, in closed form."""
    used = np.ones(np.shape(y), dtype=bool) if used is None else used
    count = used.sum(axis=-1, keepdims=True)
    x_mean = np.where(used, x, 0.0).sum(axis=-1, keepdims=True) / count
    y_mean = np.where(used, y, 0.0).sum(axis=-1, keepdims=True) / count
    dx, dy = np.where(used, x - x_mean, 0.0), np.where(used, y - y_mean, 0.0)
    slope = (dx * dy).sum(axis=-1) / (dx * dx).sum(axis=-1)
    return slope, y_mean[..., 0] - slope * x_mean[..., 0]
