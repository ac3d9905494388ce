"""Shared helpers: running the real `sweep` command, and the reference data in ../shared/data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
EPOCH_CSV = SHARED_DATA / "chinchilla_epoch_svg_extracted.csv"


def sweep_cli(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "disabled", "COLUMNS": "160"}
    return subprocess.run(
        [sys.executable, "-m", "sweep.cli", *map(str, args)],
        capture_output=True, text=True, cwd=cwd or REPO, env=env, timeout=timeout,
    )  # fmt: skip


def reference_data(path: Path) -> Path:
    """`path` if it exists; else skip the test, or fail it where SWEEP_TEST_EPOCH=required (CI), so
    that the tests against published fits cannot pass by not running."""
    if not path.is_file():
        why = f"reference data {path} is absent (it lives in the project's sibling folder shared/data)"
        if os.environ.get("SWEEP_TEST_EPOCH") == "required":
            pytest.fail(f"{why}, and SWEEP_TEST_EPOCH=required")
        pytest.skip(why)
    return path


@pytest.fixture
def epoch_csv() -> Path:
    return reference_data(EPOCH_CSV)
