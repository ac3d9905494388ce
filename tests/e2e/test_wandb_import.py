"""`sweep import --wandb` is online only: offline, or without an API key, one clear line, exit 2, and
nothing written (each refused before any network I/O)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.e2e.test_bad_input import assert_user_error


def import_wandb(tmp_path, project: str, **env: str) -> subprocess.CompletedProcess:
    home = tmp_path / "home"  # no ~/.netrc, so no key from `wandb login`
    home.mkdir(exist_ok=True)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_") and k != "NETRC"}
    environ |= {"HOME": str(home), "WANDB_SILENT": "true", **env}
    return subprocess.run(
        [sys.executable, "-m", "sweep.cli", "import", "--wandb", project, "--into", str(tmp_path / "s")],
        capture_output=True, text=True, cwd=REPO, env=environ, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize("mode", ["offline", "disabled"])
def test_offline_the_import_says_so_and_writes_nothing(tmp_path, mode):
    assert_user_error(import_wandb(tmp_path, "x/y", WANDB_MODE=mode), f"WANDB_MODE={mode}", "WANDB_MODE=online")
    assert not (tmp_path / "s").exists()


def test_without_an_api_key_the_import_says_how_to_log_in(tmp_path):
    assert_user_error(import_wandb(tmp_path, "x/y", WANDB_MODE="online"), "API key", "wandb login")
    assert not (tmp_path / "s").exists()


def test_a_project_must_be_entity_slash_project(tmp_path):
    assert_user_error(import_wandb(tmp_path, "just-a-project", WANDB_MODE="offline"), "ENTITY/PROJECT")
    assert not (tmp_path / "s").exists()


def test_import_takes_a_csv_or_a_wandb_project_not_both(tmp_path):
    (tmp_path / "runs.csv").write_text("N,D,loss\n1e6,2e7,3.0\n")
    both = [sys.executable, "-m", "sweep.cli", "import", str(tmp_path / "runs.csv"), "--wandb", "x/y", "--into",
            str(tmp_path / "s")]  # fmt: skip
    neither = [sys.executable, "-m", "sweep.cli", "import", "--into", str(tmp_path / "s")]
    for command in (both, neither):
        result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=120)
        assert_user_error(result, "either a CSV file or --wandb ENTITY/PROJECT")
    assert not (tmp_path / "s").exists()
