"""examples/notebook.py runs from top to bottom, on the fast path (noop trainer, in-process executor)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pandas as pd

from sweep.launch.noop import LAW
from tests.conftest import REPO


def test_the_notebook_plans_trains_fits_proposes_and_exports(tmp_path):
    out = tmp_path / "nb"
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": "disabled"}
    result = subprocess.run(
        [sys.executable, "examples/notebook.py", "--trainer", "noop", "--executor", "debug", "--out", str(out)],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    printed = result.stdout
    assert f"<Sweep 'nb' at {out}: 9 runs (9 planned)>" in printed
    assert f"<Sweep 'nb' at {out}: 9 runs (9 done)>" in printed and "9 runs, 9 curve points" in printed

    # The noop trainer's losses lie on LAW exactly: the fit finds it, and each interval holds it.
    for name in ("E", "A", "B", "alpha", "beta"):
        value, low, high = map(float, re.search(rf"  {name} += (\S+)  \[(\S+), (\S+)\]", printed).groups())
        truth = getattr(LAW, name)
        assert abs(value - truth) < 1e-3 * truth and low <= value <= high

    (proposal_id,) = pd.read_parquet(out / "export" / "proposals.parquet")["proposal_id"]
    assert f"proposal {proposal_id}: C = 3e+12" in printed
    assert f"train it with: sweep train --config {out / 'proposals' / proposal_id}.yaml" in printed
    for name, rows in (("runs", 9), ("curves", 9), ("fits", 2), ("proposals", 1)):
        assert len(pd.read_parquet(out / "export" / f"{name}.parquet")) == rows
    assert f"report: {out / 'report' / 'index.html'}" in printed and (out / "report" / "index.html").is_file()
