from __future__ import annotations

import json
import subprocess
from dataclasses import fields
from pathlib import Path

import pytest

import sweep
from sweep import provenance
from sweep.config import compose
from sweep.provenance import SOURCE_DIR, code_version, git_commit, origin
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


@pytest.fixture
def uncached():
    """code_version() computed afresh in the test, and the process's own afterwards."""
    code_version.cache_clear()
    yield
    code_version.cache_clear()


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


def test_the_code_version_is_the_version_and_the_short_commit_of_a_checkout(checkout, monkeypatch, uncached):
    monkeypatch.setattr(provenance, "SOURCE_DIR", checkout / "pkg")
    monkeypatch.setattr(sweep, "__version__", "0.1.0")
    head = git(checkout, "rev-parse", "HEAD")
    assert code_version() == f"0.1.0+g{head[:7]}"
    (checkout / "pkg" / "code.py").write_text("x = 2\n")
    code_version.cache_clear()
    assert code_version() == f"0.1.0+g{head[:7]}-dirty"
    monkeypatch.setattr(sweep, "__version__", "0+unknown")  # a version with a local part already
    code_version.cache_clear()
    assert code_version() == f"0+unknown.g{head[:7]}-dirty"


def test_the_code_version_is_the_bare_version_outside_a_checkout(tmp_path, monkeypatch, uncached):
    installed = tmp_path / "site-packages" / "pkg"
    installed.mkdir(parents=True)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.setattr(provenance, "SOURCE_DIR", installed)
    monkeypatch.setattr(sweep, "__version__", "0.1.0")
    assert code_version() == "0.1.0"


def test_the_code_version_runs_git_once_per_process(checkout, monkeypatch, uncached):
    monkeypatch.setattr(provenance, "SOURCE_DIR", checkout / "pkg")
    calls = []
    monkeypatch.setattr(provenance, "git_commit", lambda source_dir: calls.append(source_dir) or "unknown")
    assert code_version() == code_version() == sweep.__version__
    assert calls == [checkout / "pkg"]


def test_an_origin_holds_the_sorted_unique_runs_the_fit_config_as_json_and_the_code_version():
    fit_config = compose(["fit.bootstrap=7", "fit.forms=[chinchilla]"]).fit
    made = origin(iter(["b2", "a1", "b2"]), fit_config)
    assert made.run_ids == ["a1", "b2"]
    assert made.fit_config["bootstrap"] == 7
    assert made.fit_config["counting"] == "non_embedding" and made.fit_config["forms"] == ["chinchilla"]
    assert made.code_version == code_version()
    assert json.loads(json.dumps(made.to_dict())) == {
        "run_ids": ["a1", "b2"], "fit_config": made.fit_config, "code_version": code_version(),
    }  # fmt: skip
    assert set(made.fit_config) == {f.name for f in fields(fit_config)}
