"""A training run's W&B run. W&B is a view of the run, never a condition of it: a W&B failure (no
network on a node, no key, a backend that went away) is a warning and the run trains on unlogged."""

from __future__ import annotations

import logging
import netrc
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from models.config import TrainOptions, wandb_mode

if TYPE_CHECKING:  # handed in by the caller: models never imports sweep at run time
    from sweep.rundir import RunDir
    from sweep.spec import RunSpec

log = logging.getLogger(__name__)


def has_api_key() -> bool:
    """Whether W&B has credentials to use: WANDB_API_KEY (or an identity token file), or a netrc entry
    for its server (what `wandb login` writes)."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        entries = netrc.netrc(os.environ.get("NETRC") or Path.home() / ".netrc")
    except (OSError, netrc.NetrcParseError):
        return False
    return entries.authenticators(host) is not None


def run_tags(spec: RunSpec) -> list[str]:
    """W&B tags to filter runs by: the budget, the shape and the role, e.g. budget=1e+12, d64xL2, proxy."""
    return [f"budget={spec.budget:g}", f"d{spec.d_model}xL{spec.n_layers}", spec.role]


class RunLogger:
    """Logs a training run's curve rows as history and its result as summary; does nothing when W&B
    is off or has failed."""

    def __init__(self, run=None):
        self.run = run

    @classmethod
    def start(cls, options: TrainOptions, spec: RunSpec, run_dir: RunDir) -> RunLogger:
        """The W&B run of this training run (its id is the run id: a resumed run logs on where it
        stopped), or a logger that does nothing."""
        mode = wandb_mode(options.wandb_mode)
        if mode == "disabled":
            return cls()
        if mode == "online" and not has_api_key():  # wandb.init would prompt for one, or wait and fail
            log.warning(f"W&B: run {spec.run_id} not logged: no API key (run `wandb login` or set WANDB_API_KEY)")
            return cls()
        try:
            import wandb  # imported here: it costs a second and most runs do not log to W&B

            return cls(wandb.init(
                project=options.wandb_project, entity=options.wandb_entity, group=options.wandb_group or None,
                job_type="train", tags=run_tags(spec), name=spec.run_id, id=spec.run_id, resume="allow",
                mode=mode, dir=str(run_dir.path), config=spec.to_dict(),
            ))  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - whatever W&B raises, the run trains on
            cls._failed(spec.run_id, exc)
            return cls()

    def log(self, row: dict, step: int) -> None:
        if self.run is not None:
            try:
                self.run.log(row, step=step)
            except Exception as exc:  # noqa: BLE001
                self._failed(self.run.id, exc)
                self.finish(exit_code=1)  # what it still can: closed, so it holds nothing open

    def finish(self, summary: dict | None = None, exit_code: int = 0) -> None:
        """Close the W&B run (exit_code 1: the training run failed), with `summary` as its summary."""
        if self.run is not None:
            try:
                if summary:
                    self.run.summary.update(summary)
                self.run.finish(exit_code=exit_code)
            except Exception as exc:  # noqa: BLE001
                self._failed(self.run.id, exc)
            self.run = None

    @staticmethod
    def _failed(run_id: str, exc: Exception) -> None:
        reason = (str(exc).strip().splitlines() or [""])[0]
        log.warning(f"W&B: run {run_id} is no longer logged ({type(exc).__name__}: {reason}); it trains on")


def close_abandoned_run() -> None:
    """Close, as failed, the W&B run of a training run that raised (diverged, interrupted, crashed)
    before it could finish it, so that the next run of the process does not log into it."""
    wandb = sys.modules.get("wandb")  # never imported: no run can be open
    if wandb is not None and wandb.run is not None:
        RunLogger(wandb.run).finish(exit_code=1)
