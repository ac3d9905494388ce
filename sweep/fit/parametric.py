"""Approach 3 and its one-variable relatives: a floor plus power-law terms, fitted to every run.

L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022), and L(x) = E + A/x^alpha for x = N,
D or C (Kaplan et al. 2020's forms, with a constant). The objective is Epoch's (Besiroglu et al.
2024): Huber(delta) on r = LSE(a_j - alpha_j log x_j ..., e) - log L, with A_j = e^a_j, E = e^e;
theta = (e, a_1..a_k, alpha_1..alpha_k). Multi-start: the objective is evaluated at every start of
the grid in vectorised passes (chunks of starts, so memory stays bounded), and L-BFGS-B with the
analytic gradient polishes only the most promising starts.

Large tables (more than SCORED_ROWS points): the grid is scored and the best starts polished on
SCORED_ROWS points spread evenly over the range of losses; the best of those optima is then
polished on every point. Scoring 4,500 starts on a million points would take 80 GiB and minutes,
and the grid only has to find the basin, not the optimum.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from sweep.fit.errors import FitError
from sweep.fit.forms import Chinchilla, FloorPowerLaw

# Epoch's grid of starts for each of e, a_j, alpha_j.
E_STARTS = np.arange(-1.0, 1.5 + 1e-9, 0.5)
A_STARTS = np.arange(0.0, 25.0 + 1e-9, 5.0)
ALPHA_STARTS = np.arange(0.0, 2.0 + 1e-9, 0.5)
START_GRID = (E_STARTS, A_STARTS, A_STARTS, ALPHA_STARTS, ALPHA_STARTS)  # Chinchilla's 4,500 starts
POLISHED_STARTS = 16
CHUNK_ELEMENTS = 2**20  # starts x points scored per pass: 8 MB per term; larger chunks are slower (cache)
SCORED_ROWS = 4096


@dataclass(frozen=True)
class ParametricFit:
    law: Chinchilla
    objective: float
    n_points: int
    theta: np.ndarray  # (e, a, b, alpha, beta)


def start_grid(terms: int) -> np.ndarray:
    return np.array(list(itertools.product(E_STARTS, *[A_STARTS] * terms, *[ALPHA_STARTS] * terms)))


def logsumexp(terms: np.ndarray) -> np.ndarray:
    """log(sum(exp(terms), axis=0)), stable; scipy's version costs ~10x more on these small arrays."""
    peak = terms.max(axis=0)
    return peak + np.log(np.exp(terms - peak).sum(axis=0))


def huber(r: np.ndarray, delta: float) -> np.ndarray:
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def score_starts(thetas: np.ndarray, logs: np.ndarray, log_l: np.ndarray, delta: float) -> np.ndarray:
    """objective_batch in chunks of starts of at most CHUNK_ELEMENTS start-points each; each start's
    objective is summed exactly as in one pass, so the scores do not depend on the chunking."""
    step = max(1, CHUNK_ELEMENTS // len(log_l))
    chunks = [objective_batch(thetas[i : i + step], logs, log_l, delta) for i in range(0, len(thetas), step)]
    return np.concatenate(chunks)


def objective_batch(thetas: np.ndarray, logs: np.ndarray, log_l: np.ndarray, delta: float) -> np.ndarray:
    """Objective for many parameter vectors at once: thetas (s, 1 + 2k), logs (k, n) -> (s,);
    memory s x n x (k + 1) doubles, so callers chunk (score_starts)."""
    k = len(logs)
    e, a, alpha = thetas[:, :1], thetas[:, 1 : 1 + k], thetas[:, 1 + k :]
    power_terms = a.T[:, :, None] - alpha.T[:, :, None] * logs[:, None, :]  # (k, s, n)
    floor = np.broadcast_to(e, (len(thetas), logs.shape[1]))[None]
    r = logsumexp(np.concatenate([power_terms, floor])) - log_l
    return huber(r, delta).sum(axis=1)


def objective_and_gradient(theta: np.ndarray, logs: np.ndarray, log_l: np.ndarray, delta: float):
    """Objective and its analytic gradient at one theta; written out term by term (no stacking),
    since the polish and every bootstrap refit call it thousands of times."""
    k = len(logs)
    e = theta[0]
    power_terms = [theta[1 + j] - theta[1 + k + j] * logs[j] for j in range(k)]
    peak = np.maximum.reduce([*power_terms, np.full_like(log_l, e)])
    weights = [np.exp(t - peak) for t in power_terms]
    w_e = np.exp(e - peak)
    total = w_e + sum(weights)
    r = peak + np.log(total) - log_l
    dr = np.clip(r, -delta, delta) / total  # Huber'(r) times the softmax denominator
    g = [dr * w for w in weights]
    grad = np.array([(dr * w_e).sum(), *(gj.sum() for gj in g), *(-(g[j] @ logs[j]) for j in range(k))])
    return float(huber(r, delta).sum()), grad


def fit_terms(
    logs: np.ndarray, loss, delta: float = 1e-3, starts: np.ndarray | None = None, max_iterations: int = 2000
) -> tuple[np.ndarray, float]:
    """The best theta and its objective for log L ~ LSE(a_j - alpha_j logs_j, e)."""
    log_l = np.log(np.asarray(loss, dtype=float))
    parameters = 1 + 2 * len(logs)
    if len(log_l) <= parameters:
        raise FitError(f"this form has {parameters} parameters but only {len(log_l)} points; it needs at least "
                       f"{parameters + 1}")  # fmt: skip
    if starts is None:
        starts = grid_optima(logs, log_l, delta, max_iterations)
    return polish(starts, logs, log_l, delta, max_iterations)


def grid_optima(logs: np.ndarray, log_l: np.ndarray, delta: float, max_iterations: int) -> np.ndarray:
    """Starts for the final polish: the grid's most promising starts or, for a large table, the best
    optimum those reach on SCORED_ROWS of its points (see the module docstring)."""
    if len(log_l) > SCORED_ROWS:
        rows = np.argsort(log_l, kind="stable")[np.linspace(0, len(log_l) - 1, SCORED_ROWS).round().astype(int)]
        theta, _ = fit_terms(logs[:, rows], np.exp(log_l[rows]), delta, max_iterations=max_iterations)
        return theta
    grid = start_grid(len(logs))
    return grid[np.argsort(score_starts(grid, logs, log_l, delta))[:POLISHED_STARTS]]


def polish(
    starts: np.ndarray, logs: np.ndarray, log_l: np.ndarray, delta: float, max_iterations: int
) -> tuple[np.ndarray, float]:
    best = None
    for start in np.atleast_2d(starts):
        result = minimize(
            objective_and_gradient, start, args=(logs, log_l, delta), jac=True, method="L-BFGS-B",
            options={"maxiter": max_iterations, "ftol": 1e-15, "gtol": 1e-10},
        )  # fmt: skip
        if np.isfinite(result.fun) and (best is None or result.fun < best.fun):
            best = result
    if best is None:
        raise FitError("the objective is not finite at any start (losses or sizes beyond floating point?)")
    return best.x, float(best.fun)


def fit_parametric(
    N, D, loss, delta: float = 1e-3, starts: np.ndarray | None = None, max_iterations: int = 2000
) -> ParametricFit:
    logs = np.log(np.array([N, D], dtype=float))
    theta, objective = fit_terms(logs, loss, delta, starts, max_iterations)
    e, a, b, alpha, beta = theta
    with np.errstate(over="ignore"):  # an overflowed parameter is reported as unidentified, not warned about
        E, A, B = (float(x) for x in np.exp([e, a, b]))
    law = Chinchilla(E=E, A=A, B=B, alpha=float(alpha), beta=float(beta))
    return ParametricFit(law, objective, logs.shape[1], theta)


def fit_floor_power_law(
    variable: str, x, loss, delta: float = 1e-3, starts: np.ndarray | None = None
) -> tuple[FloorPowerLaw, np.ndarray]:
    """L = E + A / x^alpha; returns the law and its theta (a start for refits)."""
    theta, _ = fit_terms(np.log(np.array([x], dtype=float)), loss, delta, starts)
    e, a, alpha = theta
    return FloorPowerLaw(variable, float(np.exp(e)), float(np.exp(a)), float(alpha)), theta
