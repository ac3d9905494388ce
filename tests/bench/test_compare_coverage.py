"""bench/compare_coverage.py --quick: the coverage benchmark's whole path (pairs of sweeps from known
laws, separate and shared-floor fits, multipliers and crossings) on 3 pairs. It asserts that every
measurement ran and that noise-free pairs give the answer exactly; the coverage over 40 noisy pairs
is the benchmark's job (its numbers are in the closing note and the README)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO


def test_the_quick_coverage_bench_measures_every_setting(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "compare_coverage.py"), "--quick", "--shared-e", "--results",
         str(tmp_path)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    fits = json.loads((tmp_path / "compare_coverage_quick.json").read_text())["fits"]
    assert set(fits) == {"separate", "shared E"}
    for rows in fits.values():
        assert set(rows["noise_free"]) == {"k=1.2", "k=2.0"}
        for per_compute in rows["noise_free"].values():
            assert len(per_compute) == 5 and all(r["median_relative_error"] < 1e-6 for r in per_compute.values())
        assert all(0 <= r["coverage"] <= 1 for row in rows["noisy"].values() for r in row.values())
        for at in ("5e+18", "1e+21"):
            exact = rows[f"crossing at {at} noise-free"]
            assert exact["share_within_10pct"] == 1.0 and exact["interval_coverage"] == 1.0
