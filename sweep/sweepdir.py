"""The sweep directory: the resolved config, the plan, one directory per run, the store, fits and
proposals. Everything a later command needs is read back from here."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sweep.config import Config, compose, to_yaml
from sweep.errors import UserError
from sweep.rundir import RunDir, atomic_write_json, atomic_write_text
from sweep.spec import RunSpec


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
        if not sweep.path.is_dir():
            raise UserError(f"sweep directory {path} does not exist; create one with `sweep plan --out {path}`")
        if not sweep.plan_file.is_file() or not sweep.config_file.is_file():
            raise UserError(f"{path} is not a sweep directory (no plan.json/config.yaml); make one with `sweep plan`")
        return sweep

    @classmethod
    def create(cls, path: Path, config: Config) -> SweepDir:
        """A new sweep directory, or the same one again: an existing plan keeps its runs."""
        sweep = cls(Path(path))
        if sweep.path.exists() and any(sweep.path.iterdir()) and not sweep.plan_file.is_file():
            raise UserError(f"{path} exists and is not a sweep directory; choose an empty or new --out")
        text = to_yaml(config)
        if sweep.config_file.is_file() and sweep.config_file.read_text() != text:
            raise UserError(
                f"{path} holds a sweep planned with another config; plan into a new --out, "
                "or repeat the overrides it was planned with"
            )
        sweep.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(sweep.config_file, text)
        return sweep

    def config(self) -> Config:
        return compose(config_file=self.config_file)

    def planned(self) -> list[dict]:
        if not self.plan_file.is_file():
            return []
        return json.loads(self.plan_file.read_text())["runs"]

    def add_runs(self, specs: list[RunSpec], wave: int = 0) -> list[RunSpec]:
        """Record specs in the plan and write their run directories; returns those that were new."""
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
            entries.append({"run_id": spec.run_id, "budget": spec.budget, "wave": wave})
            new.append(spec)
        atomic_write_json(self.plan_file, {"runs": entries})
        return new

    def run(self, run_id: str) -> RunDir:
        return RunDir(self.runs_dir / run_id)

    def runs(self) -> list[RunDir]:
        return [self.run(entry["run_id"]) for entry in self.planned()]
