"""Does `sweep compare` recover a known effective-compute multiplier and crossover, with honest intervals?

    .venv/bin/python bench/compare_coverage.py [--quick] [--pairs 40] [--noise 0.005] [--shared-e]

Pairs of sweeps generated from laws whose answer is known (sweep/fit/synthetic.py): the demo's grid
shape (4 budgets x 5 sizes over a span of 8) at Chinchilla's budgets, losses off the law by
exp(N(0, noise)). Sweep B is sweep A's law with its compute scaled by k (k = 1.2 and 2): its frontier
at C is A's at kC, so the multiplier is k at every C. Each pair is fitted as `sweep compare` fits it
(Approach 3 of each, its bootstrap; with --shared-e the joint fit with one E) and the 95% interval of
the multiplier is checked for covering k at each target compute (powers of ten from the smallest
budget to 1000x the largest). Goal: coverage >= 90% of the pairs; the point estimate within 5% of k
on noise-free data. Then laws that cross at a known compute (different exponents, the floor set so
that their frontiers meet there, among the budgets and 30x beyond them): the crossover found within
10%, and its interval (where the frontiers are not told apart) holding the truth. Writes
bench/results/compare_coverage.json. Not a test: it measures (tests/bench/test_compare_coverage.py runs --quick).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sweep.config import FitConfig  # noqa: E402
from sweep.fit.compare import Comparison, compare_fits  # noqa: E402
from sweep.fit.forms import Chinchilla  # noqa: E402
from sweep.fit.report import fit_all  # noqa: E402
from sweep.fit.synthetic import compute_scaled, crossing_law, isoflop_runs  # noqa: E402

LAW = Chinchilla(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)  # Hoffmann et al.'s
BUDGETS = [1e18, 3e18, 1e19, 3e19]  # 30x, as the demo's 6e10-1e12 spans 17x
MULTIPLIERS = (1.2, 2.0)
CROSSINGS = (5e18, 1e21)  # where the crossing laws meet: among the budgets, and 30x beyond the largest


def compared(a_law: Chinchilla, b_law: Chinchilla, noise: float, seed: int, config: FitConfig,
             shared_e: bool) -> Comparison:  # fmt: skip
    a = isoflop_runs(a_law, BUDGETS, noise=noise, seed=2 * seed)
    b = isoflop_runs(b_law, BUDGETS, noise=noise, seed=2 * seed + 1)
    reports = [fit_all(a, config), fit_all(b, config)]
    return compare_fits(["a", "b"], [a, b], reports, config, shared_floor=shared_e)


def multiplier_rows(k: float, noise: float, pairs: int, config: FitConfig, shared_e: bool) -> dict:
    """Per target compute: how many pairs' intervals cover k, the median point error and width."""
    covered, errors, widths, significant = {}, {}, {}, {}
    for seed in range(pairs):
        comparison = compared(LAW, compute_scaled(LAW, k), noise, seed, config, shared_e)
        for target in comparison.targets:
            m = target.variants[1].multiplier
            c = target.compute
            lo, hi = m.interval or (np.nan, np.nan)
            covered.setdefault(c, []).append(bool(lo <= k * (1 + 1e-9) and hi >= k * (1 - 1e-9)))  # exact: lo = hi
            errors.setdefault(c, []).append(abs(m.value / k - 1))
            widths.setdefault(c, []).append(hi / lo if lo > 0 else np.inf)
            significant.setdefault(c, []).append(bool(m.excludes_one))
        print(f"  k={k} noise={noise} pair {seed + 1}/{pairs}", file=sys.stderr, end="\r")
    return {
        f"{c:.0e}": {"coverage": float(np.mean(covered[c])), "median_relative_error": float(np.median(errors[c])),
                     "median_width_ratio": float(np.median(widths[c])),
                     "share_significant": float(np.mean(significant[c]))}
        for c in covered
    }  # fmt: skip


def crossing_rows(at: float, noise: float, pairs: int, config: FitConfig, shared_e: bool) -> dict:
    """How often the point crossover is found, and within 10% of the truth; how often its interval (the
    computes where the frontiers are not told apart) holds the truth, when the point fits cross or not."""
    b_law = crossing_law(LAW, at)
    found, within, covered = [], [], []
    for seed in range(pairs):
        (crossing,) = compared(LAW, b_law, noise, seed, config, shared_e).crossovers
        value = crossing.compute.value if crossing.compute else np.nan
        found.append(value)
        within.append(bool(abs(value / at - 1) <= 0.10))
        covered.append(any(lo <= at * (1 + 1e-9) and hi >= at * (1 - 1e-9) for lo, hi in crossing.undecided))
    return {"true": at, "median_found": float(np.nanmedian(found)) if np.isfinite(found).any() else None,
            "share_found": float(np.mean(np.isfinite(found))), "share_within_10pct": float(np.mean(within)),
            "interval_coverage": float(np.mean(covered))}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 pairs, bootstrap 50: the path, not the numbers")
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument("--noise", type=float, nargs="+", default=[0.005], help="relative std of each run's loss")
    parser.add_argument("--bootstrap", type=int, default=200, help="refits per sweep (fit.bootstrap)")
    parser.add_argument("--shared-e", action="store_true", help="also the joint fit with one E")
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()
    pairs, bootstrap = (3, 50) if args.quick else (args.pairs, args.bootstrap)
    config = FitConfig(bootstrap=bootstrap)
    started = time.perf_counter()
    out: dict = {"law": LAW.as_dict(), "budgets": BUDGETS, "pairs": pairs, "bootstrap": bootstrap, "fits": {}}
    for shared_e in (False, True) if args.shared_e else (False,):
        fits: dict = {"noise_free": {}, "noisy": {}}
        for k in MULTIPLIERS:
            fits["noise_free"][f"k={k}"] = multiplier_rows(k, 0.0, 1, config, shared_e)
            for noise in args.noise:
                fits["noisy"][f"k={k} noise={noise}"] = multiplier_rows(k, noise, pairs, config, shared_e)
        for at in CROSSINGS:
            fits[f"crossing at {at:.0e} noise-free"] = crossing_rows(at, 0.0, 1, config, shared_e)
            for noise in args.noise:
                fits[f"crossing at {at:.0e} noise={noise}"] = crossing_rows(at, noise, pairs, config, shared_e)
        out["fits"]["shared E" if shared_e else "separate"] = fits
    out["seconds"] = round(time.perf_counter() - started, 1)
    args.results.mkdir(parents=True, exist_ok=True)
    name = "compare_coverage_quick.json" if args.quick else "compare_coverage.json"
    (args.results / name).write_text(json.dumps(out, indent=2) + "\n")
    print(summary(out))
    print(f"written: {args.results / name}")


def summary(out: dict) -> str:
    """One line per setting: the coverage (and median error) of the multiplier at each target compute."""
    lines = [f"{out['pairs']} pairs, fit.bootstrap={out['bootstrap']}, {out['seconds']} s"]
    for fit, rows in out["fits"].items():
        for kind in ("noise_free", "noisy"):
            for setting, per_compute in rows[kind].items():
                cells = [f"C={c}: cover {r['coverage']:.0%} err {r['median_relative_error']:.2%} "
                         f"width x{r['median_width_ratio']:.3g}" for c, r in per_compute.items()]  # fmt: skip
                lines.append(f"{fit} {setting}{' noise-free' if kind == 'noise_free' else ''}: " + "; ".join(cells))
        for setting, r in rows.items():
            if setting.startswith("crossing"):
                lines.append(f"{fit} {setting}: {r}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
