"""The CLI killed in the middle of `sweep launch`: relaunching trains every run exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO, sweep_cli


def kill_mid_launch_then_relaunch(out: Path, *plan_overrides: str) -> None:
    """Plan the smoke sweep, SIGKILL `sweep launch` as soon as it has queued a run, launch again,
    wait, and check that every run trained exactly once."""
    assert sweep_cli("plan", "sweep=smoke", *plan_overrides, "--out", out).returncode == 0
    env = {**os.environ, "WANDB_MODE": "disabled"}
    cli = subprocess.Popen([sys.executable, "-m", "sweep.cli", "launch", str(out)], cwd=REPO, env=env)
    deadline = time.time() + 120
    while not list(out.glob("runs/*/status.json")) and cli.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    cli.send_signal(signal.SIGKILL)
    assert cli.wait() == -signal.SIGKILL, "launch finished before the kill landed: nothing was tested"
    assert {json.loads(p.read_text())["state"] for p in out.glob("runs/*/status.json")} >= {"queued"}

    relaunched = sweep_cli("launch", out, "--json")
    assert relaunched.returncode == 0, relaunched.stderr
    waited = sweep_cli("wait", out, "--json")
    assert {r["state"] for r in json.loads(waited.stdout)["runs"]} == {"done"}
    for run in (out / "runs").iterdir():
        history = [h["state"] for h in json.loads((run / "status.json").read_text())["history"]]
        assert history.count("running") == 1, (run.name, history)
        assert (run / "result.json").is_file()


def test_relaunch_after_the_cli_is_killed_mid_launch_trains_each_run_once(tmp_path):
    kill_mid_launch_then_relaunch(tmp_path / "crash", "launcher.parallel=6")  # six workers to start
