"""Approach 3 and its one-variable relatives: a floor plus power-law terms, fitted to every run.

L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022), and L(x) = E + A/x^alpha for x = N,
D or C (Kaplan et al. 2020's forms, with a constant). The objective is Epoch's (Besiroglu et al.
2024): Huber(delta) on r = LSE(a_j - alpha_j log x_j ..., e) - log L, with A_j = e^a_j, E = e^e;
theta = (e, a_1..a_k, alpha_1..alpha_k).

Finding the global optimum (tests/unit/fit/test_optimum.py checks it against a full polish of
Chinchilla's 4,500 starts on 287 problems): variable projection. Log x is centred on its mean
throughout (a_j is then a term's log size at the centre of the data), which decouples a_j from
alpha_j. For fixed exponents the loss is linear in (E, A_j) >= 0, so on a grid of exponents
(EXPONENTS per term) the linear part is solved by iteratively reweighted non-negative least
squares, which gives the profile of the objective over the exponents. Its TOP_BASINS lowest local
minima and lowest points are refined together (a batched Levenberg-Marquardt on the Huber
objective, `refine`), then the profiles along each exponent's line through the best optimum
(`line_starts`, up to LINE_ROUNDS times), and the best is polished by L-BFGS-B to tight
tolerances. Bootstrap refits start from the fit and are refined all at once (`refit_terms`).

Large tables (more than SCORED_ROWS points): the profile is computed and its basins refined on
SCORED_ROWS points spread evenly over the range of losses; the best is then polished on every
point. The grid only has to find the basin, not the optimum.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from sweep.fit.errors import FitError
from sweep.fit.forms import Chinchilla, FloorPowerLaw

# Exponents of the profile grid: fine near 0, where a small change in an exponent moves a large
# term a lot, 0.05 apart up to 3, and coarse below 0 (a loss that grows with N or D is a fit the
# data can still prefer: the search must find it to report it as unidentified).
EXPONENTS = np.unique(np.r_[np.arange(-1.5, 0, 0.1), np.geomspace(0.01, 0.5, 24), np.arange(0.5, 3.0 + 1e-9, 0.05)])
# The lines through the best optimum reach further: a term the data leave loose can fit a few
# extreme runs as a near-step (an exponent of 10 or -10), and such a basin can be the optimum.
LINE_EXPONENTS = np.unique(np.r_[-20, -10, -5, -3, -2, EXPONENTS, 4, 6, 10, 20])
TOP_BASINS = 8
LINE_ROUNDS = 3  # searches along the exponent lines through the best optimum so far
REFINE_ITERATIONS = 200  # Levenberg-Marquardt steps at most; a well-posed refit needs tens
IRLS_STEPS = 3  # reweightings of the profile's least squares: enough to rank the basins (with 2, 2 of 287 cases missed)
CHUNK_ELEMENTS = 2**21  # grid points (or resamples) x points per pass: bounded memory, cache-friendly
SCORED_ROWS = 4096
TINY = np.log(np.finfo(float).tiny)  # log of a coefficient that the profile set to 0
REVIVED = 1e-4  # a switched-off coefficient restarts at this fraction of the smallest loss


@dataclass(frozen=True)
class ParametricFit:
    law: Chinchilla
    objective: float
    n_points: int
    theta: np.ndarray  # (e, a, b, alpha, beta)


def huber(r: np.ndarray, delta: float) -> np.ndarray:
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def residuals(thetas: np.ndarray, logs: np.ndarray, log_l: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """r = LSE(e, a_j - alpha_j log x_j) - log L for a batch: thetas (b, 1 + 2k), logs (k, b or 1, n),
    log_l (b or 1, n) -> r (b, n) and the softmax weight of each term, (1 + k, b, n), e's first."""
    k = len(logs)
    shape = np.broadcast_shapes((len(thetas), 1), logs.shape[1:], log_l.shape)
    terms = np.empty((1 + k, *shape))
    terms[0] = thetas[:, :1]
    terms[1:] = thetas[:, 1 : 1 + k].T[:, :, None] - thetas[:, 1 + k :].T[:, :, None] * logs
    peak = terms.max(axis=0)
    weights = np.exp(terms - peak)
    total = weights.sum(axis=0)
    weights /= total
    return peak + np.log(total) - log_l, weights


def huber_weights(r: np.ndarray, delta: float) -> np.ndarray:
    """IRLS weights of Huber's loss, min(1, delta / |r|): its quadratic majoriser at r."""
    return np.minimum(1.0, delta / np.maximum(np.abs(r), np.finfo(float).tiny))


def objective_and_gradient(theta: np.ndarray, logs: np.ndarray, log_l: np.ndarray, delta: float):
    """Objective and its analytic gradient at one theta (for L-BFGS-B); written out term by term,
    since the polish calls it hundreds of times."""
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


def nonnegative_least_squares(gram: np.ndarray, b: np.ndarray) -> np.ndarray:
    """argmin_{c >= 0} c'Gc - 2b'c for a batch of small problems (gram (g, m, m), b (g, m)), exactly:
    the optimum is the unconstrained one on some subset of the variables, so try every subset and
    keep the best with all coefficients positive. A single column always qualifies (b > 0)."""
    g, m = b.shape
    scale = np.sqrt(np.einsum("gii->gi", gram))  # columns to unit norm, so one ridge suits all
    gram = gram / (scale[:, :, None] * scale[:, None, :]) + 1e-12 * np.eye(m)
    b = b / scale
    best, best_value = np.zeros((g, m)), np.full(g, np.inf)
    for size in range(1, m + 1):
        for subset in map(list, itertools.combinations(range(m), size)):
            c = np.linalg.solve(gram[:, subset][:, :, subset], b[:, subset, None])[..., 0]
            value = -(b[:, subset] * c).sum(axis=1)  # c'Gc - 2b'c at the subset's optimum
            take = np.all(c > 0, axis=1) & (value < best_value)
            best_value[take] = value[take]
            best[take] = 0.0
            best[np.ix_(take, subset)] = c[take]
    return best / scale


def profile(exponents: np.ndarray, logs: np.ndarray, log_l: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """The objective minimised over (E, A_j) >= 0 at each row of exponents (g, k), and the thetas
    that reach it. The linear part is fitted to relative errors (L_fit - L) / L, the first-order
    form of r, reweighted IRLS_STEPS times with Huber's weights min(1, delta / |r|)."""
    basis = np.exp(-exponents.T[:, :, None] * logs[:, None, :] - log_l)  # (k, g, n): x^-alpha / L
    columns = np.concatenate([np.broadcast_to(np.exp(-log_l), (1, *basis.shape[1:])), basis])  # (m, g, n)
    columns = columns.transpose(1, 0, 2)  # (g, m, n)
    weights = np.ones((len(exponents), len(log_l)))
    for _ in range(IRLS_STEPS):
        weighted = columns * weights[:, None, :]
        coefficients = nonnegative_least_squares(weighted @ columns.transpose(0, 2, 1), weighted.sum(axis=2))
        r = np.log(np.maximum(np.einsum("gm,gmn->gn", coefficients, columns), np.finfo(float).tiny))
        weights = huber_weights(r, delta)
    with np.errstate(divide="ignore"):
        log_coefficients = np.maximum(np.log(coefficients), TINY)
    return huber(r, delta).sum(axis=1), np.concatenate([log_coefficients, exponents], axis=1)


def basin_starts(logs: np.ndarray, log_l: np.ndarray, delta: float) -> np.ndarray:
    """Starts at the TOP_BASINS lowest local minima of the profile over the exponent grid, and at its
    TOP_BASINS lowest points (a narrow valley between grid points shows as a low point, not always
    as a minimum)."""
    from scipy import ndimage  # here, not at the top: scipy takes 0.3 s to load, and a cached fit never needs it

    k = len(logs)
    grid = np.array(list(itertools.product(EXPONENTS, repeat=k)))
    objective, thetas = profile_in_chunks(grid, logs, log_l, delta)
    surface = objective.reshape((len(EXPONENTS),) * k)
    is_minimum = ndimage.minimum_filter(surface, size=3, mode="constant", cval=np.inf) == surface
    chosen = np.r_[distinct(objective, np.flatnonzero(is_minimum.ravel())), distinct(objective, np.arange(len(grid)))]
    return revive(thetas[np.unique(chosen)], logs, log_l)


def line_starts(theta: np.ndarray, logs: np.ndarray, log_l: np.ndarray, delta: float) -> np.ndarray:
    """Starts at the local minima of the profile along each exponent's grid line through theta's
    exponents. The profile changes shape with an exponent the data pins tightly, so the grid's
    nearest row can miss a basin that the line through the refined optimum shows."""
    k = len(logs)
    lines = np.tile(theta[1 + k :], (k, len(LINE_EXPONENTS), 1))
    for j in range(k):
        lines[j, :, j] = LINE_EXPONENTS
    objective, thetas = profile_in_chunks(lines.reshape(-1, k), logs, log_l, delta)
    along = objective.reshape(k, len(LINE_EXPONENTS))
    padded = np.pad(along, ((0, 0), (1, 1)), constant_values=np.inf)
    is_minimum = (along <= padded[:, :-2]) & (along <= padded[:, 2:])
    return revive(thetas[distinct(objective, np.flatnonzero(is_minimum.ravel()))], logs, log_l)


def profile_in_chunks(exponents: np.ndarray, logs: np.ndarray, log_l: np.ndarray, delta: float):
    step = max(1, CHUNK_ELEMENTS // (len(log_l) * (len(logs) + 1)))
    parts = [profile(exponents[i : i + step], logs, log_l, delta) for i in range(0, len(exponents), step)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def distinct(objective: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """The TOP_BASINS candidates of lowest objective, one per value: a plateau (a term the profile
    switched off, so that its exponent does not matter) is one basin."""
    # sorted, the lowest first; equal in float32: equal to about 1e-7 relative, at any scale
    _, first = np.unique(objective[candidates].astype(np.float32), return_index=True)
    return candidates[first][:TOP_BASINS]


def revive(thetas: np.ndarray, logs: np.ndarray, log_l: np.ndarray) -> np.ndarray:
    """Starts from the profile's thetas. A coefficient the profile set to 0 has no gradient, so such
    a theta is kept as it is (the optimum may be that term's absence, e.g. E = 0) and also started
    with the coefficient at REVIVED of the smallest loss (at the data's mean log x), so the refinement
    can bring the term back."""
    k = len(logs)
    floor = np.log(REVIVED) + log_l.min()
    small = np.c_[np.full(len(thetas), floor), floor + thetas[:, 1 + k :] * logs.mean(axis=1)]
    off = thetas[:, : 1 + k] == TINY
    revived = thetas.copy()
    revived[:, : 1 + k] = np.where(off, small, thetas[:, : 1 + k])
    return np.r_[revived, thetas[off.any(axis=1)]]


def refine(thetas: np.ndarray, logs: np.ndarray, log_l: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Levenberg-Marquardt on the Huber objective for a batch of problems at once (logs (k, b or 1, n),
    log_l (b or 1, n)), each from its own theta. The step solves the Gauss-Newton system of the IRLS
    majoriser of Huber (weights min(1, delta / |r|)); a step is kept only if it lowers the objective,
    so each problem's objective falls monotonically. A problem stops when a kept step gains less
    than 1e-8 of its objective, and leaves the working arrays. Returns the thetas and objectives."""
    theta = np.array(thetas, dtype=float)
    p = theta.shape[1]
    r, weights = residuals(theta, logs, log_l)
    objective = huber(r, delta).sum(axis=1)
    left = np.flatnonzero(np.isfinite(objective))  # the problems still being refined
    lg, ll, r, weights = problems(logs, left), problems(log_l, left), r[left], weights[:, left]
    th, f, damping = theta[left], objective[left], np.full(len(left), 1e-3)
    for _ in range(REFINE_ITERATIONS):
        if not len(left):
            break
        jacobian = np.concatenate([weights, -weights[1:] * lg]).transpose(1, 0, 2)  # (a, p, n)
        weighted = jacobian * huber_weights(r, delta)[:, None, :]
        gradient = (weighted @ r[..., None])[..., 0]
        hessian = weighted @ jacobian.transpose(0, 2, 1)
        solvable = np.isfinite(hessian).all(axis=(1, 2)) & np.isfinite(gradient).all(axis=1)
        hessian[~solvable], gradient[~solvable] = np.eye(p), 0.0
        diagonal = np.einsum("app->ap", hessian)
        floor = 1e-12 * np.maximum(diagonal.max(axis=1, keepdims=True), 1.0)
        ridge = damping[:, None] * (diagonal + floor) + floor
        trial = th + np.linalg.solve(hessian + ridge[:, :, None] * np.eye(p), -gradient[..., None])[..., 0]
        with np.errstate(over="ignore", invalid="ignore"):
            r_trial, weights_trial = residuals(trial, lg, ll)
            f_trial = huber(r_trial, delta).sum(axis=1)
        kept = f_trial < f
        gain = f - f_trial
        th[kept], r[kept], weights[:, kept], f[kept] = trial[kept], r_trial[kept], weights_trial[:, kept], f_trial[kept]
        damping = np.where(kept, damping / 3, damping * 3)
        done = (kept & (gain <= 1e-8 * f)) | (damping > 1e12) | ~solvable
        if done.any():
            theta[left[done]], objective[left[done]] = th[done], f[done]
            going = ~done
            left, th, f, damping, r, weights = (
                left[going],
                th[going],
                f[going],
                damping[going],
                r[going],
                weights[:, going],
            )
            lg, ll = problems(lg, going), problems(ll, going)
    theta[left], objective[left] = th, f
    return theta, objective


def problems(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The rows of a per-problem array (problems on axis -2); points shared by all stay shared."""
    return x if x.shape[-2] == 1 else x[..., rows, :]


def polish(start: np.ndarray, logs: np.ndarray, log_l: np.ndarray, delta: float):
    """L-BFGS-B from one start to tight tolerances; returns (theta, objective)."""
    from scipy.optimize import minimize  # see basin_starts

    result = minimize(
        objective_and_gradient, start, args=(logs, log_l, delta), jac=True, method="L-BFGS-B",
        options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-10},
    )  # fmt: skip
    return result.x, float(result.fun)


def fit_terms(logs: np.ndarray, loss, delta: float = 1e-3) -> tuple[np.ndarray, float]:
    """The best theta and its objective for log L ~ LSE(a_j - alpha_j logs_j, e). The work is done
    with each log x centred on its mean (a_j then is the term's log size at the centre of the data),
    which decouples a_j from alpha_j: the same objective, far better conditioned."""
    log_l = np.log(np.asarray(loss, dtype=float))
    parameters = 1 + 2 * len(logs)
    if len(log_l) <= parameters:
        raise FitError(f"this form has {parameters} parameters but only {len(log_l)} points; it needs at least "
                       f"{parameters + 1}")  # fmt: skip
    centre = logs.mean(axis=1)
    logs = logs - centre[:, None]
    scored = slice(None)
    if len(log_l) > SCORED_ROWS:
        scored = np.argsort(log_l, kind="stable")[np.linspace(0, len(log_l) - 1, SCORED_ROWS).round().astype(int)]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        sample_logs, sample_log_l = logs[:, scored], log_l[scored]
        thetas, objectives = refine(basin_starts(sample_logs, sample_log_l, delta), sample_logs[:, None],
                                    sample_log_l[None], delta)  # fmt: skip
        for _ in range(LINE_ROUNDS):  # until the lines through the best optimum show nothing better
            if not np.isfinite(objectives).any():
                break
            best = np.nanargmin(objectives)
            more, more_objectives = refine(line_starts(thetas[best], sample_logs, sample_log_l, delta),
                                           sample_logs[:, None], sample_log_l[None], delta)  # fmt: skip
            thetas, objectives = np.r_[thetas, more], np.r_[objectives, more_objectives]
            if not np.nanmin(more_objectives) < objectives[best] * (1 - 1e-9):
                break
    if not np.isfinite(objectives).any():
        raise FitError("the objective is not finite at any start (losses or sizes beyond floating point?)")
    theta, objective = polish(thetas[np.nanargmin(objectives)], logs, log_l, delta)
    if not np.isfinite(objective):
        raise FitError("the objective is not finite at the optimum (losses or sizes beyond floating point?)")
    return shift_sizes(switched_off(theta, len(logs)), centre), objective


def shift_sizes(thetas: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Theta for log x + shift from theta for log x: a_j + alpha_j shift_j (one theta or a batch)."""
    k = len(shift)
    out = np.array(thetas, dtype=float)
    out[..., 1 : 1 + k] += out[..., 1 + k :] * shift
    return out


def refit_terms(
    theta: np.ndarray,
    logs: np.ndarray,
    loss: np.ndarray,
    delta: float,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """Bootstrap refits, all at once, each refined from the full fit's theta: resample i has the
    points logs[:, rows[i]] (every point in order when rows is None) and the losses loss[i]. Chunks
    of resamples keep memory bounded. Returns one theta per resample, NaN where a refit failed.
    Centred as in fit_terms."""
    if not loss.size:  # no resamples (fit.bootstrap=0)
        return np.empty((len(loss), len(theta)))
    centre = logs.mean(axis=1)
    logs, start = logs - centre[:, None], shift_sizes(theta, -centre)
    k = len(logs)
    # A term the full fit switched off is refitted both ways, kept off and started small but alive
    # (as revive does; log x is centred here), and each resample keeps the better.
    off = ~np.isfinite(start[: 1 + k])
    starts = [np.where(off, TINY, start[: 1 + k])]
    if off.any():
        starts.append(np.where(off, np.log(REVIVED * loss.min()), start[: 1 + k]))
    starts = [np.r_[s, start[1 + k :]] for s in starts]
    step = max(1, CHUNK_ELEMENTS // (loss.shape[1] * (2 * k + 1) * len(starts)))
    out = np.empty((len(loss), len(theta)))
    for i in range(0, len(loss), step):
        chunk = slice(i, i + step)
        size = len(loss[chunk])
        points = logs[:, None, :] if rows is None else np.tile(logs[:, rows[chunk]], (1, len(starts), 1))
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            thetas, objective = refine(np.repeat(starts, size, axis=0), points,
                                       np.tile(np.log(loss[chunk]), (len(starts), 1)), delta)  # fmt: skip
        objective = np.where(np.isfinite(objective), objective, np.inf).reshape(len(starts), size)
        best = objective.argmin(axis=0)
        thetas = thetas.reshape(len(starts), size, -1)[best, np.arange(size)]
        out[chunk] = np.where(np.isfinite(objective.min(axis=0))[:, None], shift_sizes(switched_off(thetas, k), centre),
                              np.nan)  # fmt: skip
    return out


def switched_off(thetas: np.ndarray, k: int) -> np.ndarray:
    """Centred thetas with each coefficient left at TINY (a term no refinement revived) set to -inf,
    so that it stays exactly 0 whatever the centre: E or A_j = e^-inf."""
    out = np.array(thetas, dtype=float)
    out[..., : 1 + k] = np.where(out[..., : 1 + k] <= TINY / 2, -np.inf, out[..., : 1 + k])
    return out


def searched_edges(name: str, floor: float, exponents: dict[str, float], lowest_loss: float) -> list[str]:
    """Notes for a fitted value at or beyond the edge of the two-dimensional search: an exponent
    outside the profile's grid (reached by the line searches or the polish alone), or E at 0."""
    low, high = EXPONENTS.min(), EXPONENTS.max()
    notes = [
        f"{name}: {key} = {value:.3g} is at or beyond the edge of the exponent grid ({low:g} to {high:g}), "
        "found by one-dimensional searches only; read it with its interval"
        for key, value in exponents.items()
        if not low < value < high
    ]
    if floor < 1e-4 * lowest_loss:
        notes.append(
            f"{name}: E = {floor:.3g} is at the edge of what was searched (0): the runs do not identify a floor"
        )
    return notes


def coefficients(logs_of: np.ndarray) -> list[float]:
    """E, A_j from their logs (-inf: a term the fit switched off, exactly 0)."""
    with np.errstate(over="ignore"):  # an overflowed parameter is reported as unidentified, not warned about
        return [float(x) for x in np.exp(logs_of)]


def chinchilla(theta: np.ndarray) -> Chinchilla:
    E, A, B = coefficients(theta[:3])
    return Chinchilla(E=E, A=A, B=B, alpha=float(theta[3]), beta=float(theta[4]))


def floor_power_law(variable: str, theta: np.ndarray) -> FloorPowerLaw:
    E, A = coefficients(theta[:2])
    return FloorPowerLaw(variable, E, A, float(theta[2]))


def fit_parametric(N, D, loss, delta: float = 1e-3) -> ParametricFit:
    logs = np.log(np.array([N, D], dtype=float))
    theta, objective = fit_terms(logs, loss, delta)
    return ParametricFit(chinchilla(theta), objective, logs.shape[1], theta)


def fit_floor_power_law(variable: str, x, loss, delta: float = 1e-3) -> tuple[FloorPowerLaw, np.ndarray]:
    """L = E + A / x^alpha; returns the law and its theta (the start of its bootstrap refits)."""
    theta, _ = fit_terms(np.log(np.array([x], dtype=float)), loss, delta)
    return floor_power_law(variable, theta), theta
