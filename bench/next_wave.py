"""The next wave against one more budget of the grid, at the same FLOPs, on sweeps from known laws.

    .venv/bin/python bench/next_wave.py [--quick] [--replicates 3]

Per law and seed: the demo's grid (4 budgets x 5 sizes, `conf/sweep/default.yaml`) with each run's
loss from a known L(N, D) times exp(noise N(0, --noise)), fitted as `sweep fit` fits it (Approach 3,
its bootstrap), and the target proposed at 30x the largest budget. Then two ways to spend the same
FLOPs, the allowance being the cost of the first:
- baseline: one more budget of the default grid (the largest budget x the grid's ratio, its sizes);
- wave: `sweep propose --next-wave --budget-flops <that cost>` (sweep/nextwave.py).
Each is trained for real in simulation: its runs' losses drawn from the TRUE law with noise (the
same draw of noise for a run in both), the runs refitted with the bootstrap, and the 95% interval
of Approach 3's predicted target loss read as `sweep propose` reads it; averaged over --replicates
draws. Shrink per FLOP = (width before - width after) / FLOPs spent; the goal is a ratio wave /
baseline of at least 1.5. Writes bench/results/next_wave.json. Not a test: it measures.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sweep.api import describe  # noqa: E402
from sweep.config import Config, compose  # noqa: E402
from sweep.fit.forms import Chinchilla  # noqa: E402
from sweep.fit.report import fit_all  # noqa: E402
from sweep.nextwave import candidates, fitted_table, next_budgets, next_wave  # noqa: E402
from sweep.plan.grids import isoflop_shapes, make_plan, run_spec  # noqa: E402
from sweep.propose import approach3_prediction, propose  # noqa: E402
from sweep.spec import RunSpec  # noqa: E402

# Laws whose losses at the demo's sizes (N 6e3-2e5, D 1e5-5e6) look like the demo's (2.3 down to 1.5).
LAWS = {
    "balanced": Chinchilla(E=1.2, A=40.0, B=60.0, alpha=0.45, beta=0.35),
    "data-hungry": Chinchilla(E=1.0, A=20.0, B=150.0, alpha=0.35, beta=0.38),
    "demo fit": Chinchilla(E=0.53, A=243.7, B=19.6, alpha=0.737, beta=0.205),  # the demo sweep's own fit
}
GOAL = 1.5


def synthetic_runs(specs: list[RunSpec], law: Chinchilla, noise: float, seed: int) -> pd.DataFrame:
    """The runs of specs as the store would hold them, each loss law(N, D) x exp(N(0, noise)); a run's
    noise depends on its id and the seed alone, so it is the same in every set it is part of."""
    rows = []
    for spec in specs:
        planned = describe(spec)
        z = np.random.default_rng([seed, int(spec.run_id, 16)]).standard_normal()
        loss = float(law.loss(planned.N, spec.tokens)) * np.exp(noise * z)
        rows.append({**planned.row(), "loss": loss, "role": "proxy", "state": "done"})
    return pd.DataFrame(rows)


def interval_width(runs: pd.DataFrame, config: Config, compute: float) -> float:
    report = fit_all(runs, config.fit)
    _, prediction, _ = approach3_prediction(report, config, compute)
    return prediction.loss_interval[1] - prediction.loss_interval[0]


@dataclass
class Spend:
    name: str
    flops: float
    runs: int
    width_after: float  # mean over replicates
    expected_width: float | None = None  # the wave's own forecast

    def shrink_per_flop(self, before: float) -> float:
        return (before - self.width_after) / self.flops


def spend(name: str, specs: list[RunSpec], runs: pd.DataFrame, law: Chinchilla, config: Config, compute: float,
          noise: float, seeds: list[int]) -> Spend:  # fmt: skip
    widths = [interval_width(pd.concat([runs, synthetic_runs(specs, law, noise, s)]), config, compute) for s in seeds]
    return Spend(name, sum(describe(s).compute for s in specs), len(specs), float(np.mean(widths)))


def one_sweep(law_name: str, seed: int, noise: float, replicates: int) -> dict:
    config = compose([])
    law = LAWS[law_name]
    runs = synthetic_runs(make_plan(config).specs, law, noise, seed)
    compute = config.sweep.target_multiplier * max(config.sweep.budgets)
    report = fit_all(runs, config.fit)
    proposal = propose(report, runs, config, compute)
    a3 = next(p for p in proposal.predictions if p.approach == "approach3")
    before = a3.loss_interval[1] - a3.loss_interval[0]
    budget = next_budgets(config.sweep.budgets)[0]
    baseline_specs = [run_spec(s, budget, 0, config) for s in isoflop_shapes(budget, config)]
    allowance = sum(describe(s).compute for s in baseline_specs)
    started = time.perf_counter()
    offered = candidates(fitted_table(runs, config.fit), set(runs["run_id"]), config)
    wave = next_wave(report, runs, offered, config, proposal, None, allowance)
    seconds = time.perf_counter() - started
    outcomes = [1000 * seed + r for r in range(replicates)]
    baseline = spend("baseline", baseline_specs, runs, law, config, compute, noise, outcomes)
    chosen = spend("wave", wave.specs, runs, law, config, compute, noise, outcomes) if wave.specs else None
    if chosen:
        chosen.expected_width = wave.expected_width
    ratio = chosen.shrink_per_flop(before) / baseline.shrink_per_flop(before) if chosen else None
    return {
        "law": law_name, "seed": seed, "before": before, "predicted": a3.loss,
        "true_loss": float(law.loss(proposal.shape["N"], proposal.tokens)), "allowance": allowance,
        "candidates": wave.candidates, "baseline": vars(baseline), "wave": vars(chosen) if chosen else None,
        "ratio": ratio, "choose_seconds": seconds, "stopped": wave.stopped,
        "wave_runs": [{"budget": p.candidate.budget, "N": p.candidate.shape.N, "kind": p.candidate.kind}
                      for p in wave.picks],
    }  # fmt: skip


def table(rows: list[dict]) -> str:
    lines = ["| law | seed | width now | baseline: FLOPs, width after | wave: runs, FLOPs, width after (expected) | "
             "shrink/FLOP wave / baseline |", "|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        b, w = r["baseline"], r["wave"]
        wave = f"{w['runs']}, {w['flops']:.3g}, {w['width_after']:.4f} ({w['expected_width']:.4f})" if w else "none"
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] is not None else "-"
        lines.append(f"| {r['law']} | {r['seed']} | {r['before']:.4f} | {b['flops']:.3g}, {b['width_after']:.4f} | "
                     f"{wave} | {ratio} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one law, one seed, one replicate")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--replicates", type=int, default=3, help="draws of the new runs' outcomes per spend")
    parser.add_argument("--noise", type=float, default=0.01, help="relative std of a run's loss (the demo's fit: 1%%)")
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()
    laws = list(LAWS)[:1] if args.quick else list(LAWS)
    seeds = range(1 if args.quick else args.seeds)
    rows = []
    for law in laws:
        for seed in seeds:
            rows.append(one_sweep(law, seed, args.noise, 1 if args.quick else args.replicates))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    ratios = [r["ratio"] for r in rows if r["ratio"] is not None and np.isfinite(r["ratio"])]
    summary = {"median_ratio": float(np.median(ratios)) if ratios else None,
               "geometric_mean_ratio": float(np.exp(np.mean(np.log(np.clip(ratios, 1e-9, None))))) if ratios else None,
               "goal": GOAL, "noise": args.noise, "replicates": args.replicates}  # fmt: skip
    print(table(rows))
    print(f"shrink per FLOP, wave / baseline: median {summary['median_ratio']}, goal >= {GOAL}")
    args.results.mkdir(parents=True, exist_ok=True)
    name = "next_wave_quick.json" if args.quick else "next_wave.json"
    (args.results / name).write_text(json.dumps({"summary": summary, "sweeps": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
