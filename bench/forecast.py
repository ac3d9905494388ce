"""Forecast accuracy end to end: does the predicted loss of a target 30x past the proxies hold?

Per corpus: `sweep run` (plan, launch on the real local queue or SLURM, wait, collect, fit,
propose), then `sweep propose --compute` at --multiplier x the largest proxy budget, then the
proposed target trained exactly as proposed through `sweep launch --proposal` with --seeds seeds,
then every approach's prediction set beside the actual loss.

    .venv/bin/python bench/forecast.py                       # both corpora, the default preset, 30x, 2 seeds
    .venv/bin/python bench/forecast.py --corpus /data/books  # a text file or directory of your own
    .venv/bin/python bench/forecast.py -- train.parameterization=mup_lr   # overrides for every sweep
    .venv/bin/python bench/forecast.py --quick               # a tiny version (the test suite runs it)

Writes bench/results/forecast.json and forecast.md (or under --results). Not a test: it measures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CORPORA = {"synthetic": ["data=synthetic"], "text": ["data=text"]}


@dataclass
class CorpusResult:
    corpus: str
    overrides: list[str]
    proxies: int
    proxy_flops: float
    target_flops: float
    target_shape: dict
    recommended: str | None
    predictions: list[dict]  # approach, loss, interval, error (predicted / actual - 1), inside
    actual_losses: list[float]  # one per seed
    fitted_E: float | None
    entropy_rate: float | None  # the synthetic source's, the best loss possible
    wall_s: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def actual(self) -> float:
        return statistics.fmean(self.actual_losses)

    def to_dict(self) -> dict:
        spread = max(self.actual_losses) - min(self.actual_losses)
        return {**asdict(self), "actual": self.actual, "seed_spread": spread,
                "proxy_fraction": self.proxy_flops / self.target_flops}  # fmt: skip


def sweep_cli(*args: str, json_out: bool = True) -> dict | None:
    command = [sys.executable, "-m", "sweep.cli", *args, *(["--json"] if json_out else [])]
    proc = subprocess.run(command, capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "WANDB_MODE": os.environ.get("WANDB_MODE", "disabled")})  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"`sweep {' '.join(args)}` failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout) if json_out else None


def timed(wall: dict[str, float], stage: str, *args: str, json_out: bool = True) -> dict | None:
    started = time.perf_counter()
    result = sweep_cli(*args, json_out=json_out)
    wall[stage] = wall.get(stage, 0.0) + time.perf_counter() - started
    return result


def corpus_overrides(corpus: str) -> list[str]:
    return CORPORA.get(corpus, ["data=text", f"data.path={Path(corpus).resolve()}"])


def results_of(out: Path, role: str) -> list[dict]:
    """result.json of every finished run of a role (proxy or target), with its spec's budget."""
    found = []
    for result_file in sorted(out.glob("runs/*/result.json")):
        spec = json.loads((result_file.parent / "spec.json").read_text())
        if spec.get("role", "proxy") == role:
            found.append({**json.loads(result_file.read_text()), "budget": spec["budget"]})
    return found


def entropy_rate(runs: list[dict]) -> float | None:
    """The data's entropy rate, which result.json records for the synthetic source (None for text)."""
    return runs[0].get("entropy_rate")


def forecast(
    corpus: str, overrides: list[str], out: Path, multiplier: float, seeds: int, executor: str
) -> CorpusResult:
    wall: dict[str, float] = {}
    every = [*corpus_overrides(corpus), *overrides]
    ran = timed(wall, "proxies", "run", *every, "--out", str(out), "--executor", executor)
    proxies = results_of(out, "proxy")
    compute = multiplier * max(r["budget"] for r in proxies)
    proposal = timed(wall, "propose", "propose", str(out), "--compute", f"{compute:g}")
    seed_list = ",".join(str(s) for s in range(seeds))
    timed(wall, "target", "launch", str(out), "--proposal", proposal["config"], "--seeds", seed_list,
          "--executor", executor)  # fmt: skip
    timed(wall, "target", "wait", str(out), json_out=False)
    timed(wall, "target", "collect", str(out))
    targets = [r for r in results_of(out, "target") if abs(r["C"] / compute - 1) < 0.05]
    if len(targets) != seeds:
        raise SystemExit(f"{out}: expected {seeds} trained targets at C={compute:.3g}, found {len(targets)}")
    actual = statistics.fmean(t["loss"] for t in targets)
    predictions = []
    for p in proposal["predictions"]:
        band = p["loss_interval"]
        predictions.append({
            "approach": p["approach"], "loss": p["loss"], "interval": band, "error": p["loss"] / actual - 1,
            "inside": None if band is None else band[0] <= actual <= band[1],
            "interval_width": None if band is None else (band[1] - band[0]) / p["loss"],
        })  # fmt: skip
    fit = ran["fit"].get("approach3") or {}
    return CorpusResult(
        corpus=corpus, overrides=every, proxies=len(proxies), proxy_flops=sum(r["C"] for r in proxies),
        target_flops=compute, target_shape=proposal["shape"], recommended=proposal.get("recommended"),
        predictions=predictions, actual_losses=[t["loss"] for t in targets],
        fitted_E=fit.get("E"), entropy_rate=entropy_rate(proxies), wall_s=wall,
        warnings=proposal["warnings"],
    )  # fmt: skip


def markdown(results: list[CorpusResult], multiplier: float) -> str:
    lines = [f"# Forecast at {multiplier:g}x the largest proxy budget", ""]
    for r in results:
        d = r.to_dict()
        lines += [
            f"## {r.corpus}",
            "",
            f"- target: C = {r.target_flops:.3g} FLOPs, d_model={r.target_shape['d_model']}, "
            f"n_layers={r.target_shape['n_layers']}, N = {r.target_shape['N']:,}",
            f"- actual: {d['actual']:.4f} (mean of {len(r.actual_losses)} seeds; spread {d['seed_spread']:.4f})",
            f"- proxies: {r.proxies} runs, {r.proxy_flops:.3g} FLOPs = {d['proxy_fraction']:.3f} of the target's",
            f"- recommended approach: {r.recommended or '(none named)'}",
        ]
        if r.entropy_rate is not None:
            fitted = "n/a" if r.fitted_E is None else f"{r.fitted_E:.4f} ({r.fitted_E / r.entropy_rate - 1:+.1%})"
            lines.append(f"- fitted E: {fitted}; true entropy rate {r.entropy_rate:.4f}")
        lines.append("- wall: " + ", ".join(f"{k} {v:.0f} s" for k, v in r.wall_s.items()))
        lines += ["", "| approach | predicted | 95% interval | error | inside | interval width |", "|---" * 6 + "|"]
        for p in r.predictions:
            band = "-" if p["interval"] is None else f"[{p['interval'][0]:.4f}, {p['interval'][1]:.4f}]"
            width = "-" if p["interval_width"] is None else f"{p['interval_width']:.1%}"
            mark = " (recommended)" if p["approach"] == r.recommended else ""
            lines.append(f"| {p['approach']}{mark} | {p['loss']:.4f} | {band} | {p['error']:+.2%} | "
                         f"{'-' if p['inside'] is None else 'yes' if p['inside'] else 'no'} | {width} |")  # fmt: skip
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", nargs="+", default=["synthetic", "text"],
                        help="synthetic, text (the standard library's sources), or a path to text")  # fmt: skip
    parser.add_argument("--multiplier", type=float, default=30.0, help="target compute / largest proxy budget")
    parser.add_argument("--seeds", type=int, default=2, help="target runs, one per seed")
    parser.add_argument("--executor", default="local", choices=["local", "slurm"])
    parser.add_argument("--quick", action="store_true", help="a tiny sweep (smoke preset, 3x, 1 seed, synthetic)")
    parser.add_argument("--out", type=Path, default=REPO / "sweeps" / "forecast", help="where the sweeps go")
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results", help="where the tables go")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every sweep (after --)")
    args = parser.parse_args()
    overrides = args.overrides
    if args.quick:
        args.corpus, args.multiplier, args.seeds = ["synthetic"], 3.0, 1
        overrides = ["sweep=smoke", "sweep.max_extensions=0", *overrides]
    started = time.perf_counter()
    results = []
    for corpus in args.corpus:
        name = Path(corpus).name if corpus not in CORPORA else corpus
        results.append(forecast(corpus, overrides, args.out / name, args.multiplier, args.seeds, args.executor))
    total = time.perf_counter() - started
    args.results.mkdir(parents=True, exist_ok=True)
    stem = "forecast_quick" if args.quick else "forecast"
    payload = {"multiplier": args.multiplier, "seeds": args.seeds, "wall_s": total,
               "corpora": [r.to_dict() for r in results]}  # fmt: skip
    (args.results / f"{stem}.json").write_text(json.dumps(payload, indent=2) + "\n")
    table = markdown(results, args.multiplier) + f"\ntotal wall time: {total:.0f} s\n"
    (args.results / f"{stem}.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
