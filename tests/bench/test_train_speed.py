"""bench/train_speed.py --quick on CPU: ours against the reference loop and the slots comparison, in
one JSON document. It asserts the document's shape and that every measurement ran, not how fast: that
is the benchmark's job (the numbers are in its closing note)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO


def test_the_quick_bench_measures_ours_the_reference_and_cpu_slots():
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "train_speed.py"), "--quick", "--json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    cpu = json.loads(proc.stdout)["cpu"]
    assert cpu["ours_tokens_per_s"] > 0 and cpu["reference_tokens_per_s"] > 0
    assert cpu["speedup"] == cpu["ours_tokens_per_s"] / cpu["reference_tokens_per_s"]
    slots = cpu["slots"]
    assert min(slots[k] for k in slots if k.endswith("tokens_per_s")) > 0
    assert "speedup" in proc.stderr  # partial results are printed as they come
