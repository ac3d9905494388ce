"""A shared-trunk (WSD) sweep as the README shows it."""

from __future__ import annotations

import json
import shlex

from tests.conftest import REPO, sweep_cli

README = (REPO / "README.md").read_text()


def test_the_readme_wsd_plan_prints_the_flops_of_both_plans(tmp_path):
    lines = README.splitlines()
    command = next(line for line in lines if line.startswith("$ sweep plan sweep=wsd"))
    claimed = next(line for line in lines if line.startswith("planned FLOPs:"))
    result = sweep_cli(*shlex.split(command)[2:], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert claimed in result.stdout.splitlines()
    assert "next: sweep launch sweeps/wsd" in result.stdout
    again = sweep_cli("plan", "sweep=wsd", "--out", "sweeps/wsd", "--json", cwd=tmp_path)
    payload = json.loads(again.stdout)
    assert payload["independent_flops"] / payload["planned_flops"] >= 2.5
    assert len(payload["runs"]) == 66 and payload["trunks"] == 6 and payload["branches"] == 60
