"""bench/wsd.py --quick: the shared-trunk benchmark's whole path (three sweeps planned, launched on
the local queue in trunk order, proposed) with the noop trainer. It asserts what the bench produces,
not how good the shared plan's forecast is: that is the benchmark's job."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO


def test_the_quick_wsd_bench_plans_trains_and_compares_the_three_sweeps(tmp_path):
    results, work = tmp_path / "results", tmp_path / "work"
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "wsd.py"), "--quick", "--work", str(work), "--results", str(results)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    payload = json.loads((results / "wsd.json").read_text())
    plans = {r["plan"]: r for r in payload["results"]}
    assert set(plans) == {"shared", "independent", "same FLOPs"}
    assert plans["shared"]["points"] == plans["independent"]["points"] and plans["shared"]["trunks"] > 0
    assert payload["summary"]["flops_ratio"] == plans["independent"]["planned_flops"] / plans["shared"]["planned_flops"]
    assert payload["summary"]["flops_ratio"] > 2
    for run in (work / "shared" / "runs").iterdir():  # every run trained once, no branch before its trunk
        status = json.loads((run / "status.json").read_text())
        assert status["state"] == "done" and [h["state"] for h in status["history"]].count("running") == 1
    assert "| shared |" in (results / "wsd.md").read_text()
