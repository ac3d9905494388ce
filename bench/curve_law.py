"""The curve law's backtest (sweep/fit/curvelaw.py): predict each run's final loss from the curves of
the other runs of its shape, on real curves.

- cosine: the demo sweep's curves (a copy of --demo; the original is never written);
- wsd: a small set trained here for real (--wsd-out), per shape one stable trunk and decay branches
  from it at several token counts, with linear and 1-sqrt decays of 20% and 40%.

Beside the law, the naive baseline: the final loss of the shape's other run nearest in tokens. Then
Approach 3 with and without the law's predicted points (fit.curve_law_points), backtested on the demo
sweep's largest budgets.

    .venv/bin/python bench/curve_law.py                  # sweeps/demo; trains the WSD set once (~1.5 min)
    .venv/bin/python bench/curve_law.py --demo /work/main/sweeps/demo --wsd-out /tmp/wsd

Writes bench/results/curve_law.json (or --results). Not a test: it measures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from sweep.fit.curvelaw import PAPER_DECAY  # noqa: E402
from sweep.spec import RunSpec  # noqa: E402

# A WSD set: per shape (d_model, n_layers), branches ending at these steps (batch 8 x 128 tokens).
WSD_SHAPES = ((32, 2), (48, 2))
WSD_TOTALS = (250, 400, 625, 1000)  # the branches' total steps, each with a 20% linear decay
WSD_EXTRA = ((625, 0.2, "one_minus_sqrt"), (625, 0.4, "linear"), (1000, 0.4, "one_minus_sqrt"))  # (steps, decay, shape)
WSD_OVERRIDES = ["data=text", "run.batch_size=8", "train.eval_points=8", "train.warmup_frac=0.05"]


def wsd_family(base: RunSpec, branches: list[tuple[int, float, str]], warmup_steps: int) -> list[RunSpec]:
    """A stable trunk and its decay branches (total steps, decay fraction, decay shape), trunk first.
    The trunk runs to the latest branch point and keeps a checkpoint at every branch point."""
    tokens_per_step = base.batch_size * base.seq_len
    wsd = replace(base, schedule="wsd", warmup_steps=warmup_steps)
    starts = {total: total - round(frac * total) for total, frac, _ in branches}
    trunk = replace(wsd, decay_frac=0.0, tokens=max(starts.values()) * tokens_per_step, role="trunk",
                    branch_steps=tuple(sorted(set(starts.values()))))  # fmt: skip
    return [trunk] + [
        replace(
            wsd,
            tokens=total * tokens_per_step,
            decay_frac=frac,
            decay_shape=shape,
            parent=trunk.run_id,
            branch_step=starts[total],
        )  # fmt: skip
        for total, frac, shape in branches
    ]


def train_set(out: Path, overrides: list[str], shapes, branches, warmup_steps: int) -> Path:
    """Plan and train (in this process, one thread) a WSD family per shape in a sweep directory at out,
    and collect it into the store. A set already trained there is reused."""
    from models.config import TrainOptions
    from sweep import api
    from sweep.config import compose
    from sweep.launch.job import run_one
    from sweep.plan.grids import single_run_spec
    from sweep.rundir import RunDir
    from sweep.sweepdir import SweepDir

    config = compose(overrides)
    specs = []
    for d_model, n_layers in shapes:
        base = single_run_spec(compose([*overrides, f"run.d_model={d_model}", f"run.n_layers={n_layers}",
                                        "run.tokens=100000"]))  # fmt: skip
        specs += wsd_family(base, branches, warmup_steps)
    sweep = SweepDir.create(out, config, specs)
    for spec in specs:  # each trunk before its branches
        run_one(RunDir(sweep.runs_dir / spec.run_id), TrainOptions(threads=1, checkpoint=False), "bench")
    api.collect(out)
    return out


def copy_sweep(source: Path, into: Path) -> Path:
    """A copy of a sweep's config, plan and store: the backtest reads nothing else."""
    into.mkdir(parents=True, exist_ok=True)
    for name in ("config.yaml", "plan.json", "results.db"):
        shutil.copy2(source / name, into / name)
    return into


VARIANTS = {  # name -> backtest_curves options: the chosen areas, then the alternatives measured
    "S1 tokens, lambda fitted": {},
    "S1 steps, lambda fitted": {"per": "steps"},
    "S1 tokens, lambda 0.999 (the paper's)": {"decay": PAPER_DECAY},
}


def law_rows(name: str, sweep_dir: Path) -> list[dict]:
    """The curve law's backtest of each variant on one sweep, and the time to fit every group once."""
    from sweep import api
    from sweep.fit.curvelaw import backtest_curves, fit_group, groups, run_curves
    from sweep.fit.report import proxies
    from sweep.sweepdir import SweepDir

    curves = run_curves(proxies(api.finished_runs(sweep_dir))[0], api.stored_curves(SweepDir.open(sweep_dir)))
    backtest_curves(curves)  # warm: scipy's import, the areas' cache
    started = time.perf_counter()
    for members in groups(curves).values():
        fit_group(members)
    fit_s = time.perf_counter() - started
    rows = []
    for variant, options in VARIANTS.items():
        started = time.perf_counter()
        result = backtest_curves(curves, **options)
        (mean, top), (base_mean, base_top) = result.ape(), result.ape(baseline=True)
        rows.append({"set": name, "variant": variant, "runs": len(result.checks), "mean_ape": mean, "max_ape": top,
                     "baseline_mean_ape": base_mean, "baseline_max_ape": base_top, "fit_all_groups_s": fit_s,
                     "backtest_s": time.perf_counter() - started, "unchecked": result.unchecked,
                     "per_run": [c.to_dict() for c in result.checks]})  # fmt: skip
    return rows


def eval_set_row(name: str, sweep_dir: Path) -> dict:
    """Where the error lies: the law against each run's last evaluation (the set it was fitted on), and
    its last point taken as the final loss without the eval-set ratio (GroupFit.eval_ratio)."""
    from sweep import api
    from sweep.fit.curvelaw import fit_group, groups, run_curves
    from sweep.fit.report import proxies
    from sweep.sweepdir import SweepDir

    curves = run_curves(proxies(api.finished_runs(sweep_dir))[0], api.stored_curves(SweepDir.open(sweep_dir)))
    last_eval, uncalibrated = [], []
    for members in groups(curves).values():
        for run in (r for r in members if r.spec.role != "trunk" and len(members) > 1):
            law = fit_group([r for r in members if r is not run]).law
            last_eval.append(abs(law.final_loss(run.spec) / run.losses[-1] - 1))
            uncalibrated.append(abs(law.final_loss(run.spec) / run.final_loss - 1))
    return {"set": name, "last_eval_mean_ape": 100 * np.mean(last_eval), "last_eval_max_ape": 100 * np.max(last_eval),
            "uncalibrated_mean_ape": 100 * np.mean(uncalibrated),
            "uncalibrated_max_ape": 100 * np.max(uncalibrated)}  # fmt: skip


def approach3_rows(sweep_dir: Path) -> list[dict]:
    """`sweep backtest` (fit on all but the largest budgets) with and without fit.curve_law_points."""
    from sweep import api

    rows = []
    for holdout in (1, 2):
        for points in (False, True):
            overrides = [f"++fit.curve_law_points={str(points).lower()}", "fit.bootstrap=0"]
            result = api.backtest_source(sweep_dir, api.CsvColumns(), overrides, holdout)
            rows.append({"holdout_top": holdout, "curve_law_points": points,
                         "predicted_points": result.report.curve_law_points,
                         "loss_mean_ape": result.loss_mean_ape, "loss_max_ape": result.loss_max_ape,
                         "held_out": [{"budget": b.budget, **b.errors()} for b in result.held_out]})  # fmt: skip
    return rows


def percent(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", type=Path, default=REPO / "sweeps" / "demo", help="a cosine sweep (only read)")
    parser.add_argument("--wsd-out", type=Path, default=Path(tempfile.gettempdir()) / "curve_law_wsd")
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()
    if not (args.demo / "results.db").is_file():
        parser.error(
            f"--demo {args.demo} has no results.db; give a collected cosine sweep (e.g. /work/main/sweeps/demo)"
        )
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    with tempfile.TemporaryDirectory() as scratch:
        demo = copy_sweep(args.demo, Path(scratch) / "demo")
        if not (args.wsd_out / "results.db").exists():
            branches = [(total, 0.2, "linear") for total in WSD_TOTALS] + list(WSD_EXTRA)
            train_set(args.wsd_out, WSD_OVERRIDES, WSD_SHAPES, branches, warmup_steps=40)
        sets = {"cosine (demo)": demo, "wsd (trained here)": args.wsd_out}
        laws = [row for name, path in sets.items() for row in law_rows(name, path)]
        eval_sets = [eval_set_row(name, path) for name, path in sets.items()]
        approach3 = approach3_rows(demo)

    print("| set | variant | runs | law mean / max APE | baseline mean / max APE | fit, all groups |")
    print("|---|---|---|---|---|---|")
    for r in laws:
        law, baseline = (f"{percent(r[k + 'mean_ape'])} / {percent(r[k + 'max_ape'])}" for k in ("", "baseline_"))
        print(f"| {r['set']} | {r['variant']} | {r['runs']} | {law} | {baseline} | {r['fit_all_groups_s']:.3f} s |")
    print("\nThe chosen law against each run's last evaluation (the set it is fitted on), and as the final loss")
    print("without the ratio of the final evaluation to the curve's (mean / max APE):")
    print("| set | against the last evaluation | final loss, no eval-set ratio |")
    print("|---|---|---|")
    for r in eval_sets:
        print(f"| {r['set']} | {percent(r['last_eval_mean_ape'])} / {percent(r['last_eval_max_ape'])} | "
              f"{percent(r['uncalibrated_mean_ape'])} / {percent(r['uncalibrated_max_ape'])} |")  # fmt: skip
    print("\nApproach 3 on the demo sweep's held-out budgets, without and with fit.curve_law_points:")
    print("| holdout | points | predicted points | held-out loss mean / max APE | N* error | L* error |")
    print("|---|---|---|---|---|---|")
    for r in approach3:
        stars = [(b["approach3_N_star"], b["approach3_L_star"]) for b in r["held_out"]]
        n_star = ", ".join(percent(100 * n) for n, _ in stars)
        l_star = ", ".join(percent(100 * ell) for _, ell in stars)
        print(f"| {r['holdout_top']} | {r['curve_law_points']} | {r['predicted_points']} | "
              f"{percent(r['loss_mean_ape'])} / {percent(r['loss_max_ape'])} | {n_star} | {l_star} |")  # fmt: skip
    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / "curve_law.json"
    out.write_text(json.dumps({"curve_law": laws, "eval_sets": eval_sets, "approach3": approach3}, indent=2) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
