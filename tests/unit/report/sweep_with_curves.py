"""A fitted and proposed sweep whose runs have training curves (fake run directories: no model is
trained), for the report's tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sweep import api
from sweep.plan.flops import spec_counts
from sweep.rundir import RunDir
from tests.unit.test_api import OVERRIDES, TRUTH, fake_train

CURVE_POINTS = 8


def sweep_with_curves(out: Path) -> Path:
    """Plan the API tests' sweep at `out`, train every run (curve and result), collect, propose."""
    sweep, planned = api.plan(OVERRIDES, out)
    for run in planned:
        final = fake_train(sweep.path, run.spec)
        write_curve(sweep.path, run.spec, final)
    api.collect(sweep.path)
    api.propose_target(sweep.path)
    return sweep.path


def write_curve(sweep_dir: Path, spec, final_loss: float) -> None:
    """Eval losses along TRUTH's loss in tokens, scaled to end at the run's final loss."""
    n, _, flops_per_token = spec_counts(spec)
    scale = final_loss / TRUTH.loss(n, spec.tokens)
    rows = []
    for step in np.linspace(spec.steps / CURVE_POINTS, spec.steps, CURVE_POINTS).round().astype(int):
        tokens = spec.tokens * step / spec.steps
        loss = float(TRUTH.loss(n, tokens) * scale)
        rows.append({"step": int(step), "tokens": float(tokens), "flops": float(tokens * flops_per_token),
                     "train_loss": loss, "eval_loss": loss, "lr": spec.lr})  # fmt: skip
    RunDir(sweep_dir / "runs" / spec.run_id).write_curve(rows)
