"""The curve law's backtest (sweep/fit/curvelaw.py): predict each run's final loss from the curves of
the other runs of its shape, on real curves.

- cosine: the demo sweep's curves (a copy of --demo; the original is never written);
- wsd: a small set trained here for real (--wsd-out), per shape one stable trunk and decay branches
  from it at several token counts, with linear and 1-sqrt decays of 20% and 40%.

Beside the law, the naive baseline: the final loss of the shape's other run nearest in tokens.

    .venv/bin/python bench/curve_law.py                  # both sets (trains the WSD set once, ~3 min)
    .venv/bin/python bench/curve_law.py --demo sweeps/demo --wsd-out /tmp/wsd

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

from sweep.spec import RunSpec  # noqa: E402

# A WSD set: per shape (d_model, n_layers), branches ending at these steps (batch 8 x 128 tokens).
WSD_SHAPES = ((32, 2), (48, 2))
WSD_TOTALS = (250, 400, 625, 1000)  # the branches' total steps, each with a 20% linear decay
WSD_EXTRA = ((625, 0.2, "1-sqrt"), (625, 0.4, "linear"), (1000, 0.4, "1-sqrt"))  # (steps, decay, shape)
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
