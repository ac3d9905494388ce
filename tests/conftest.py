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


@pytest.fixture
def epoch_csv() -> Path:
    if not EPOCH_CSV.is_file():
        pytest.skip(f"reference data {EPOCH_CSV} is absent (it lives in the project's sibling folder shared/data)")
    return EPOCH_CSV
