"""The README's commands on the demo sweep, run as written after `make demo` (`sweep run --out
sweeps/demo`: 20 real proxies, ~4 minutes on 2 cores), print what the README shows; and its
comparison with the demo trained with learned positions (another ~6 minutes)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from sweep.store import Store
from tests.conftest import REPO

README = (REPO / "README.md").read_text()
WIDTH = "120"  # the terminal width the README's tables were printed at


def sweep_at(cwd: Path, command: str) -> subprocess.CompletedProcess:
    """A README command line (`sweep ...`), run in `cwd` as a user would type it."""
    env = {**os.environ, "WANDB_MODE": "disabled", "COLUMNS": WIDTH}
    args = shlex.split(command)
    assert args[0] == "sweep", command
    return subprocess.run([sys.executable, "-m", "sweep.cli", *args[1:]], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=900)  # fmt: skip


def shown(command: str) -> str:
    """What the README shows after `$ <command>`: the lines up to the next blank line."""
    lines = README.splitlines()
    (start,) = [i for i, line in enumerate(lines) if line.split("  #")[0].rstrip() == f"$ {command}"]
    block = []
    for line in lines[start + 1 :]:
        if not line.strip() or line.startswith("```"):
            break
        block.append(line.rstrip())
    return "\n".join(block)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """What `make demo` leaves: the working directory holding sweeps/demo."""
    cwd = tmp_path_factory.mktemp("readme-demo")
    made = sweep_at(cwd, "sweep run --out sweeps/demo")
    assert made.returncode == 0, made.stderr
    return cwd


def printed(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    return "\n".join(line.rstrip() for line in result.stdout.splitlines())


@pytest.mark.parametrize("command", ["sweep fit sweeps/demo", "sweep propose sweeps/demo", "sweep report sweeps/demo"])
def test_the_readmes_demo_command_prints_what_the_readme_shows(demo, command):
    assert printed(sweep_at(demo, command)) == shown(command)


def test_the_readmes_export_writes_the_stores_tables(demo):
    (line,) = [line for line in README.splitlines() if line.startswith("sweep export sweeps/demo")]
    assert printed(sweep_at(demo, line.split("  #")[0])).startswith("exported")
    with Store(demo / "sweeps/demo/results.db", create=False) as store:
        runs = store.runs()
    exported = pd.read_csv(demo / "exports/demo/runs.csv")
    assert sorted(exported["run_id"]) == sorted(runs["run_id"]) and len(exported) == 20
    for table in ("curves", "fits", "proposals"):
        assert len(pd.read_csv(demo / f"exports/demo/{table}.csv")) > 0, table


@pytest.fixture(scope="module")
def learned(demo) -> Path:
    """The README's second sweep, trained beside the demo as the README trains it."""
    (line,) = [line for line in README.splitlines() if line.startswith("sweep run --out sweeps/demo-learned")]
    made = sweep_at(demo, line)
    assert made.returncode == 0, made.stderr
    return demo


def test_the_readmes_comparison_prints_what_the_readme_shows(learned):
    command = "sweep compare sweeps/demo-learned sweeps/demo"
    assert printed(sweep_at(learned, command)) == shown(command)
