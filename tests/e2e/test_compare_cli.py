"""`sweep compare` as a user types it, on two sweeps imported from CSV files of known laws: the table,
the JSON document, and bad input as one line with exit code 2. (The README's comparison of two
really trained sweeps runs in tests/e2e/test_readme_demo.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sweep.fit.forms import Chinchilla
from sweep.fit.synthetic import compute_scaled, isoflop_runs
from tests.conftest import REPO

LAW = Chinchilla(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)


def sweep_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "WANDB_MODE": "disabled", "COLUMNS": "200", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "sweep.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=600)  # fmt: skip


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("compare")
    for name, law, seed in (("a", LAW, 0), ("b", compute_scaled(LAW, 2.0), 1), ("c", compute_scaled(LAW, 0.5), 2)):
        isoflop_runs(law, [1e18, 3e18, 1e19, 3e19], noise=0.003, seed=seed).to_csv(cwd / f"{name}.csv", index=False)
        made = sweep_cli("import", f"{name}.csv", "--into", f"sweeps/{name}", cwd=cwd)
        assert made.returncode == 0, made.stderr
    return cwd


def test_the_table_shows_each_sweeps_loss_and_multiplier_and_where_it_was_recorded(sweeps):
    done = sweep_cli("compare", "sweeps/a", "sweeps/b", "sweeps/c", "fit.bootstrap=50", cwd=sweeps)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Effective compute over sweeps/a" in out
    for header in ("a loss", "b loss", "b x compute", "c x compute", "differs"):  # columns by directory name
        assert header in out, header
    rows = [line for line in out.splitlines() if line.startswith("│ ") and "e+" in line]
    assert len(rows) == 5  # 1e18 ... 1e22: the smallest 6ND up to 1000x the largest
    assert all(" better " in row and " worse " in row for row in rows[:2])  # b is worth 2x, c 0.5x
    assert "recorded in the store of sweeps/a, sweeps/b, sweeps/c" in out
    assert "report: sweep report sweeps/a" in out


def test_json_has_a_multiplier_value_and_interval_per_target_and_variant(sweeps):
    done = sweep_cli("compare", "sweeps/a", "sweeps/b", "--compute", "1e20", "--compute", "1e19", "--json",
                     "fit.bootstrap=50", cwd=sweeps)  # fmt: skip
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert [t["compute"] for t in payload["targets"]] == [1e19, 1e20]
    base, variant = payload["targets"][0]["variants"]
    assert base["sweep"] == "sweeps/a" and "multiplier" not in base
    lo, hi = variant["multiplier"]["interval"]
    assert lo <= 2.0 <= hi and variant["significant"] is True
    assert set(variant["loss"]) == {"value", "interval"} and payload["figure"] is None


@pytest.mark.parametrize(
    "args, message",
    [
        (["compare", "sweeps/a"], "compare needs two sweep directories or more"),
        (["compare", "sweeps/a", "sweeps/nope"], "sweeps/nope"),
        (["compare", "sweeps/a", "b.csv"], "b.csv is a file"),
        (["compare", "sweeps/a", "sweeps/b", "fit.bootstrap=10"], "need at least 40 refits"),
        (["compare", "sweeps/a", "sweeps/b", "model.mlp=swiglu"], "fit.* overrides only"),
        (["compare", "sweeps/a", "sweeps/b", "--compute", "0"], "--compute 0.0 must be a positive number"),
        (["compare", "sweeps/a", "sweeps/b", "--shared"], "No such option"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(sweeps, args, message):
    done = sweep_cli(*args, cwd=sweeps)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ") and message in done.stderr
    assert done.stdout == ""
