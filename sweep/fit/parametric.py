"""Approach 3: fit L(N, D) = E + A/N^alpha + B/D^beta to every run (Hoffmann et al. 2022).

The objective is Epoch's (Besiroglu et al. 2024): Huber(delta) on
r = LSE(a - alpha log N, b - beta log D, e) - log L, with A = e^a, B = e^b, E = e^e.
Multi-start: the objective is evaluated at every start of the grid at once (one vectorised pass),
and L-BFGS-B with the analytic gradient polishes only the most promising starts.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from sweep.errors import UserError
from sweep.fit.forms import Chinchilla

N_PARAMS = 5
# Epoch's grid of starts: e, a, b, alpha, beta.
START_GRID = (
    np.arange(-1.0, 1.5 + 1e-9, 0.5),
    np.arange(0.0, 25.0 + 1e-9, 5.0),
    np.arange(0.0, 25.0 + 1e-9, 5.0),
    np.arange(0.0, 2.0 + 1e-9, 0.5),
    np.arange(0.0, 2.0 + 1e-9, 0.5),
)
POLISHED_STARTS = 16


@dataclass(frozen=True)
class ParametricFit:
    law: Chinchilla
    objective: float
    n_points: int
    theta: np.ndarray  # (e, a, b, alpha, beta)


def logsumexp(terms: np.ndarray) -> np.ndarray:
    """log(sum(exp(terms), axis=0)), stable; scipy's version costs ~10x more on these small arrays."""
    peak = terms.max(axis=0)
    return peak + np.log(np.exp(terms - peak).sum(axis=0))


def huber(r: np.ndarray, delta: float) -> np.ndarray:
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def objective_batch(thetas: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, log_l: np.ndarray, delta: float):
    """Objective for many parameter vectors at once: thetas (k, 5) -> (k,)."""
    e, a, b, alpha, beta = (thetas[:, i : i + 1] for i in range(5))
    terms = np.stack([a - alpha * log_n, b - beta * log_d, np.broadcast_to(e, (len(thetas), len(log_n)))], axis=0)
    r = logsumexp(terms) - log_l
    return huber(r, delta).sum(axis=1)


def objective_and_gradient(theta, log_n, log_d, log_l, delta):
    """Objective and its analytic gradient at one theta; written out term by term (no stacking),
    since the polish and every bootstrap refit call it thousands of times."""
    e, a, b, alpha, beta = theta
    t_n, t_d = a - alpha * log_n, b - beta * log_d
    peak = np.maximum(np.maximum(t_n, t_d), e)
    w_n, w_d, w_e = np.exp(t_n - peak), np.exp(t_d - peak), np.exp(e - peak)
    total = w_n + w_d + w_e
    r = peak + np.log(total) - log_l
    dr = np.clip(r, -delta, delta) / total  # Huber'(r) times the softmax denominator
    g_n, g_d = dr * w_n, dr * w_d
    grad = np.array([(dr * w_e).sum(), g_n.sum(), g_d.sum(), -(g_n @ log_n), -(g_d @ log_d)])
    return float(huber(r, delta).sum()), grad


def fit_parametric(
    N, D, loss, delta: float = 1e-3, starts: np.ndarray | None = None, max_iterations: int = 2000
) -> ParametricFit:
    N, D, loss = (np.asarray(x, dtype=float) for x in (N, D, loss))
    if len(N) <= N_PARAMS:
        raise UserError(
            f"Approach 3 has {N_PARAMS} parameters but only {len(N)} points; it needs at least {N_PARAMS + 1}"
        )
    log_n, log_d, log_l = np.log(N), np.log(D), np.log(loss)
    if starts is None:
        grid = np.array(list(itertools.product(*START_GRID)))
        values = objective_batch(grid, log_n, log_d, log_l, delta)
        starts = grid[np.argsort(values)[:POLISHED_STARTS]]
    best = None
    for start in np.atleast_2d(starts):
        result = minimize(
            objective_and_gradient, start, args=(log_n, log_d, log_l, delta), jac=True, method="L-BFGS-B",
            options={"maxiter": max_iterations, "ftol": 1e-15, "gtol": 1e-10},
        )  # fmt: skip
        if np.isfinite(result.fun) and (best is None or result.fun < best.fun):
            best = result
    e, a, b, alpha, beta = best.x
    law = Chinchilla(E=float(np.exp(e)), A=float(np.exp(a)), B=float(np.exp(b)), alpha=float(alpha), beta=float(beta))
    return ParametricFit(law, float(best.fun), len(N), best.x)
