"""Shared WSD trunks against independent runs: the same grid planned both ways, trained for real.

Three sweeps, each trained on this machine's queue, each proposing the same target:
- shared:      `sweep=wsd`, a trunk per shape and a 20% decay branch per budget (60 points);
- independent: the same 60 (shape, budget) points, each a WSD run trained from scratch with the
               batch and warmup its own tokens call for (what the planner does for a run alone);
- same FLOPs:  the demo's grid (4 budgets x 5 sizes, 20 independent WSD runs), which costs about
               what the shared plan costs: do branches buy a narrower interval for the target?

    .venv/bin/python bench/wsd.py                    # the built-in corpus; ~20 minutes on 2 cores
    .venv/bin/python bench/wsd.py -- data=synthetic  # overrides for every sweep
    .venv/bin/python bench/wsd.py --quick            # tiny and untrained (noop): checks the plumbing

Writes bench/results/wsd.json and wsd.md (or under --results). Not a test: it measures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sweep.api import PlanCost, describe  # noqa: E402
from sweep.config import compose  # noqa: E402
from sweep.plan.grids import run_spec, shape_rules  # noqa: E402
from sweep.sweepdir import SweepDir  # noqa: E402

QUICK = ["launcher.trainer=noop", "fit.bootstrap=50"]
QUICK_BUDGETS = "sweep.budgets=[6e10,7.7e10,1e11,1.3e11,1.7e11,2.2e11]"
TOLERANCE = 0.005  # the shared plan's predicted target loss within 0.5% of the independent plan's


def sweep_cli(*args: str) -> dict | None:
    command = [sys.executable, "-m", "sweep.cli", *args]
    env = {**os.environ, "WANDB_MODE": os.environ.get("WANDB_MODE", "disabled")}
    proc = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"`sweep {' '.join(args)}` failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout) if "--json" in args else None


def specs_of(out: Path) -> list:
    return [run.read_spec() for run in SweepDir.open(out).runs()]


def plan_independent(shared_dir: Path, out: Path, overrides: list[str]) -> None:
    """The shared plan's fitted points, each an independent WSD run with its own batch and warmup."""
    config = compose(["sweep=wsd", "sweep.share_trunks=false", *overrides])
    rules = shape_rules(config)
    branches = [s for s in specs_of(shared_dir) if s.role != "trunk"]
    specs = [run_spec(rules.make(b.d_model, b.n_layers), b.budget, b.seed, config) for b in branches]
    SweepDir.create(out, config, specs)


def train_and_propose(name: str, out: Path, compute: float) -> dict:
    started = time.perf_counter()
    sweep_cli("launch", str(out), "--executor", "local")
    sweep_cli("wait", str(out))
    sweep_cli("collect", str(out), "--json")
    trained = time.perf_counter() - started
    proposal = sweep_cli("propose", str(out), "--compute", f"{compute:g}", "--json")
    runs = [describe(s) for s in specs_of(out)]
    cost = PlanCost.of(runs)
    a3 = next((p for p in proposal["predictions"] if p["approach"] == "approach3"), None)
    return {
        "plan": name, "sweep": str(out), "planned_flops": cost.planned_flops,
        "points": sum(1 for r in runs if r.spec.role != "trunk"), "trunks": cost.trunks, "train_wall_s": trained,
        "loss": a3 and a3["loss"], "loss_interval": a3 and a3["loss_interval"], "N": a3 and a3["N"],
        "N_interval": a3 and a3["N_interval"], "recommended": proposal.get("recommended"),
        "shape": proposal["shape"], "warnings": proposal["warnings"],
    }  # fmt: skip


def width(result: dict) -> float | None:
    band = result["loss_interval"]
    return None if band is None else (band[1] - band[0]) / result["loss"]


def verdict(shared: dict, independent: dict, same_flops: dict) -> dict:
    def inside(value, band):
        return band is not None and value is not None and band[0] <= value <= band[1]

    gap = shared["loss"] / independent["loss"] - 1
    return {
        "flops_ratio": independent["planned_flops"] / shared["planned_flops"],
        "loss_gap": gap,
        "loss_within_tolerance": abs(gap) <= TOLERANCE,
        "N_star_shared_inside_independent_interval": inside(shared["N"], independent["N_interval"]),
        "N_star_independent_inside_shared_interval": inside(independent["N"], shared["N_interval"]),
        "interval_width": {r["plan"]: width(r) for r in (shared, independent, same_flops)},
        "branches_narrow_the_interval_at_equal_flops": (width(shared) or 1) < (width(same_flops) or 0),
    }


def markdown(results: list[dict], summary: dict, compute: float) -> str:
    lines = [f"# Shared WSD trunks vs independent runs (target C = {compute:.3g})", "",
             "| plan | points | trunks | planned FLOPs | train wall s | A3 loss [95%] | width | N* [95%] |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in results:
        band, nb = r["loss_interval"], r["N_interval"]
        if band is None or nb is None:
            lines.append(f"| {r['plan']} | {r['points']} | {r['trunks']} | {r['planned_flops']:.3g} | "
                         f"{r['train_wall_s']:.0f} | no interval | | |")  # fmt: skip
            continue
        lines.append(
            f"| {r['plan']} | {r['points']} | {r['trunks']} | {r['planned_flops']:.3g} | {r['train_wall_s']:.0f} | "
            f"{r['loss']:.4f} [{band[0]:.4f}, {band[1]:.4f}] | {width(r):.1%} | "
            f"{r['N']:.3g} [{nb[0]:.3g}, {nb[1]:.3g}] |"
        )
    lines += ["", *(f"- {k}: {v}" for k, v in summary.items()), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny and untrained (noop trainer): plumbing only")
    parser.add_argument("--work", type=Path, default=REPO / "bench" / "results" / "wsd-sweeps")
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every sweep (after --)")
    args = parser.parse_args()
    overrides = [*(QUICK if args.quick else []), *args.overrides]
    shutil.rmtree(args.work, ignore_errors=True)
    shared_dir, independent_dir, same_dir = (args.work / n for n in ("shared", "independent", "same-flops"))
    budgets = [QUICK_BUDGETS] if args.quick else []
    sweep_cli("plan", "sweep=wsd", *overrides, *budgets, "--out", str(shared_dir), "--json")
    plan_independent(shared_dir, independent_dir, [*overrides, *budgets])
    demo_grid = ["sweep.budgets=[6e10,1.7e11]"] if args.quick else []
    sweep_cli("plan", "train.schedule=wsd", *overrides, *demo_grid, "--out", str(same_dir), "--json")
    config = compose(["sweep=wsd", *overrides, *budgets])
    compute = config.sweep.target_multiplier * max(config.sweep.budgets)
    results = [
        train_and_propose(name, out, compute)
        for name, out in (("shared", shared_dir), ("independent", independent_dir), ("same FLOPs", same_dir))
    ]
    summary = verdict(*results)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "wsd.json").write_text(json.dumps({"results": results, "summary": summary}, indent=2) + "\n")
    text = markdown(results, summary, compute)
    (args.results / "wsd.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
