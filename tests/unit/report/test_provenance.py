from __future__ import annotations

import json
import subprocess
from datetime import datetime, timedelta, timezone
from importlib import metadata
from pathlib import Path

import pytest

from sweep.report.provenance import PACKAGES, SOURCE_DIR, git_commit, provenance, versions
from tests.conftest import REPO


def git(cwd: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def checkout(tmp_path) -> Path:
    """A git checkout with one commit, holding a package directory."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "code.py").write_text("x = 1\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "first")
    return tmp_path


def test_the_commit_is_the_checkouts_head_and_dirty_once_a_file_changes(checkout):
    head = git(checkout, "rev-parse", "HEAD")
    assert git_commit(checkout / "pkg") == head
    (checkout / "pkg" / "code.py").write_text("x = 2\n")
    assert git_commit(checkout / "pkg") == f"{head}-dirty"


def test_a_package_the_checkout_does_not_track_has_no_commit(checkout):
    installed = checkout / ".venv" / "site-packages" / "pkg"  # a venv inside the user's own repository
    installed.mkdir(parents=True)
    (installed / "__init__.py").write_text("")
    (checkout / ".gitignore").write_text(".venv/\n")
    assert git_commit(installed) == "unknown"


def test_the_commit_is_unknown_outside_a_checkout_or_without_git(tmp_path, checkout, monkeypatch):
    outside = tmp_path / "no-git"
    outside.mkdir()
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # git must not find a checkout above tmp_path
    assert git_commit(outside) == "unknown"
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no git on the PATH
    assert git_commit(checkout / "pkg") == "unknown"


def test_the_project_reports_the_commit_it_runs_from():
    if not (REPO / ".git").exists() or SOURCE_DIR.parent != REPO:
        pytest.skip("the package does not run from this checkout")
    head = git(REPO, "rev-parse", "HEAD")
    assert git_commit(SOURCE_DIR) in (head, f"{head}-dirty")


def test_versions_name_python_and_every_package():
    found = versions()
    assert set(found) == {"python", *PACKAGES}
    assert found["scaling-sweep"] == metadata.version("scaling-sweep")
    assert found["numpy"] == metadata.version("numpy")
    assert found["python"].count(".") == 2


def test_a_record_holds_the_config_the_runs_and_the_utc_date(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("sweep:\n  kind: isoflop  # <script>\n")
    record = provenance(config, ["b2", "a1"])
    assert record.config == config.read_text()
    assert record.run_ids == ["a1", "b2"]
    made = datetime.fromisoformat(record.date)
    assert made.utcoffset() == timedelta(0)
    assert abs(datetime.now(timezone.utc) - made) < timedelta(minutes=1)
    assert json.loads(json.dumps(record.to_dict())) == {
        "config": record.config, "versions": record.versions, "commit": record.commit, "date": record.date,
        "run_ids": ["a1", "b2"],
    }  # fmt: skip


def test_slurm_setup_lines_are_never_shown(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("launcher:\n  slurm:\n    partition: gpu\n    setup:\n    - export HF_TOKEN=hf_secret\n")
    shown = provenance(config, []).config
    assert "hf_secret" not in shown and "partition: gpu" in shown and "<1 lines not shown>" in shown
