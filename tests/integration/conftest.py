"""The real SLURM cluster that `make test` starts (scripts/slurm-local.sh)."""

import os
import shutil
import subprocess

import pytest


def slurm_answers() -> bool:
    if shutil.which("sinfo") is None:
        return False
    return subprocess.run(["sinfo", "-h"], capture_output=True, timeout=10).returncode == 0


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    if slurm_answers():
        return
    if os.environ.get("SWEEP_TEST_SLURM") == "required":
        pytest.fail("the SLURM cluster is not answering; `scripts/slurm-local.sh start` should have started it")
    pytest.skip("no SLURM cluster: start one with `scripts/slurm-local.sh start` (as root), or run `make test`")
