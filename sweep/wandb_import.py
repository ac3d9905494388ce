"""Finished runs of a W&B project as our runs and curves: `sweep import --wandb ENTITY/PROJECT`.

Online only. `fetch_runs` is the network call (W&B's public API); `convert` turns what it returns
into the rows the store imports, so that the conversion is tested without a network.

What is read of each finished run:
- N, D, C and loss from its summary, under the keys our training runs log (models/train.py writes its
  result.json there: N, N_total, D, C, loss, ...). Others' runs: name their keys with --n-col, --d-col,
  --c-col and --loss-col, as for a CSV file; with only one of D and C, the other is C = 6 N D.
- the budget from the summary or else the config (key `budget`, or --budget-col): our runs log their
  RunSpec as config, budget included. Where a run has none, every run is grouped by C to two digits.
- the curve from the history rows that hold every column of curve.csv (step, tokens, flops, train_loss,
  eval_loss, lr), as our runs log them; others' runs come without a curve.
A run without a positive N, loss, and D or C is skipped, and the import says why.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import pandas as pd

from models.tracking import has_api_key
from sweep.csvinput import FLOPS_PER_PARAM_TOKEN, CsvColumns
from sweep.errors import UserError
from sweep.rundir import CURVE_COLUMNS

API_TIMEOUT_S = 30
OFFLINE_MODES = ("offline", "disabled", "dryrun")


@dataclass(frozen=True)
class WandbRun:
    """What the import reads of one W&B run (wandb.apis.public.Run has these, history as scan_history())."""

    id: str
    state: str
    summary: dict
    config: dict
    history: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class ImportedRuns:
    table: pd.DataFrame  # N, D, C, loss, budget (NaN where unknown), name (the W&B run id)
    curves: dict[str, list[dict]]  # W&B run id -> its curve rows (CURVE_COLUMNS)
    skipped: dict[str, str]  # W&B run id -> why it was not imported


def convert(runs: list[WandbRun], columns: CsvColumns = CsvColumns()) -> ImportedRuns:
    rows, curves, skipped = [], {}, {}
    for run in runs:
        row = run_row(run, columns)
        if isinstance(row, str):
            skipped[run.id] = row
            continue
        rows.append(row)
        if curve := [_curve_point(h) for h in run.history if all(_number(h.get(c)) is not None for c in CURVE_COLUMNS)]:
            curves[run.id] = curve
    return ImportedRuns(pd.DataFrame(rows, columns=["N", "D", "C", "loss", "budget", "name"]), curves, skipped)


def run_row(run: WandbRun, columns: CsvColumns) -> dict | str:
    """The run's N, D, C, loss, budget and name, or why it cannot be imported."""
    if run.state != "finished":
        return f"its state is {run.state}, not finished"
    if run.config.get("role", "proxy") != "proxy":  # a run of ours: a WSD trunk or a trained target
        return f"its role is {run.config['role']}: only proxies are fitted"
    n, d, c, loss = (_positive(run.summary.get(key)) if key else None
                     for key in (columns.n_col, columns.d_col, columns.c_col, columns.loss_col))  # fmt: skip
    missing = [key for key, value in ((columns.n_col, n), (columns.loss_col, loss)) if value is None]
    if d is None and c is None:
        missing.append(" or ".join(key for key in (columns.d_col, columns.c_col) if key))
    if missing:
        return f"its summary has no positive {', '.join(missing)}"
    budget_key = columns.budget_col or "budget"
    budget = _positive(run.summary.get(budget_key, run.config.get(budget_key)))
    d = d if d is not None else c / (FLOPS_PER_PARAM_TOKEN * n)
    c = c if c is not None else FLOPS_PER_PARAM_TOKEN * n * d
    return {"N": n, "D": d, "C": c, "loss": loss, "budget": budget if budget else math.nan, "name": run.id}


def _curve_point(row: dict) -> dict:
    return {c: _number(row[c]) for c in CURVE_COLUMNS}


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _positive(value) -> float | None:
    number = _number(value)
    return number if number is not None and number > 0 else None


def fetch_runs(project: str) -> list[WandbRun]:
    """The finished runs of ENTITY/PROJECT, read from the W&B server. Raises UserError, before any
    network I/O, when W&B is kept offline or no API key is configured, and when the server cannot
    be read."""
    check_online(project)
    import wandb

    try:
        api = wandb.Api(timeout=API_TIMEOUT_S)
        found = api.runs(project, filters={"state": "finished"})
        return [WandbRun(r.id, r.state, dict(r.summary), dict(r.config), list(r.scan_history())) for r in found]
    except Exception as exc:  # noqa: BLE001 - the network, the server and W&B's client raise many kinds
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"could not read the runs of {project} from W&B ({reason}); check the network, the project's "
                        "name and your key (`wandb login`), then import again") from None  # fmt: skip


def check_online(project: str) -> None:
    parts = project.split("/")
    if len(parts) != 2 or not all(parts):
        raise UserError(f"--wandb {project!r} must name a project as ENTITY/PROJECT, e.g. my-team/scaling")
    mode = os.environ.get("WANDB_MODE", "")
    if mode in OFFLINE_MODES:
        raise UserError(f"--wandb reads runs from the W&B server, but WANDB_MODE={mode} keeps W&B off the network; "
                        "import with WANDB_MODE=online (or unset it)")  # fmt: skip
    if not has_api_key():
        raise UserError("--wandb needs a W&B API key, and none is configured; run `wandb login` or set WANDB_API_KEY")
