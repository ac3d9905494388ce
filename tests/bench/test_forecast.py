"""bench/forecast.py --quick: the forecast benchmark's whole path (sweep, proposal, target trained
through the launcher, predicted vs actual) on a tiny sweep. It asserts that a prediction and an
actual are produced, not how good the prediction is: that is the benchmark's job."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO


def test_the_quick_forecast_produces_predictions_and_an_actual(tmp_path):
    results = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "forecast.py"), "--quick", "--out", str(tmp_path / "sweeps"),
         "--results", str(results)],
        capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (corpus,) = json.loads((results / "forecast_quick.json").read_text())["corpora"]
    assert corpus["corpus"] == "synthetic" and len(corpus["actual_losses"]) == 1
    assert corpus["actual"] > corpus["entropy_rate"] > 0  # a trained target, above the best loss possible
    assert corpus["predictions"] and all(p["loss"] > 0 for p in corpus["predictions"])
    assert corpus["target_flops"] == 3 * 1e11  # 3x the smoke preset's largest budget
    assert "| approach | predicted |" in (results / "forecast_quick.md").read_text()
