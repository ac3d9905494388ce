"""Where a recorded number came from: the runs fitted, the fit config, and the code that fitted them."""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import sweep
from sweep.config import FitConfig, to_dict

SOURCE_DIR = Path(sweep.__file__).resolve().parent  # the package's own directory
GIT_TIMEOUT_S = 10
SHORT_COMMIT = 7  # hex digits of the commit in a code version, as `git describe` shows it


@dataclass(frozen=True)
class Origin:
    run_ids: list[str]  # the runs the fit used, sorted
    fit_config: dict  # the config's fit section, enums as their values
    code_version: str  # code_version() of the process that fitted

    def to_dict(self) -> dict:
        return asdict(self)


def origin(run_ids: Iterable[str], fit_config: FitConfig) -> Origin:
    return Origin(run_ids=sorted(set(run_ids)), fit_config=to_dict(fit_config), code_version=code_version())


@functools.cache
def code_version() -> str:
    """The package's version, with the commit it runs from where a git checkout tracks it:
    "0.1.0+g1a2b3c4", "0.1.0+g1a2b3c4-dirty" when the tree has changes; else just "0.1.0"."""
    commit = git_commit(SOURCE_DIR)
    if commit == "unknown":
        return sweep.__version__
    head, dirty, _ = commit.partition("-dirty")
    separator = "." if "+" in sweep.__version__ else "+"  # a version may already have a local part: "0+unknown"
    return f"{sweep.__version__}{separator}g{head[:SHORT_COMMIT]}{dirty}"


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
