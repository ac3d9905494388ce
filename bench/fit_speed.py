"""Fit speed against the naive reference, side by side in one run (issue 10's goals).

    .venv/bin/python bench/fit_speed.py [--demo sweeps/demo] [--bootstrap 1000] [--repeats 5]

On Epoch's 240 Chinchilla runs (D = C / 6N, the 5 highest losses dropped):
- reference: the naive exhaustive fit, one scipy L-BFGS-B call per start for all 4,500 starts of
  Chinchilla's grid (with our analytic gradient, so it is not slowed by finite differences);
- point fit: `fit_parametric` (variable projection, see sweep/fit/parametric.py), median of
  --repeats, and its objective against the reference's;
- bootstrap: --bootstrap resamples of Approach 3, Approach 2 and the L(C) form, as `sweep fit`
  computes them (report.approach3, approach2, fit_forms; their point fits included);
- `sweep fit DEMO` as a user runs it, whole process, median of --repeats, the fit cache emptied
  before each run (cold) and kept (warm). DEMO is `make demo`'s sweep, copied to a temporary
  directory first so that the bench never writes into it.

Goals: point fit >= 50x faster than the reference at an objective no worse (1e-6 relative);
bootstrap <= 1/10 of the reference's time; `sweep fit` on the demo under 2 s. Wall and CPU seconds
are both reported, with the load average before and after (the machine has 2 cores: read the wall
times against the load). Writes bench/results/fit_speed.{json,md}. Not a test.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the CLI runs (sweep/__init__.py): before numpy loads

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from fit_cases import Problem, epoch_table, grid_ends  # noqa: E402

from sweep.config import FitConfig  # noqa: E402
from sweep.fit import report  # noqa: E402
from sweep.fit.parametric import fit_parametric  # noqa: E402


def epoch_runs() -> pd.DataFrame:
    return report.prepare(epoch_table())


def reference_fit(runs: pd.DataFrame) -> float:
    problem = Problem("epoch", np.log(runs[["N", "D"]].to_numpy().T), runs["loss"].to_numpy())
    return min(objective for objective, _ in grid_ends(problem))


def timed(call) -> tuple[object, float, float]:
    """(value, wall s, CPU s of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    value = call()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def bootstrap_all(runs: pd.DataFrame, resamples: int) -> dict[str, int]:
    config = FitConfig(bootstrap=resamples)
    errors: dict[str, str] = {}
    kept = {"approach3": len(report.approach3(runs, config, errors)[1]),
            "approach2": len(report.approach2(runs, config, errors)[1]),
            "L(C)": len(report.fit_forms(runs, config, errors)[1].get("compute", []))}  # fmt: skip
    return kept


def sweep_fit(demo: Path, repeats: int) -> dict[str, float]:
    """Median wall seconds of `sweep fit` on a copy of the demo, with the fit cache emptied first
    (cold) and kept from the previous run (warm)."""
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    command = [str(REPO / ".venv" / "bin" / "sweep"), "fit"]
    out = {}
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "demo"
        shutil.copytree(demo, copy)
        for mode in ("cold", "warm"):
            seconds = []
            for _ in range(repeats):
                if mode == "cold":
                    shutil.rmtree(copy / "fits" / "cache", ignore_errors=True)
                started = time.perf_counter()
                subprocess.run([*command, str(copy)], env=env, check=True, capture_output=True)
                seconds.append(time.perf_counter() - started)
            out[mode] = float(np.median(seconds))
    return out


def markdown(row: dict) -> str:
    ref, point, boot = row["reference"], row["point_fit"], row["bootstrap"]
    lines = [
        f"Load average {row['load_before']} before, {row['load_after']} after; {os.cpu_count()} cores.",
        "",
        "| what | wall s | CPU s | against the reference | goal |",
        "|---|---|---|---|---|",
        f"| reference: 4,500 L-BFGS-B starts | {ref['wall_s']:.2f} | {ref['cpu_s']:.2f} | 1 | |",
        f"| point fit (median of {point['repeats']}) | {point['wall_s']:.3f} | {point['cpu_s']:.3f} | "
        f"{point['speedup']:.0f}x faster, objective {point['objective_vs_reference']:+.2g} relative | >= 50x |",
        f"| {boot['resamples']} resamples of A3 + A2 + L(C) | {boot['wall_s']:.2f} | {boot['cpu_s']:.2f} | "
        f"{boot['fraction']:.3f} of its time | <= 0.1 |",
    ]
    if demo := row.get("sweep_fit_demo"):
        lines.append(f"| `sweep fit` demo, whole process, cache cold | {demo['cold']:.2f} | | | < 2 s |")
        lines.append(f"| `sweep fit` demo, whole process, cache warm | {demo['warm']:.2f} | | | |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=Path, default=REPO / "sweeps" / "demo", help="make demo's sweep directory")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    runs = epoch_runs()
    row: dict = {"load_before": [round(x, 2) for x in os.getloadavg()], "points": len(runs)}

    reference, wall, cpu = timed(lambda: reference_fit(runs))
    row["reference"] = {"wall_s": wall, "cpu_s": cpu, "objective": reference}
    fits = [timed(lambda: fit_parametric(runs["N"], runs["D"], runs["loss"])) for _ in range(args.repeats)]
    objective = fits[0][0].objective
    point_wall, point_cpu = float(np.median([f[1] for f in fits])), float(np.median([f[2] for f in fits]))
    row["point_fit"] = {"repeats": args.repeats, "wall_s": point_wall, "cpu_s": point_cpu, "objective": objective,
                        "objective_vs_reference": objective / reference - 1, "speedup": wall / point_wall,
                        "law": fits[0][0].law.as_dict()}  # fmt: skip
    kept, boot_wall, boot_cpu = timed(lambda: bootstrap_all(runs, args.bootstrap))
    row["bootstrap"] = {"resamples": args.bootstrap, "kept": kept, "wall_s": boot_wall, "cpu_s": boot_cpu,
                        "fraction": boot_wall / wall}  # fmt: skip
    if (args.demo / "results.db").exists():
        row["sweep_fit_demo"] = sweep_fit(args.demo, args.repeats)
    else:
        print(f"{args.demo} has no sweep: run `make demo` first to time `sweep fit` on it", file=sys.stderr)
    row["load_after"] = [round(x, 2) for x in os.getloadavg()]

    table = markdown(row)
    print(table)
    results = REPO / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "fit_speed.json").write_text(json.dumps(row, indent=2) + "\n")
    (results / "fit_speed.md").write_text(table)


if __name__ == "__main__":
    main()
