"""Orchestration overhead: plan + launch + wait + collect of many runs with the no-op trainer
(launcher.trainer=noop), through the local executor and through SLURM (the real single-node
cluster of scripts/slurm-local.sh), plus the store's ingest time per run.

    .venv/bin/python bench/orchestration.py [--runs 1000] [--slurm-unbundled]

Issue 3's goals on the 2-core machine: under 60 s for 1,000 runs through SLURM, under 5 ms per run
to ingest. Prints a table and writes bench/results/orchestration.json. Not a test.
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

REPO = Path(__file__).resolve().parent.parent
SIZES = 5


def cli(*args: str) -> str:
    env = {**os.environ, "WANDB_MODE": "disabled"}
    proc = subprocess.run([sys.executable, "-m", "sweep.cli", *args], capture_output=True, text=True, cwd=REPO, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"sweep {' '.join(args[:2])} failed: {proc.stderr.strip()}")
    return proc.stdout


def measure(name: str, runs: int, launcher: list[str]) -> dict:
    seeds = ",".join(str(i) for i in range(runs // SIZES))
    overrides = ["sweep.budgets=[1e11]", f"sweep.sizes_per_budget={SIZES}", f"sweep.seeds=[{seeds}]",
                 "launcher.trainer=noop", "fit.bootstrap=0", *launcher]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / name)
        times = {}
        for stage, args in (
            ("plan", ["plan", *overrides, "--out", out, "--json"]),
            ("launch", ["launch", out, "--json"]),
            ("wait", ["wait", out, "--json"]),
            ("collect", ["collect", out, "--json"]),
        ):
            started = time.perf_counter()
            stdout = cli(*args)
            times[stage] = time.perf_counter() - started
        states = {r["state"] for r in json.loads(cli("status", out, "--json"))["runs"]}
        jobs = len(json.loads(stdout)["ingested"])  # collect's output: every run ingested
        assert states == {"done"} and jobs == runs, (states, jobs)
        # Ingest alone, in-process, again (an idempotent upsert of every run directory).
        sys.path.insert(0, str(REPO))
        from sweep import api

        started = time.perf_counter()
        api.collect(Path(out))
        ingest = time.perf_counter() - started
    return {"executor": name, "runs": runs, **{f"{k}_s": v for k, v in times.items()},
            "total_s": sum(times.values()), "ingest_ms_per_run": 1000 * ingest / runs}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--slurm-unbundled", action="store_true", help="also one array task per run (slow)")
    args = parser.parse_args()
    rows = [
        measure("local", args.runs, ["launcher=local"]),
        measure("slurm-bundled", args.runs, ["launcher=slurm", "launcher.slurm.min_job_seconds=600"]),
    ]
    if args.slurm_unbundled:
        rows.append(measure("slurm-unbundled", args.runs, ["launcher=slurm"]))
    print(f"{'executor':<16}{'runs':>6}{'plan s':>8}{'launch s':>10}{'wait s':>8}{'collect s':>11}{'total s':>9}"
          f"{'ingest ms/run':>15}")  # fmt: skip
    for r in rows:
        print(f"{r['executor']:<16}{r['runs']:>6}{r['plan_s']:>8.1f}{r['launch_s']:>10.1f}{r['wait_s']:>8.1f}"
              f"{r['collect_s']:>11.1f}{r['total_s']:>9.1f}{r['ingest_ms_per_run']:>15.2f}")  # fmt: skip
    results = REPO / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "orchestration.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
