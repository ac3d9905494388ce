"""`sweep report DIR` as a user runs it: the files it writes, --json, and the input it refuses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sweep import api
from tests.conftest import sweep_cli
from tests.unit.report.sweep_with_curves import sweep_with_curves
from tests.unit.test_api import OVERRIDES


@pytest.fixture(scope="module")
def proposed(tmp_path_factory) -> Path:
    return sweep_with_curves(tmp_path_factory.mktemp("proposed") / "s")


@pytest.fixture
def sweep_dir(proposed, tmp_path) -> Path:
    """A copy of the proposed sweep that a test may change."""
    return Path(shutil.copytree(proposed, tmp_path / "s"))


def test_report_writes_the_page_the_figures_and_the_provenance(sweep_dir):
    result = sweep_cli("report", sweep_dir)
    assert result.returncode == 0, result.stderr
    out = sweep_dir / "report"
    assert f"report: {out / 'index.html'}" in result.stdout
    figures = sorted(p.stem for p in out.glob("*.png"))
    assert figures and sorted(p.stem for p in out.glob("*.svg")) == figures
    assert f"figures: {len(figures)} written" in result.stdout
    for name in figures:
        assert (out / f"{name}.png").read_bytes().startswith(b"\x89PNG")
        assert "<svg" in (out / f"{name}.svg").read_text()
    html = (out / "index.html").read_text()
    assert all(f'href="{name}.svg"' in html for name in figures)
    record = json.loads((out / "provenance.json").read_text())
    assert record["config"] == (sweep_dir / "config.yaml").read_text()
    assert sorted(record["run_ids"]) == sorted(api.finished_runs(sweep_dir)["run_id"])
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left behind


def test_report_json_is_one_document_naming_the_files(sweep_dir):
    result = sweep_cli("report", sweep_dir, "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert Path(payload["index"]) == sweep_dir / "report" / "index.html"
    assert payload["figures"] and all(Path(p).is_file() for p in payload["figures"])
    assert Path(payload["provenance"]).is_file() and isinstance(payload["skipped"], dict)


def test_a_new_report_removes_the_figures_an_earlier_one_drew_and_no_longer_applies(sweep_dir):
    out = sweep_dir / "report"
    out.mkdir()
    for stale in ("lr.png", "lr.svg"):  # this sweep has no LR grid: an earlier one of that name is stale
        (out / stale).write_text("an earlier report's figure")
    for own in ("notes.txt", "my-slide.png"):
        (out / own).write_text("the user's")
    assert sweep_cli("report", sweep_dir).returncode == 0
    assert not (out / "lr.png").exists() and not (out / "lr.svg").exists()
    assert (out / "notes.txt").read_text() == (out / "my-slide.png").read_text() == "the user's"


def test_fit_and_propose_point_to_the_report_but_a_csv_fit_does_not(sweep_dir, tmp_path):
    pointer = f"report: sweep report {sweep_dir}"
    for command in ("fit", "propose"):
        result = sweep_cli(command, sweep_dir)
        assert result.returncode == 0, result.stderr
        assert result.stdout.rstrip().endswith(pointer), command
    csv = tmp_path / "runs.csv"
    api.finished_runs(sweep_dir)[["N", "D", "loss"]].to_csv(csv, index=False)
    result = sweep_cli("fit", csv, "fit.bootstrap=0")
    assert result.returncode == 0, result.stderr
    assert "sweep report" not in result.stdout


def refused(*args) -> str:
    result = sweep_cli("report", *args)
    assert result.returncode == 2, result.stdout
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr and result.stdout == ""
    return result.stderr


def test_report_refuses_a_missing_sweep_one_without_finished_runs_and_a_report_file(tmp_path, sweep_dir):
    assert "does not exist" in refused(tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()

    planned, _ = api.plan(OVERRIDES, tmp_path / "planned")
    assert "no finished runs to report; launch and collect first" in refused(planned.path)
    api.collect(planned.path)  # a store, but nothing finished in it
    assert "no finished runs to report; launch and collect first" in refused(planned.path)
    assert not (planned.path / "report").exists()

    (sweep_dir / "report").write_text("not a directory")
    assert "is a file, not a directory" in refused(sweep_dir)
    assert (sweep_dir / "report").read_text() == "not a directory"


def test_report_has_help_with_an_example():
    result = sweep_cli("report", "--help")
    assert result.returncode == 0 and "Example: sweep report" in result.stdout
