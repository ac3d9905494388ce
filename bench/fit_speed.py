"""Approach-3 fit speed on the Epoch/Chinchilla data, against a naive baseline run side by side.

    .venv/bin/python bench/fit_speed.py [--csv ../shared/data/chinchilla_epoch_svg_extracted.csv]
                                        [--bootstrap 1000] [--skip-baseline]

Baseline: what a straightforward reimplementation of Epoch's fit does, one scipy L-BFGS-B call per
start over the whole 4,500-start grid (with our analytic gradient, so the baseline is not slowed by
finite differences). Ours: `sweep.fit.parametric.fit_parametric` (every start scored in one
vectorised pass, the best 16 polished). Then a bootstrap of whole runs, refitted the way `sweep fit`
does. Issue 4's goals on the 2-core machine: the fit under 1 s with an objective no worse than the
baseline's, 1,000 bootstrap refits under 30 s. Writes bench/results/fit_speed.json. Not a test.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sweep.config import FitConfig  # noqa: E402
from sweep.fit.bootstrap import bootstrap  # noqa: E402
from sweep.fit.parametric import START_GRID, fit_parametric, objective_and_gradient  # noqa: E402
from sweep.fit.report import fit_all  # noqa: E402


def epoch_rows(csv: Path) -> pd.DataFrame:
    """Epoch's conventions: D = C / (6N), and drop the 5 highest-loss rows."""
    frame = pd.read_csv(csv).sort_values("loss").iloc[:-5]
    n, c = frame["Model Size"].to_numpy(), frame["Training FLOP"].to_numpy()
    return pd.DataFrame({"N": n, "D": c / (6 * n), "C": c, "loss": frame["loss"].to_numpy()})


def naive_fit(runs: pd.DataFrame, delta: float = 1e-3) -> tuple[float, np.ndarray]:
    args = (np.log(runs[["N", "D"]].to_numpy().T), np.log(runs["loss"].to_numpy()), delta)
    best = None
    for start in itertools.product(*START_GRID):
        result = minimize(objective_and_gradient, np.array(start), args=args, jac=True, method="L-BFGS-B")
        if np.isfinite(result.fun) and (best is None or result.fun < best.fun):
            best = result
    return float(best.fun), best.x


def timed(call):
    started = time.perf_counter()
    value = call()
    return value, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=REPO.parent / "shared/data/chinchilla_epoch_svg_extracted.csv")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()
    runs = epoch_rows(args.csv)

    repeats = [timed(lambda: fit_parametric(runs["N"], runs["D"], runs["loss"], 1e-3)) for _ in range(3)]
    ours, ours_s = repeats[0][0], float(np.median([seconds for _, seconds in repeats]))
    row = {"points": len(runs), "ours_s": ours_s, "ours_s_each": [s for _, s in repeats],
           "ours_objective": ours.objective, **ours.law.as_dict()}  # fmt: skip
    print(
        f"ours:     {ours_s:7.2f} s  (median of 3: {', '.join(f'{s:.2f}' for _, s in repeats)})  "
        f"objective {ours.objective:.10g}  {ours.law}"
    )
    if not args.skip_baseline:
        (naive_objective, _), naive_s = timed(lambda: naive_fit(runs))
        row.update(naive_s=naive_s, naive_objective=naive_objective, speedup=naive_s / ours_s)
        print(f"baseline: {naive_s:7.2f} s  objective {naive_objective:.10g}  (4,500 L-BFGS-B calls)")
        print(f"speed-up: {naive_s / ours_s:.0f}x; objective ours - baseline = {ours.objective - naive_objective:.3g}")

    def refit(sample: pd.DataFrame):  # as sweep.fit.report.approach3 refits
        return fit_parametric(sample["N"], sample["D"], sample["loss"], 1e-3, starts=ours.theta, max_iterations=300)

    a3_only, a3_s = timed(lambda: bootstrap(runs, refit, args.bootstrap))
    report, boot_s = timed(lambda: fit_all(runs, FitConfig(bootstrap=args.bootstrap)))
    bands = report.parameter_intervals()
    row.update(bootstrap=args.bootstrap, bootstrap_approach3_s=a3_s, bootstrap_all_s=boot_s,
               bootstrap_refits=len(report.parametric_samples),
               intervals={k: bands[k] for k in ("E", "alpha", "beta")})  # fmt: skip
    print(
        f"bootstrap: {args.bootstrap} resamples of Approach 3 in {a3_s:.1f} s ({len(a3_only)} refits); "
        f"with Approach 2 and the L(C) form as `sweep fit` does, {boot_s:.1f} s"
    )
    print("95% intervals: " + ", ".join(f"{k} [{bands[k][0]:.4g}, {bands[k][1]:.4g}]" for k in ("E", "alpha", "beta")))
    results = REPO / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "fit_speed.json").write_text(json.dumps(row, indent=2) + "\n")


if __name__ == "__main__":
    main()
