"""The test set for Approach 3's optimiser: generated problems plus Epoch's data, each with the
exhaustive optimum (a full L-BFGS-B polish of every start of Chinchilla's grid), cached.

    .venv/bin/python bench/fit_cases.py build [--jobs 2]   # recompute the cache (about an hour on 2 cores)
    .venv/bin/python bench/fit_cases.py check [--method NAME ...]   # how many problems each method misses

Problems (`problems()`): for L = E + A/N^alpha + B/D^beta, 240 laws with E in 0.5-4, alpha and
beta in 0.1-1.5, and each power term's size at the centre of the data between 1e-3.5 and 1e2.5 of
E (A and B over 6 decades beyond what the exponents move them); 20-300 points on IsoFLOP grids
(2-9 budgets, 3-15 sizes each, unbalanced, sometimes off-centre or with top budgets held out) or
scattered over (N, D); multiplicative noise 0-2%; a third of them with 1-3 outliers of 5-30%.
Then 40 one-term problems L = E + A/x^alpha (the Kaplan and L(C) forms), and Epoch's 240 runs
whole and with budgets held out at either end. The cache (tests/data/fit_cases.npz) holds the
points and the reference optimum; tests/unit/fit/test_optimum.py checks the fitter against it.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the CLI runs (sweep/__init__.py): before numpy loads

import argparse
import itertools
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sweep.fit import parametric  # noqa: E402
from sweep.fit.parametric import huber, objective_and_gradient  # noqa: E402

CACHE = REPO / "tests" / "data" / "fit_cases.npz"
EPOCH_CSV = REPO.parent / "shared" / "data" / "chinchilla_epoch_svg_extracted.csv"
DELTA = 1e-3  # fit.huber_delta's default
TWO_TERM_PROBLEMS, ONE_TERM_PROBLEMS = 240, 40
# A relative margin this small is rounding in the objective, not a worse optimum; the absolute
# floor covers noise-free problems, whose optimum is 0 (a residual of ~1e-6 per point).
RELATIVE_TOLERANCE, ABSOLUTE_TOLERANCE = 1e-6, 1e-12


# Chinchilla's grid of starts for each of e, a_j, alpha_j (Epoch's replication uses it too).
E_STARTS = np.arange(-1.0, 1.5 + 1e-9, 0.5)
A_STARTS = np.arange(0.0, 25.0 + 1e-9, 5.0)
ALPHA_STARTS = np.arange(0.0, 2.0 + 1e-9, 0.5)


def start_grid(terms: int) -> np.ndarray:
    """4,500 starts for two terms, 180 for one."""
    return np.array(list(itertools.product(E_STARTS, *[A_STARTS] * terms, *[ALPHA_STARTS] * terms)))


@dataclass(frozen=True)
class Problem:
    name: str
    x: np.ndarray  # (terms, n): N and D, or the one variable
    loss: np.ndarray


def two_term_problem(index: int) -> Problem:
    rng = np.random.default_rng([2026, index])
    E = rng.uniform(0.5, 4.0)
    alpha, beta = rng.uniform(0.1, 1.5, 2)
    log_c_mid = rng.uniform(15, 23)
    n_mid = 10 ** (log_c_mid / 2 - 0.5 + rng.uniform(-1, 1))
    d_mid = 10**log_c_mid / (6 * n_mid)
    A = E * 10 ** rng.uniform(-3.5, 2.5) * n_mid**alpha
    B = E * 10 ** rng.uniform(-3.5, 2.5) * d_mid**beta
    target_points = int(rng.integers(20, 301))
    if rng.random() < 0.75:  # IsoFLOP grid
        kind = "isoflop"
        low, high = log_c_mid - rng.uniform(0.5, 2), log_c_mid + rng.uniform(0.5, 2)
        budgets = 10 ** np.linspace(low, high, rng.integers(2, 10))
        sizes = rng.integers(3, 16, len(budgets))
        sizes = np.maximum(3, np.round(sizes * target_points / sizes.sum())).astype(int)
        n, d = [], []
        for c, k in zip(budgets, sizes, strict=True):
            # sizes around sqrt(C/6), shifted as n_mid is; off-centre by a random amount per budget
            centre = np.log10(n_mid) + (np.log10(c) - log_c_mid) / 2 + rng.normal(0, 0.3)
            width = rng.uniform(0.4, 1.5)
            log_n = np.linspace(centre - width, centre + width, k)
            n.append(10**log_n)
            d.append(c / (6 * 10**log_n))
        n, d = np.concatenate(n), np.concatenate(d)
        if rng.random() < 0.3:  # the top budgets held out, as a backtest would
            kept = np.argsort(n * d)[: max(20, int(len(n) * rng.uniform(0.5, 0.9)))]
            n, d = n[kept], d[kept]
    else:
        kind = "scatter"
        n = n_mid * 10 ** rng.uniform(-1.5, 1.5, target_points)
        d = d_mid * 10 ** rng.uniform(-1.5, 1.5, target_points)
    loss = E + A / n**alpha + B / d**beta
    noise = rng.uniform(0, 0.02) if rng.random() < 0.9 else 0.0
    loss = loss * np.exp(rng.normal(0, noise, len(loss)))
    outliers = int(rng.integers(1, 4)) if rng.random() < 1 / 3 else 0
    hit = rng.choice(len(loss), outliers, replace=False)
    loss[hit] *= 1 + rng.choice([-1, 1], outliers) * rng.uniform(0.05, 0.3, outliers)
    name = f"law{index:03d}-{kind}-{len(loss)}pts-noise{noise:.3f}-outliers{outliers}"
    return Problem(name, np.log(np.array([n, d])), loss)


def one_term_problem(index: int) -> Problem:
    rng = np.random.default_rng([2027, index])
    E, alpha = rng.uniform(0.5, 4.0), rng.uniform(0.1, 1.5)
    low, span = rng.uniform(5, 20), rng.uniform(0.5, 4)
    x = 10 ** np.sort(rng.uniform(low, low + span, rng.integers(4, 41)))
    A = E * 10 ** rng.uniform(-3.5, 2.5) * np.exp(np.log(x).mean() * alpha)
    loss = (E + A / x**alpha) * np.exp(rng.normal(0, rng.uniform(0, 0.02), len(x)))
    return Problem(f"oneterm{index:03d}-{len(x)}pts", np.log(x)[None], loss)


def epoch_table() -> pd.DataFrame:
    """Epoch's 240 runs by their conventions: D = C / 6N, the 5 highest losses dropped."""
    frame = pd.read_csv(EPOCH_CSV).sort_values("loss").iloc[:-5]
    n, c = frame["Model Size"].to_numpy(), frame["Training FLOP"].to_numpy()
    return pd.DataFrame({"N": n, "D": c / (6 * n), "C": c, "loss": frame["loss"].to_numpy()})


def epoch_problems() -> list[Problem]:
    """Epoch's runs (epoch_table), whole and with budgets held out at either end."""
    frame = epoch_table()
    logs, loss = np.log(frame[["N", "D"]].to_numpy().T), frame["loss"].to_numpy()
    budget = np.array([float(f"{v:.1g}") for v in frame["C"]])
    levels = np.unique(budget)
    kept = {"epoch-all": np.ones(len(budget), dtype=bool)}
    kept |= {f"epoch-top{top}-held-out": budget < levels[-top] for top in (1, 2, 3, 4)}
    kept |= {f"epoch-bottom{bottom}-held-out": budget > levels[bottom - 1] for bottom in (2, 4)}
    return [Problem(name, logs[:, rows], loss[rows]) for name, rows in kept.items()]


def problems() -> list[Problem]:
    return (
        epoch_problems()
        + [two_term_problem(i) for i in range(TWO_TERM_PROBLEMS)]
        + [one_term_problem(i) for i in range(ONE_TERM_PROBLEMS)]
    )


def grid_ends(problem: Problem) -> list[tuple[float, np.ndarray]]:
    """(objective, theta) where L-BFGS-B ends from each start of the grid (scipy's default
    tolerances, as a straightforward reimplementation of Epoch's fit does), the finite ones."""
    args = (problem.x, np.log(problem.loss), DELTA)
    ends = [minimize(objective_and_gradient, start, args=args, jac=True, method="L-BFGS-B")
            for start in start_grid(len(problem.x))]  # fmt: skip
    return [(float(end.fun), end.x) for end in ends if np.isfinite(end.fun)]


def exhaustive(problem: Problem) -> tuple[float, np.ndarray]:
    """grid_ends, the 10 best of them then polished to tight tolerances."""
    args = (problem.x, np.log(problem.loss), DELTA)
    ends = sorted(grid_ends(problem), key=lambda end: end[0])
    best = (np.inf, None)
    for _, x in ends[:10]:
        result = minimize(objective_and_gradient, x, args=args, jac=True, method="L-BFGS-B",
                          options={"maxiter": 10000, "ftol": 1e-15, "gtol": 1e-10})  # fmt: skip
        if result.fun < best[0]:
            best = (float(result.fun), result.x)
    return best


def save(cases: list[Problem], references: list[tuple[float, np.ndarray]], path: Path = CACHE) -> None:
    sizes = [len(p.loss) for p in cases]
    x = np.full((2, sum(sizes)), np.nan)
    offsets = np.r_[0, np.cumsum(sizes)]
    theta = np.full((len(cases), 5), np.nan)
    for i, (p, (_, t)) in enumerate(zip(cases, references, strict=True)):
        x[: len(p.x), offsets[i] : offsets[i + 1]] = p.x
        theta[i, : len(t)] = t
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, names=np.array([p.name for p in cases]), terms=np.array([len(p.x) for p in cases]),
                        offsets=offsets, x=x, loss=np.concatenate([p.loss for p in cases]),
                        objective=np.array([r[0] for r in references]), theta=theta)  # fmt: skip


def load(path: Path = CACHE) -> list[tuple[Problem, float]]:
    """The cached problems, each with its exhaustive optimum's objective."""
    data = np.load(path)
    out = []
    for i, name in enumerate(data["names"]):
        lo, hi, k = data["offsets"][i], data["offsets"][i + 1], data["terms"][i]
        out.append((Problem(str(name), data["x"][:k, lo:hi], data["loss"][lo:hi]), float(data["objective"][i])))
    return out


def missed(objective: float, reference: float) -> bool:
    return objective > reference * (1 + RELATIVE_TOLERANCE) + ABSOLUTE_TOLERANCE


def build(jobs: int) -> None:
    cases = problems()
    started = time.perf_counter()
    with ProcessPoolExecutor(jobs) as pool:
        references = []
        for i, reference in enumerate(pool.map(exhaustive, cases, chunksize=1)):
            references.append(reference)
            if i % 10 == 0:
                print(f"{i + 1}/{len(cases)} {time.perf_counter() - started:.0f} s", flush=True)
    save(cases, references)
    print(f"{len(cases)} problems in {time.perf_counter() - started:.0f} s -> {CACHE}")


def grid_objective(thetas: np.ndarray, logs: np.ndarray, log_l: np.ndarray) -> np.ndarray:
    r, _ = parametric.residuals(thetas, logs[:, None, :], log_l[None])
    return huber(r, DELTA).sum(axis=1)


def grid16(problem: Problem) -> float:
    """The method before this test set existed: score the grid's 4,500 starts, polish the 16 best."""
    log_l = np.log(problem.loss)
    grid = start_grid(len(problem.x))
    scores = np.concatenate([grid_objective(grid[i : i + 500], problem.x, log_l) for i in range(0, len(grid), 500)])
    return min(parametric.polish(start, problem.x, log_l, DELTA)[1] for start in grid[np.argsort(scores)[:16]])


def current(problem: Problem) -> float:
    return parametric.fit_terms(problem.x, problem.loss, DELTA)[1]


METHODS = {"grid16": grid16, "current": current}


def check(methods: list[str]) -> None:
    """How many problems each method misses; printed and written to bench/results/fit_cases.md."""
    cases = load()
    lines = []
    for method in methods:
        started = time.perf_counter()
        misses = []
        for problem, reference in cases:
            objective = METHODS[method](problem)
            if missed(objective, reference):
                misses.append(f"{problem.name}: {objective:.6g} vs {reference:.6g} ({objective / reference:.3g}x)")
        epoch = sum(m.startswith("epoch") for m in misses)
        lines.append(f"{method}: misses {len(misses)} of {len(cases)} problems ({epoch} of them Epoch's), "
                     f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        lines += ["  " + line for line in misses]
    print("\n".join(lines))
    results = REPO / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "fit_cases.md").write_text("```\n" + "\n".join(lines) + "\n```\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build").add_argument("--jobs", type=int, default=2)
    sub.add_parser("check").add_argument("--method", nargs="+", default=list(METHODS), choices=list(METHODS))
    args = parser.parse_args()
    build(args.jobs) if args.command == "build" else check(args.method)


if __name__ == "__main__":
    main()
