"""How much compute a change is worth: each variant's compute-optimal frontier from Approach 3, the
effective-compute multiplier of each variant over a baseline, where their frontiers cross, and the
bootstrap interval of each.

A law L(N, D) = E + A/N^alpha + B/D^beta at its optimal allocation under C = 6ND has the frontier
L*(C) = E + K (C/6)^-gamma, with gamma = alpha beta / (alpha + beta), K = A G^-alpha + B G^beta and
G = (alpha A / (beta B))^(1/(alpha+beta)) (Hoffmann et al. 2022, Appendix D). The multiplier of a
variant over the baseline at C is C_base / C, where L*_base(C_base) = L*_variant(C): the compute the
baseline needs to reach the variant's loss (> 1: the variant is better). It is infinite where the
variant's loss is at or below the baseline's floor E, which no compute reaches.

The interval of every quantity pairs the bootstrap refits of the sweeps (runs resampled within each
sweep, independently), one refit of each per pair. With a shared floor (`shared_floor`), the
variants are fitted jointly, one E and their own A, B, alpha, beta: they train on the same data, so
their irreducible loss should agree, and a shared E is one parameter fewer to extrapolate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sweep.config import FitConfig
from sweep.fit.bootstrap import Draws, Refits, collect, draw
from sweep.fit.errors import FitError
from sweep.fit.forms import Chinchilla
from sweep.fit.parametric import REVIVED, chinchilla, objective_and_gradient, shift_sizes
from sweep.fit.report import FitReport

LEVEL = 0.95
CROSSING_GRID = 400  # log-spaced computes on which the frontiers' difference is searched for a sign change
ZERO_GAP = 1e-12  # a loss difference this small is 0 (rounding; losses are O(1) nats)
BISECTIONS = 60  # halvings of the bracketing interval in log C: far below any reported digit
ABOVE = 1.01  # which frontier is lower just above a crossing: 1% above it


@dataclass(frozen=True)
class Frontiers:
    """L*(C) = E + K (C/6)^-gamma of one law or of many (its refits), as arrays of one shape."""

    E: np.ndarray
    K: np.ndarray
    gamma: np.ndarray

    @classmethod
    def of(cls, laws: Sequence[Chinchilla]) -> Frontiers:
        """NaN for a law without an optimal allocation (an exponent <= 0, a non-finite parameter)."""
        E, A, B, alpha, beta = (np.array([getattr(law, k) for law in laws], dtype=float) for k in
                                ("E", "A", "B", "alpha", "beta"))  # fmt: skip
        identified = np.array([law.unidentified() is None for law in laws], dtype=bool)
        with np.errstate(all="ignore"):
            log_g = (np.log(alpha * A) - np.log(beta * B)) / (alpha + beta)
            K = np.exp(np.logaddexp(np.log(A) - alpha * log_g, np.log(B) + beta * log_g))
            gamma = alpha * beta / (alpha + beta)
        bad = ~identified | ~np.isfinite(K) | ~(K > 0)
        return cls(np.where(bad, np.nan, E), np.where(bad, np.nan, K), np.where(bad, np.nan, gamma))

    def __len__(self) -> int:
        return len(self.E)

    @property
    def defined(self) -> np.ndarray:
        """Which laws have a frontier (a term switched off, A or B = 0, or an exponent <= 0: none)."""
        return ~np.isnan(self.K)

    def take(self, rows: np.ndarray) -> Frontiers:
        return Frontiers(self.E[rows], self.K[rows], self.gamma[rows])

    def loss(self, compute) -> np.ndarray:
        """(laws, computes): each law's compute-optimal loss at each compute."""
        return self.loss_each(np.asarray(compute, dtype=float)[None, :], self.E[:, None], self.K[:, None],
                              self.gamma[:, None])  # fmt: skip

    def loss_at_each(self, compute: np.ndarray) -> np.ndarray:
        """(laws,): law i's compute-optimal loss at compute[i]."""
        return self.loss_each(compute, self.E, self.K, self.gamma)

    @staticmethod
    def loss_each(compute, E, K, gamma) -> np.ndarray:
        with np.errstate(all="ignore"):
            return E + K * np.power(compute / 6, -gamma)

    def compute_for(self, loss: np.ndarray) -> np.ndarray:
        """The compute at which each law reaches loss (laws, computes): inf at or below its floor."""
        with np.errstate(all="ignore"):
            above = loss - self.E[:, None]
            compute = 6 * np.power(self.K[:, None] / above, 1 / self.gamma[:, None])
        return np.where(above > 0, compute, np.where(np.isnan(above), np.nan, np.inf))


def multipliers(base: Frontiers, variant: Frontiers, compute) -> np.ndarray:
    """(pairs, computes): the compute the base needs for the variant's loss at C, over C."""
    return base.compute_for(variant.loss(compute)) / np.asarray(compute, dtype=float)[None, :]


def crossings(base: Frontiers, variant: Frontiers, low: float, high: float) -> np.ndarray:
    """Per pair, the lowest compute in [low, high] at which the two frontiers cross, NaN where they do
    not. The frontiers' difference changes sign at most twice (its derivative vanishes at most once);
    a sign change on the log grid is bisected in log C."""
    grid = np.geomspace(low, high, CROSSING_GRID)
    gap = base.loss(grid) - variant.loss(grid)
    changes = np.sign(gap[:, :-1]) * np.sign(gap[:, 1:]) < 0
    crossed = changes.any(axis=1)
    first = np.argmax(changes, axis=1)
    lo, hi = np.log(grid[first]), np.log(grid[first + 1])
    sign_lo = np.sign(gap[np.arange(len(gap)), first])
    for _ in range(BISECTIONS):
        mid = (lo + hi) / 2
        compute = np.exp(mid)
        same = np.sign(base.loss_at_each(compute) - variant.loss_at_each(compute)) == sign_lo
        lo, hi = np.where(same, mid, lo), np.where(same, hi, mid)
    return np.where(crossed, np.exp((lo + hi) / 2), np.nan)


def interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float] | None:
    """The central `level` interval of the values that are not NaN; infinite values count (a bound
    may be inf). Order statistics, not interpolation, so an infinite bound stays exactly inf."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if len(values) < 2:
        return None
    tail = (1 - level) / 2
    low = np.quantile(values, tail, method="lower")
    high = np.quantile(values, 1 - tail, method="higher")
    return float(low), float(high)


def paired(samples: Sequence[Refits[Chinchilla]], seed: int) -> list[Frontiers]:
    """The refits of each sweep, as many for each (the fewest any has), in an order drawn at random
    for each: refits of different sweeps made with the same seed and row counts resampled the same
    row positions, and the pairs must be independent draws, as the sweeps' noise is. Each sweep's order
    comes from its place in the list, so a pair's numbers do not change with the sweeps compared beside it."""
    count = min(len(s) for s in samples)
    orders = [np.random.default_rng([seed, 7, place]).permutation(len(s))[:count] for place, s in enumerate(samples)]
    return [Frontiers.of([s.fits[i] for i in order]) for s, order in zip(samples, orders, strict=True)]


# --- the shared floor: one E, each variant its own A, B, alpha, beta -------------------------------


@dataclass(frozen=True)
class Points:
    """One variant's points as Approach 3 fits them: log N and log D centred on their means."""

    logs: np.ndarray  # (2, n)
    centre: np.ndarray  # (2,)
    log_loss: np.ndarray  # (n,)

    @classmethod
    def of(cls, table: pd.DataFrame) -> Points:
        logs = np.log(table[["N", "D"]].to_numpy(dtype=float).T)
        centre = logs.mean(axis=1)
        return cls(logs - centre[:, None], centre, np.log(table["loss"].to_numpy(dtype=float)))


def joint_objective(z: np.ndarray, points: Sequence[Points], delta: float):
    """Huber objective of z = (e, then a, b, alpha, beta of each variant) summed over the variants,
    and its gradient: each variant's Approach 3 objective with the shared e."""
    total, gradient = 0.0, np.zeros_like(z)
    for i, p in enumerate(points):
        own = slice(1 + 4 * i, 5 + 4 * i)
        value, g = objective_and_gradient(np.r_[z[0], z[own]], p.logs, p.log_loss, delta)
        total += value
        gradient[0] += g[0]
        gradient[own] += g[1:]
    return total, gradient


def minimise(start: np.ndarray, points: Sequence[Points], delta: float) -> tuple[np.ndarray, float]:
    from scipy.optimize import minimize  # scipy loads slowly; only a shared-floor fit needs it

    with np.errstate(all="ignore"):
        result = minimize(joint_objective, start, args=(points, delta), jac=True, method="L-BFGS-B",
                          options={"maxiter": 5000, "ftol": 1e-15, "gtol": 1e-10})  # fmt: skip
    return result.x, float(result.fun) if np.isfinite(result.fun) else np.inf


def centred(law: Chinchilla, p: Points, floor: float) -> np.ndarray:
    """A separate fit's (a, b, alpha, beta) for centred log N and log D; a switched-off term at `floor`."""
    with np.errstate(divide="ignore"):
        theta = np.r_[np.log([law.E, law.A, law.B]), law.alpha, law.beta]
    theta = shift_sizes(theta, -p.centre)
    return np.where(np.isfinite(theta), theta, floor)[1:]


def laws_of(z: np.ndarray, points: Sequence[Points]) -> list[Chinchilla]:
    return [chinchilla(shift_sizes(np.r_[z[0], z[1 + 4 * i : 5 + 4 * i]], p.centre)) for i, p in enumerate(points)]


def fit_shared_floor(tables: Sequence[pd.DataFrame], separate: Sequence[Chinchilla], delta: float):
    """The joint fit with one E, from each variant's separate fit and E started at each separate fit's
    floor and at their geometric mean. Returns the laws (one per table, all with the same E), the
    optimum z and each variant's points."""
    points = [Points.of(t) for t in tables]
    floor = np.log(REVIVED) + min(p.log_loss.min() for p in points)
    own = np.concatenate([centred(law, p, floor) for law, p in zip(separate, points, strict=True)])
    floors = np.log([law.E for law in separate if law.E > 0])
    starts = [*floors, floors.mean()] if len(floors) else [floor]
    best, best_value = None, np.inf
    for e in dict.fromkeys(float(f) for f in starts):
        z, value = minimise(np.r_[e, own], points, delta)
        if value < best_value:
            best, best_value = z, value
    if best is None:
        raise FitError("the shared-floor fit is not finite from any start: fit without --shared-e")
    return laws_of(best, points), best, points


def shared_floor_refits(
    z: np.ndarray, points: Sequence[Points], draws: Sequence[Draws], delta: float
) -> list[Refits[Chinchilla]]:
    """Joint refits from z: resample i of every variant (each variant's own Draws) refitted together.
    Returns each variant's refits; a joint refit that fails or is unidentified is dropped for all."""
    fits: list[list[Chinchilla] | None] = []
    for drawn in zip(*(resamples(d) for d in draws), strict=True):
        resampled = [Points(p.logs[:, rows], p.centre, p.log_loss[rows] + log_factor)
                     for p, (rows, log_factor) in zip(points, drawn, strict=True)]  # fmt: skip
        refit, value = minimise(z, resampled, delta)
        laws = laws_of(refit, points)
        fits.append(laws if np.isfinite(value) and all(law.unidentified() is None for law in laws) else None)
    kept = collect(fits, len(fits))
    return [Refits([laws[i] for laws in kept.fits], kept.attempted) for i in range(len(points))]


def resamples(draws: Draws):
    """Each resample's row positions and the log of its seed-noise factors (0 without seed noise)."""
    for batch in draws.batches():
        for i, rows in enumerate(batch.rows):
            yield rows, 0.0 if batch.loss_factor is None else np.log(batch.loss_factor[i])


def shared_floor_draws(tables: Sequence[pd.DataFrame], n: int, seed: int, seed_noise: float) -> list[Draws]:
    """One independent stream of resamples per variant."""
    return [draw(t, n, seed + i, seed_noise=seed_noise) for i, t in enumerate(tables)]


# --- the comparison --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    value: float  # inf: the baseline never reaches the loss; NaN: not defined (an unidentified law)
    interval: tuple[float, float] | None  # 95% bootstrap interval; None with fewer than 2 refits

    @classmethod
    def of(cls, point: float, samples: np.ndarray) -> Estimate:
        return cls(float(point), interval(samples))

    @property
    def excludes_one(self) -> bool | None:
        """Whether the interval lies wholly above or below 1 (None without an interval)."""
        return None if self.interval is None else bool(self.interval[0] > 1 or self.interval[1] < 1)

    def to_dict(self) -> dict:
        """JSON has no infinity: an infinite value or bound is null (the baseline never reaches it)."""
        return {"value": finite_or_none(self.value),
                "interval": None if self.interval is None else [finite_or_none(v) for v in self.interval]}  # fmt: skip


def finite_or_none(value: float) -> float | None:
    return value if np.isfinite(value) else None


@dataclass(frozen=True)
class VariantAt:
    """One sweep at one target compute: its predicted loss and, beside the baseline, its multiplier."""

    sweep: str
    loss: Estimate
    multiplier: Estimate | None = None  # None for the baseline
    significant: bool | None = None  # the multiplier's interval excludes 1

    def to_dict(self) -> dict:
        out = {"sweep": self.sweep, "loss": self.loss.to_dict()}
        if self.multiplier is not None:
            out |= {"multiplier": self.multiplier.to_dict(), "significant": self.significant}
        return out


@dataclass(frozen=True)
class Target:
    compute: float
    variants: list[VariantAt]  # the baseline first

    def to_dict(self) -> dict:
        return {"compute": self.compute, "variants": [v.to_dict() for v in self.variants]}


@dataclass(frozen=True)
class Crossover:
    """Where a variant's frontier crosses the baseline's within the searched computes. Its interval is
    the range of computes around the crossing where the 95% interval of the two losses' difference
    holds 0: where the frontiers are not told apart, the crossing may be (a bound at the edge of the
    searched range is open: 0 or inf)."""

    sweep: str
    compute: Estimate | None  # None: the point fits do not cross in the searched range
    share: float  # of the paired refits that cross there
    better_above: str | None  # which is better above the crossing: the variant's sweep or the baseline's
    undecided: list[tuple[float, float]]  # every range of computes where the frontiers are not told apart
    second: float | None = None  # a second crossing above the first (the frontiers cross at most twice)

    def to_dict(self) -> dict:
        return {"sweep": self.sweep, "compute": None if self.compute is None else self.compute.to_dict(),
                "share_of_refits_crossing": self.share, "better_above": self.better_above,
                "not_told_apart": [[finite_or_none(lo), finite_or_none(hi)] for lo, hi in self.undecided],
                "second_crossing": self.second}  # fmt: skip


@dataclass(frozen=True)
class Band:
    """A quantity along the curve's computes: the point fit's value and its 95% band."""

    value: list[float]
    low: list[float]
    high: list[float]

    @classmethod
    def of(cls, point: np.ndarray, samples: np.ndarray) -> Band:
        bands = [interval(samples[:, j]) or (np.nan, np.nan) for j in range(samples.shape[1])]
        return cls(*(list(map(float, column)) for column in (point, *zip(*bands, strict=True))))

    def to_dict(self) -> dict:
        """An infinite or undefined value is null, as in Estimate.to_dict."""
        return {key: [finite_or_none(v) for v in values] for key, values in vars(self).items()}


@dataclass(frozen=True)
class Comparison:
    baseline: str
    sweeps: list[str]  # the baseline first
    laws: list[Chinchilla]  # each sweep's point fit (one E for all with a shared floor)
    n_runs: list[int]
    shared_floor: bool
    counting: str
    targets: list[Target]
    crossovers: list[Crossover]  # one per sweep after the baseline
    searched: tuple[float, float]  # the computes searched for crossings
    curve_compute: list[float]  # the computes of the figure's curves
    loss_bands: list[Band]  # per sweep
    multiplier_bands: list[Band]  # per sweep after the baseline
    refits: int  # paired bootstrap refits behind every interval
    notes: list[str]

    def to_dict(self) -> dict:
        return {
            "baseline": self.baseline, "sweeps": self.sweeps, "shared_e": self.shared_floor,
            "counting": self.counting, "compute_counted_as": "6ND", "refits": self.refits,
            "laws": [{"sweep": s, "runs": n, **law.as_dict()} for s, n, law in
                     zip(self.sweeps, self.n_runs, self.laws, strict=True)],
            "targets": [t.to_dict() for t in self.targets],
            "crossovers": [c.to_dict() for c in self.crossovers],
            "crossover_searched": list(self.searched),
            "curves": {"compute": self.curve_compute,
                       "loss": {s: b.to_dict() for s, b in zip(self.sweeps, self.loss_bands, strict=True)},
                       "multiplier": {s: b.to_dict() for s, b in
                                      zip(self.sweeps[1:], self.multiplier_bands, strict=True)}},
            "notes": self.notes,
        }  # fmt: skip


CURVE_POINTS = 60


def compare(
    sweeps: Sequence[str],
    laws: Sequence[Chinchilla],
    samples: Sequence[Frontiers],
    computes: Sequence[float],
    searched: tuple[float, float],
    n_runs: Sequence[int],
    counting: str,
    shared_floor: bool,
    notes: Sequence[str] = (),
) -> Comparison:
    """Each sweep against the first: laws are the point fits (each with a frontier), samples their
    paired refits' frontiers (row i of every sweep's samples is one pair). A pair in which any refit
    has no frontier is dropped, and the notes say how many were."""
    fits = [Frontiers.of([law]) for law in laws]
    kept = np.logical_and.reduce([s.defined for s in samples])
    samples = [s.take(kept) for s in samples]
    computes = np.asarray(sorted(computes), dtype=float)
    notes = list(notes)
    if dropped := int((~kept).sum()):
        notes.append(f"{dropped} of {len(kept)} paired refits dropped: a refit of some sweep has no compute-optimal "
                     "frontier (an exponent <= 0 or a term switched off); the intervals are of the rest")  # fmt: skip
    losses = [(f.loss(computes)[0], s.loss(computes)) for f, s in zip(fits, samples, strict=True)]
    gains = [(multipliers(fits[0], fits[i], computes)[0], multipliers(samples[0], samples[i], computes))
             for i in range(1, len(sweeps))]  # fmt: skip
    targets = []
    for j, c in enumerate(computes):
        at = [VariantAt(name, Estimate.of(point[j], refits[:, j])) for name, (point, refits) in
              zip(sweeps, losses, strict=True)]  # fmt: skip
        for i, (point, refits) in enumerate(gains, start=1):
            m = Estimate.of(point[j], refits[:, j])
            at[i] = VariantAt(sweeps[i], at[i].loss, m, m.excludes_one)
        targets.append(Target(float(c), at))
    crossovers = []
    for i in range(1, len(sweeps)):
        crossovers.append(crossover(sweeps[0], sweeps[i], fits[0], fits[i], samples[0], samples[i], searched))
        if crossovers[-1].second is not None:
            notes.append(f"{sweeps[i]} crosses {sweeps[0]} again at C = {crossovers[-1].second:.3g}; the lowest "
                         "crossing is reported")  # fmt: skip
    grid = np.geomspace(searched[0] * 10, computes.max(), CURVE_POINTS)
    loss_bands = [Band.of(f.loss(grid)[0], s.loss(grid)) for f, s in zip(fits, samples, strict=True)]
    multiplier_bands = [Band.of(multipliers(fits[0], fits[i], grid)[0], multipliers(samples[0], samples[i], grid))
                        for i in range(1, len(sweeps))]  # fmt: skip
    return Comparison(sweeps[0], list(sweeps), list(laws), list(n_runs), shared_floor, counting, targets,
                      crossovers, searched, list(map(float, grid)), loss_bands, multiplier_bands, len(samples[0]),
                      notes)  # fmt: skip


def crossover(
    base_name: str, name: str, base: Frontiers, variant: Frontiers, base_samples: Frontiers, samples: Frontiers,
    searched: tuple[float, float],
) -> Crossover:  # fmt: skip
    point = crossings(base, variant, *searched)[0]
    share = float(np.mean(~np.isnan(crossings(base_samples, samples, *searched)))) if len(samples) else 0.0
    grid = np.geomspace(*searched, CROSSING_GRID)
    grid = grid if np.isnan(point) else np.union1d(grid, point)
    undecided = not_told_apart(grid, base_samples.loss(grid) - samples.loss(grid))
    if np.isnan(point):
        return Crossover(name, None, share, None, undecided)
    around = next(((lo, hi) for lo, hi in undecided if lo <= point <= hi), None)
    above = crossings(base, variant, float(point) * ABOVE, searched[1])[0]  # a second crossing, if any
    just_above = np.array([float(point) * ABOVE])
    better = name if variant.loss(just_above)[0, 0] < base.loss(just_above)[0, 0] else base_name
    return Crossover(name, Estimate(float(point), around), share, better, undecided,
                     None if np.isnan(above) else float(above))  # fmt: skip


def not_told_apart(grid: np.ndarray, gaps: np.ndarray) -> list[tuple[float, float]]:
    """The ranges of the grid where the 95% interval of the paired gaps (pairs, grid) holds 0, a range
    reaching an end of the grid open there (0 or inf)."""
    bands = [interval(gaps[:, j]) for j in range(len(grid))]
    holds_zero = np.array([band is not None and band[0] <= ZERO_GAP and band[1] >= -ZERO_GAP for band in bands])
    edges = np.flatnonzero(np.diff(np.r_[0, holds_zero.astype(int), 0]))
    ranges = []
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        low = 0.0 if start == 0 else float(grid[start])
        high = np.inf if stop == len(grid) else float(grid[stop - 1])
        ranges.append((low, high))
    return ranges


def check_frontier(name: str, law: Chinchilla) -> None:
    """Refuse a law without a compute-optimal frontier: unidentified, or with a term switched off."""
    why = law.unidentified() or next((f"{k} = 0: the loss does not fall with {v}" for k, v in (("A", "N"), ("B", "D"))
                                      if getattr(law, k) == 0), None)  # fmt: skip
    if why:
        raise FitError(f"{name}: Approach 3 has no compute-optimal frontier ({why}), so there is nothing to "
                       "compare; train more sizes per budget and more budgets")  # fmt: skip


def six_nd(table: pd.DataFrame) -> np.ndarray:
    """The compute of each point as the frontier counts it: 6ND (the runs' own C also counts attention)."""
    return 6 * table["N"].to_numpy(dtype=float) * table["D"].to_numpy(dtype=float)


def default_computes(tables: Sequence[pd.DataFrame]) -> list[float]:
    """Powers of ten from the smallest compute fitted up to 1000 times the largest, counted as 6ND: the
    range the sweeps measured, and the extrapolation a target is proposed at."""
    compute = np.concatenate([six_nd(t) for t in tables])
    low, high = np.ceil(np.log10(compute.min())), np.floor(np.log10(compute.max())) + 3
    return [float(10**e) for e in np.arange(low, high + 1)]


def compare_fits(
    sweeps: Sequence[str],
    tables: Sequence[pd.DataFrame],
    reports: Sequence[FitReport],
    config: FitConfig,
    computes: Sequence[float] | None = None,
    shared_floor: bool = False,
    notes: Sequence[str] = (),
) -> Comparison:
    """Each sweep against the first, from each sweep's fit (its Approach 3 and bootstrap refits) and
    the points it was fitted to (report.approach3_points; only the shared floor refits them)."""
    for name, report in zip(sweeps, reports, strict=True):
        if report.parametric is None:
            raise FitError(f"{name}: Approach 3 could not be fitted ({report.errors.get('approach3')}); "
                           "compare needs it: train more sizes per budget and more budgets")  # fmt: skip
        check_frontier(name, report.parametric.law)
    computes = sorted(set(computes or default_computes(tables)))
    lowest = min(six_nd(t).min() for t in tables)
    searched = (min(float(lowest), computes[0]) / 100, max(float(lowest), computes[-1]) * 100)
    laws = [r.parametric.law for r in reports]
    notes = [
        *notes,
        *(
            f"{name}: {note}"
            for name, r in zip(sweeps, reports, strict=True)
            for note in [r.parametric_samples.note("approach3"), *r.edges]
            if note and "approach3" in note
        ),
    ]
    largest = max(six_nd(t).max() for t in tables)
    if computes[-1] > 10 * largest:
        notes.append(f"C above {10 * largest:.3g} extrapolates more than 10x beyond the largest run (6ND = "
                     f"{largest:.3g}), up to {computes[-1] / largest:.0f}x: read those rows by their "
                     "intervals")  # fmt: skip
    if shared_floor:
        laws, z, points = fit_shared_floor(tables, laws, config.huber_delta)
        for name, law in zip(sweeps, laws, strict=True):
            check_frontier(f"{name} (with the shared floor)", law)
        draws = shared_floor_draws(tables, config.bootstrap, config.seed, config.seed_noise)
        refits = shared_floor_refits(z, points, draws, config.huber_delta)
        notes += [note] if (note := refits[0].note("shared-floor fit")) else []
        samples = [Frontiers.of(r.fits) for r in refits]
    else:
        samples = paired([r.parametric_samples for r in reports], config.seed)
    n_runs = [len(t) for t in tables]
    return compare(sweeps, laws, samples, computes, searched, n_runs, config.counting, shared_floor, notes)
