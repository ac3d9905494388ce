"""Wall time and peak memory of `sweep fit` on a million-row CSV, beside the same fit on 10,000 rows.

    .venv/bin/python bench/fit_million.py [--rows 1000000] [--baseline-rows 10000] [--commands fit backtest]

The CSV is drawn from a known law (E 1.7, A 400, B 410, alpha 0.34, beta 0.28) with 0.5% noise:
runs at 10 budgets from 1e18 to 1e21 FLOPs, sizes log-uniform within 1.5 e-folds of each budget's
optimum, D = C / 6N. Each command runs as a subprocess with the default config (200 bootstrap
resamples), measured alone: wall time, and the peak RSS of that process (os.wait4). Issue 8's goal
on the 2-core machine: a million rows fitted in under 60 s and 2 GB. Writes
bench/results/fit_million.json. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sweep.fit.forms import Chinchilla  # noqa: E402

TRUTH = Chinchilla(E=1.7, A=400.0, B=410.0, alpha=0.34, beta=0.28)
GOAL_S, GOAL_MB = 60.0, 2048.0


def write_csv(path: Path, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    c = np.logspace(18, 21, 10)[rng.integers(0, 10, rows)]
    n = TRUTH.optimal_params(c) * np.exp(rng.uniform(-1.5, 1.5, rows))
    d = c / (6 * n)
    loss = TRUTH.loss(n, d) * np.exp(rng.normal(0, 0.005, rows))
    pd.DataFrame({"N": n, "D": d, "C": c, "loss": loss}).to_csv(path, index=False)


def measure(command: str, csv: Path) -> dict:
    """`sweep COMMAND CSV --json` alone in a subprocess: wall seconds, peak RSS, the fitted law."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "sweep.cli", command, str(csv), "--json"], cwd=REPO,
                                   stdout=out, stderr=err, env={**os.environ, "WANDB_MODE": "disabled"})  # fmt: skip
        _, status, usage = os.wait4(process.pid, 0)  # this child's own peak RSS, unlike RUSAGE_CHILDREN's
        wall = time.perf_counter() - started
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"sweep {command} {csv} failed: {stderr.decode()[-2000:]}")
    payload = json.loads(stdout)
    law = (payload["fit"] if command == "backtest" else payload)["approach3"]
    return {"command": command, "wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024,
            **{k: law[k] for k in ("E", "alpha", "beta")}}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--baseline-rows", type=int, default=10_000)
    parser.add_argument("--commands", nargs="+", default=["fit"], choices=["fit", "backtest"])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for count in (args.baseline_rows, args.rows):
            csv = Path(tmp) / f"runs-{count}.csv"
            write_csv(csv, count)
            rows += [{"rows": count, **measure(command, csv)} for command in args.commands]
    print(f"{'command':9} {'rows':>9} {'wall s':>8} {'peak MB':>8}  {'E':>7} {'alpha':>7} {'beta':>7}")
    for r in rows:
        print(f"{r['command']:9} {r['rows']:>9,} {r['wall_s']:8.1f} {r['peak_rss_mb']:8.0f}  "
              f"{r['E']:7.4f} {r['alpha']:7.4f} {r['beta']:7.4f}")  # fmt: skip
    ratios = {}
    for command in args.commands:
        small, large = (r for r in rows if r["command"] == command)
        ratios[command] = {"wall": large["wall_s"] / small["wall_s"],
                           "peak_rss": large["peak_rss_mb"] / small["peak_rss_mb"]}  # fmt: skip
        met = large["wall_s"] < GOAL_S and large["peak_rss_mb"] < GOAL_MB
        print(f"{command}: {args.rows:,} rows / {args.baseline_rows:,}: {ratios[command]['wall']:.1f}x the time, "
              f"{ratios[command]['peak_rss']:.1f}x the memory; goal (< {GOAL_S:.0f} s, < {GOAL_MB:.0f} MB) "
              f"{'met' if met else 'NOT met'}")  # fmt: skip
    print(f"truth: E {TRUTH.E}, alpha {TRUTH.alpha}, beta {TRUTH.beta}")
    results = REPO / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "fit_million.json").write_text(json.dumps({"runs": rows, "ratios": ratios}, indent=2) + "\n")


if __name__ == "__main__":
    main()
