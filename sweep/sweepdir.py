"""The sweep directory: the resolved config, the plan, one directory per run, the store, fits and
proposals. Everything a later command needs is read back from here.

Only names of the run-id form become paths under runs/, whatever plan.json says. Commands that
change which runs exist or are submitted (plan, launch, cancel) hold the sweep's lock, so two at
once take turns instead of both acting on what they read.
"""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from sweep.config import Config, SweepKind, compose, to_yaml
from sweep.errors import UserError
from sweep.rundir import RunDir, atomic_write_json, atomic_write_text
from sweep.spec import RunSpec, is_run_id


@dataclass(frozen=True)
class SweepDir:
    path: Path

    @property
    def config_file(self) -> Path:
        return self.path / "config.yaml"

    @property
    def plan_file(self) -> Path:
        return self.path / "plan.json"

    @property
    def runs_dir(self) -> Path:
        return self.path / "runs"

    @property
    def jobs_dir(self) -> Path:
        return self.path / "jobs"

    @property
    def db_file(self) -> Path:
        return self.path / "results.db"

    @property
    def fits_dir(self) -> Path:
        return self.path / "fits"

    @property
    def proposals_dir(self) -> Path:
        return self.path / "proposals"

    @classmethod
    def open(cls, path: Path) -> SweepDir:
        sweep = cls(Path(path))
        if sweep.path.exists() and not sweep.path.is_dir():
            raise UserError(f"{path} is a file, not a sweep directory; give the directory `sweep plan --out` made")
        if not sweep.path.is_dir():
            raise UserError(f"sweep directory {path} does not exist; create one with `sweep plan --out {path}`")
        if not sweep.plan_file.is_file() or not sweep.config_file.is_file():
            raise UserError(f"{path} is not a sweep directory (no plan.json/config.yaml); make one with `sweep plan`")
        return sweep

    @classmethod
    def create(cls, path: Path, config: Config, specs: Sequence[RunSpec] = ()) -> SweepDir:
        """A new sweep directory holding `specs`, or the same one again with `specs` added: an
        existing plan keeps its runs. A config that differs from the sweep's only in a `sweep`
        section of another kind (a width/depth grid beside an IsoFLOP one) adds its runs as a
        new wave; config.yaml stays the first plan's, and each run's spec.json holds what it
        trains. A new one is written in a temporary directory beside it and renamed into place,
        so a failure (a full disk) leaves no half-written sweep behind."""
        sweep = cls(Path(path))
        if sweep.path.exists() and not sweep.path.is_dir():
            raise UserError(f"{path} is a file, not a directory; choose a new --out")
        if sweep.path.exists() and any(sweep.path.iterdir()) and not sweep.plan_file.is_file():
            raise UserError(f"{path} exists and is not a sweep directory; choose an empty or new --out")
        text = to_yaml(config)
        if sweep.plan_file.is_file():
            if not sweep.config_file.is_file():
                raise UserError(f"{path} has a plan but no config.yaml; plan into a new --out")
            same = sweep.config_file.read_text() == text
            if not same and not sweep.adds_a_grid(config):
                raise UserError(
                    f"{path} holds a sweep planned with another config; plan into a new --out, or repeat the "
                    "overrides it was planned with (a width/depth grid, sweep=widthdepth, may be added; an LR x batch "
                    "grid goes into a directory of its own, for sweep propose --hparams-from)"
                )
            sweep.add_runs(list(specs), wave=0 if same else sweep.next_wave())
            return sweep
        sweep.path.parent.mkdir(parents=True, exist_ok=True)
        staging = cls(Path(tempfile.mkdtemp(dir=sweep.path.parent, prefix=f".{sweep.path.name}.", suffix=".tmp")))
        try:
            atomic_write_text(staging.config_file, text)
            staging.add_runs(list(specs))
            try:
                if sweep.path.exists():
                    sweep.path.rmdir()  # empty: checked above
                os.rename(staging.path, sweep.path)
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
                shutil.rmtree(staging.path, ignore_errors=True)  # another plan made it first: go on as a re-plan
                return cls.create(path, config, specs)
        except BaseException:
            shutil.rmtree(staging.path, ignore_errors=True)
            raise
        return sweep

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the sweep's lock (waiting for it): one command at a time changes runs or submits them."""
        with open(self.path / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def config(self) -> Config:
        try:
            return compose(config_file=self.config_file)
        except (UserError, yaml.YAMLError) as exc:
            first_line = str(exc).strip().splitlines()[0]
            raise UserError(
                f"{self.config_file} is unreadable ({first_line}); restore it, or plan again into a new --out"
            ) from None

    def planned(self) -> list[dict]:
        """plan.json's entries (run id, budget, wave, and role: proxy or target, absent in older plans),
        checked: a corrupt or edited plan is an error."""
        if not self.plan_file.is_file():
            return []
        try:
            entries = json.loads(self.plan_file.read_text())["runs"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UserError(f"{self.plan_file} is unreadable ({type(exc).__name__}: {exc}); {_REPAIR}") from None
        if not isinstance(entries, list):
            raise UserError(f"{self.plan_file} has no list of runs; {_REPAIR}")
        for entry in entries:
            if not (isinstance(entry, dict) and is_run_id(entry.get("run_id")) and _is_budget(entry.get("budget"))):
                raise UserError(f"{self.plan_file} has an entry that is not a run ({str(entry)[:80]}); {_REPAIR}")
        return entries

    def adds_a_grid(self, config: Config) -> bool:
        """Whether config is the sweep's own but for the `sweep` section of a width/depth grid. An LR x
        batch grid is not added: its run at the rules' LR and batch is the IsoFLOP run of the same
        shape, whose valley it would leave (it goes in a directory of its own: --hparams-from)."""
        first = self.config()
        widthdepth = config.sweep.kind == SweepKind.widthdepth != first.sweep.kind
        return widthdepth and replace(first, sweep=config.sweep) == config

    def next_wave(self) -> int:
        """The number of a wave after every planned one."""
        return 1 + max((entry.get("wave", 0) for entry in self.planned()), default=0)

    def add_runs(self, specs: list[RunSpec], wave: int = 0) -> list[RunSpec]:
        """Record specs in the plan and write their run directories; returns those that were new."""
        with self.lock():
            return self._add_runs(specs, wave)

    def _add_runs(self, specs: list[RunSpec], wave: int) -> list[RunSpec]:
        entries = self.planned()
        known = {entry["run_id"] for entry in entries}
        new = []
        for spec in specs:
            if spec.run_id in known:
                continue
            known.add(spec.run_id)
            run_dir = self.run(spec.run_id)
            if not run_dir.spec_file.exists():
                run_dir.write_spec(spec)
            entries.append({"run_id": spec.run_id, "budget": spec.budget, "wave": wave, "role": spec.role})
            new.append(spec)
        atomic_write_json(self.plan_file, {"runs": entries})
        return new

    def run(self, run_id: str) -> RunDir:
        if not is_run_id(run_id):
            raise UserError(f"{run_id!r} is not a run id (12 hex digits); {_REPAIR}")
        return RunDir(self.runs_dir / run_id)

    def runs(self) -> list[RunDir]:
        return [self.run(entry["run_id"]) for entry in self.planned()]


_REPAIR = "the plan was edited or corrupted: restore plan.json from a backup, or plan again into a new --out"


def _is_budget(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
