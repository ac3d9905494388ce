"""Log a sweep's fit and proposal to W&B, each to a run of its own, when W&B is on.

The run's group is the sweep's name (its directory's), as for its training runs (models/train.py),
and its job_type is `fit` or `propose`. It holds the fitted parameters with their 95% intervals as
a table and as summary scalars, the proposal's predictions, target and warnings, and the report's
figures as images. W&B never costs the fit: that is saved before, and a W&B failure is logged as a
one-line warning. `wandb` is imported only when W&B is on: the import takes a second.
"""

from __future__ import annotations

import io
import logging
from dataclasses import asdict
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from models.config import wandb_mode
from models.tracking import has_api_key
from sweep.config import Config, shareable
from sweep.errors import UserError
from sweep.fit.errors import FitError

if TYPE_CHECKING:
    from sweep.fit.report import FitReport
    from sweep.propose import Proposal

log = logging.getLogger(__name__)

FIT_COLUMNS = ["approach", "parameter", "value", "lo_95", "hi_95"]
PREDICTION_COLUMNS = ["approach", "N", "N_lo_95", "N_hi_95", "D", "D_lo_95", "D_hi_95", "loss", "loss_lo_95",
                      "loss_hi_95"]  # fmt: skip
POWER_LAWS = ("N_star", "D_star", "L_star")  # Approaches 1 and 2: each = coefficient * C^exponent


def fit_rows(fit: dict) -> list[list]:
    """Each fitted parameter of a fit (FitReport.to_dict()) as [approach, parameter, value, lo, hi]: the
    power laws of Approaches 1 and 2, Approach 3's L(N, D), the forms of fit.forms. lo and hi are the 95%
    bootstrap interval, None where there is none."""
    rows = []
    for approach in ("approach1", "approach2"):
        for law in POWER_LAWS if approach in fit else ():
            for part in ("coefficient", "exponent"):
                fitted = fit[approach][law]
                rows.append([approach, f"{law}.{part}", fitted[part], *_bounds(fitted[f"{part}_interval"])])
    for name, law in (("approach3", fit.get("approach3")), *fit.get("forms", {}).items()):
        for parameter, interval in (law or {}).get("intervals", {}).items():
            rows.append([str(name), parameter, law[parameter], *_bounds(interval)])  # a form's name is a FitForm
    return rows


def fit_summary(fit: dict) -> dict:
    return {"n_runs": fit["n_runs"], "counting": fit["counting"],
            **{f"{approach}/{parameter}": value for approach, parameter, value, _, _ in fit_rows(fit)}}  # fmt: skip


def prediction_rows(proposal: dict) -> list[list]:
    """Each approach's predicted N, D and loss at the target (Proposal.to_dict()), each with its interval."""
    return [
        [p["approach"], *(x for key in ("N", "D", "loss") for x in (p[key], *_bounds(p[f"{key}_interval"])))]
        for p in proposal["predictions"]
    ]


def proposal_summary(proposal: dict) -> dict:
    shape = proposal["shape"]
    target = {key: shape[key] for key in ("d_model", "n_layers", "n_heads", "N", "N_total")}
    target |= {
        key: proposal[key] for key in ("compute", "tokens", "steps", "batch_size", "lr", "run_id", "recommended")
    }
    losses = {f"loss/{p['approach']}": p["loss"] for p in proposal["predictions"]}
    return {
        f"target/{key}": value for key, value in {**target, **losses, "warnings": len(proposal["warnings"])}.items()
    }


def _bounds(interval: list | tuple | None) -> tuple:
    return tuple(interval) if interval else (None, None)


def log_fit(path: Path, config: Config, report: FitReport, with_figures: bool = True) -> None:
    """Log the fit to a W&B run of job_type fit, when config.wandb.mode (or WANDB_MODE) is not disabled.
    `with_figures=False` leaves the report's figures out (they show the fit of the sweep's saved config)."""
    fit = report.to_dict()
    tables = {"fit/parameters": (FIT_COLUMNS, fit_rows(fit)), "fit/notes": (["note"], [[n] for n in fit["notes"]])}
    _log(path, config, "fit", tables, fit_summary(fit), report if with_figures else None)


def log_proposal(path: Path, config: Config, report: FitReport, proposal: Proposal, with_figures: bool = True) -> None:
    """Log the proposal, and the fit it rests on, to a W&B run of job_type propose (see log_fit)."""
    fit, proposed = report.to_dict(), proposal.to_dict()
    tables = {
        "fit/parameters": (FIT_COLUMNS, fit_rows(fit)),
        "proposal/predictions": (PREDICTION_COLUMNS, prediction_rows(proposed)),
        "proposal/warnings": (["warning"], [[w] for w in proposed["warnings"]]),
    }
    _log(
        path,
        config,
        "propose",
        tables,
        {**fit_summary(fit), **proposal_summary(proposed)},
        report if with_figures else None,
    )


def _log(
    path: Path,
    config: Config,
    job_type: str,
    tables: dict[str, tuple[list, list]],
    summary: dict,
    figures_of: FitReport | None,
) -> None:
    """figures_of: the fit whose report figures are logged too (None: no figures)."""
    mode = wandb_mode(config.wandb.mode)
    if mode == "disabled":
        return
    if mode == "online" and not has_api_key():  # wandb.init would stop at its login prompt
        log.warning(f"W&B: the {job_type} was not logged (no API key: run `wandb login` or set WANDB_API_KEY); "
                    f"it is saved in {path}")  # fmt: skip
        return
    sweep_name = Path(path).resolve().name
    try:
        import wandb

        logged = {key: wandb.Table(columns=columns, data=rows) for key, (columns, rows) in tables.items()}
        logged |= figure_images(wandb, path, figures_of) if figures_of else {}
        run = wandb.init(
            project=config.wandb.project, entity=config.wandb.entity, group=sweep_name, job_type=job_type,
            name=f"{sweep_name}-{job_type}", mode=mode, dir=str(path), config=shareable(asdict(config)),
            settings=wandb.Settings(silent=True),  # W&B's banner would split the command's own output
        )  # fmt: skip
        try:
            run.log(logged)
            run.summary.update(summary)
        finally:
            run.finish()
    except Exception as exc:  # noqa: BLE001 - whatever W&B raises (network, auth, its own bugs) must not cost the fit
        reason = (str(exc).strip().splitlines() or [""])[0]
        log.warning(f"W&B: the {job_type} was not logged ({type(exc).__name__}: {reason}); it is saved in {path}")


def figure_images(wandb: ModuleType, path: Path, report: FitReport) -> dict:
    """The report's figures of the sweep as W&B images (figures/<name>); none, with a warning, where
    the sweep cannot be gathered for a report (e.g. its fit has too few runs)."""
    from PIL import Image

    from sweep.report.data import gather
    from sweep.report.figures import make_figures

    try:
        figures, _ = make_figures(gather(path, fit=report))
    except (UserError, FitError) as exc:
        log.warning(f"W&B: no figures logged ({exc})")
        return {}
    return {
        f"figures/{f.name}": wandb.Image(Image.open(io.BytesIO(f.png)), caption=f"{f.title}: {f.caption}")
        for f in figures
    }
