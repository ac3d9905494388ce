"""Where a report's numbers came from: the sweep's config, the package versions, the code's commit, the date."""

from __future__ import annotations

import platform
import subprocess
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import yaml

import sweep
from sweep.config import shareable

PACKAGES = ("scaling-sweep", "torch", "numpy", "scipy", "pandas", "matplotlib", "hydra-core", "submitit", "wandb")
SOURCE_DIR = Path(sweep.__file__).resolve().parent  # the package's own directory
GIT_TIMEOUT_S = 10


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


def git_commit(source_dir: Path) -> str:
    """HEAD of the git checkout that holds `source_dir`, "-dirty" if its tracked or new files changed;
    "unknown" where no checkout tracks it (an installed wheel, even in a venv inside some other repository)
    or git is missing."""
    head = _git(source_dir, "rev-parse", "HEAD")
    if head is None or _git(source_dir, "ls-files", "--error-unmatch", "__init__.py") is None:
        return "unknown"  # no checkout, or one that does not track the package (a venv inside a user's repo)
    changes = _git(source_dir, "status", "--porcelain")
    return head + ("-dirty" if changes else "") if changes is not None else head


def _git(cwd: Path, *args: str) -> str | None:
    """git's output, stripped; None if git is missing, fails or hangs."""
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=GIT_TIMEOUT_S, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()
