"""Wall time of the main job, `sweep run`, from an empty directory: the demo preset (goal: under
15 minutes on the 2-core CI machine, install included) and the smoke preset (goal: under a minute).

    .venv/bin/python bench/demo_wall.py [--preset default|smoke|both]

Prints a table and writes bench/results/demo_wall.json. Not a test: it only measures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run_preset(preset: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / preset
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "sweep.cli", "run", f"sweep={preset}", "--out", str(out), "--json"],
            capture_output=True, text=True, cwd=REPO, env={**os.environ, "WANDB_MODE": "disabled"},
        )  # fmt: skip
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"sweep run sweep={preset} failed:\n{proc.stderr}")
        payload = json.loads(proc.stdout)
        results = [json.loads(p.read_text()) for p in out.glob("runs/*/result.json")]
    train_s = sum(r["wall_time_s"] for r in results)
    return {
        "preset": preset,
        "wall_s": wall,
        "runs": len(results),
        "sum_run_train_s": train_s,
        "proxy_flops": sum(r["C"] for r in results),
        "sizes": sorted({r["N"] for r in results}),
        "fit": payload["fit"].get("approach3", {}),
        "proposal_loss": {p["approach"]: p["loss"] for p in payload["proposal"]["predictions"]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="both", choices=["default", "smoke", "both"])
    presets = ["smoke", "default"] if parser.parse_args().preset == "both" else [parser.parse_args().preset]
    rows = [run_preset(p) for p in presets]
    print(f"{'preset':<10}{'wall s':>10}{'runs':>6}{'sum train s':>13}{'proxy FLOPs':>13}")
    for r in rows:
        print(
            f"{r['preset']:<10}{r['wall_s']:>10.1f}{r['runs']:>6}{r['sum_run_train_s']:>13.1f}{r['proxy_flops']:>13.3g}"
        )
    results = REPO / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "demo_wall.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
