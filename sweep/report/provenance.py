"""Where a report's numbers came from: the sweep's config, the package versions, the code's commit, the date."""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import yaml

from sweep.config import shareable
from sweep.provenance import SOURCE_DIR, git_commit

PACKAGES = ("scaling-sweep", "torch", "numpy", "scipy", "pandas", "matplotlib", "hydra-core", "submitit", "wandb")


@dataclass(frozen=True)
class Provenance:
    config: str  # the sweep's config.yaml, as written (less launcher.slurm.setup: see shown_config)
    versions: dict[str, str]  # package -> version ("not installed" where it is not), python among them
    commit: str  # the git commit the package runs from, "-dirty" appended if its tree has changes; or "unknown"
    date: str  # when the report was made, UTC ISO 8601
    run_ids: list[str]  # the runs the fit used

    def to_dict(self) -> dict:
        return asdict(self)


def provenance(config_file: Path, run_ids: list[str]) -> Provenance:
    return Provenance(
        config=shown_config(config_file.read_text()), versions=versions(), commit=git_commit(SOURCE_DIR),
        date=datetime.now(timezone.utc).isoformat(timespec="seconds"), run_ids=sorted(run_ids),
    )  # fmt: skip


def shown_config(text: str) -> str:
    """The config as written, unless it holds SLURM setup lines: then without them (sweep.config.shareable)."""
    saved = yaml.safe_load(text)
    shown = shareable(saved)
    return text if shown is saved else yaml.safe_dump(shown, sort_keys=False)


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found
