"""Every bad input: one clear line on stderr, exit code 2, and nothing that existed is changed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.conftest import sweep_cli


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


@pytest.fixture
def planned(tmp_path) -> Path:
    out = tmp_path / "planned"
    assert sweep_cli("plan", "sweep=smoke", "--out", out).returncode == 0
    return out


def assert_user_error(result, *words):
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0]


@pytest.mark.parametrize(
    "override, words",
    [
        ("foo=1", ["foo"]),
        ("sweep=nope", ["sweep/nope"]),
        ("sweep.budgets=[1e3]", ["too small"]),
        ("sweep.budgets=[-1e12]", ["positive"]),
        ("sweep.budgets=[nan]", ["positive"]),
        ("train.lr=0", ["train.lr"]),
        ("fit.forms=[kaplan_n]", ["fit.forms", "chinchilla"]),
        ("fit.forms=[chinchilla,kaplan]", ["fit.forms", "kaplan_d"]),
        ("launcher.gpus=[-1]", ["launcher.gpus"]),
        ("fit.seed_noise=-0.1", ["fit.seed_noise"]),
    ],
)
def test_bad_plan_overrides_leave_an_existing_sweep_untouched(planned, override, words):
    before = snapshot(planned)
    assert_user_error(sweep_cli("plan", "sweep=smoke", override, "--out", planned), *words)
    assert snapshot(planned) == before


def test_replanning_with_another_config_is_refused(planned):
    before = snapshot(planned)
    assert_user_error(sweep_cli("plan", "sweep=smoke", "sweep.sizes_per_budget=4", "--out", planned), "another config")
    assert snapshot(planned) == before


@pytest.mark.parametrize("command", ["launch", "status", "wait", "collect", "fit", "propose", "cancel", "backtest"])
def test_missing_sweep_directory(tmp_path, command):
    assert_user_error(sweep_cli(command, tmp_path / "nowhere"), "does not exist")


@pytest.mark.parametrize("command", ["launch", "status", "collect", "fit"])
def test_a_directory_that_is_not_a_sweep(tmp_path, command):
    (tmp_path / "notes.txt").write_text("mine")
    assert_user_error(sweep_cli(command, tmp_path), "not a sweep directory")
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_plan_refuses_to_write_into_a_foreign_directory(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    assert_user_error(sweep_cli("plan", "sweep=smoke", "--out", tmp_path), "not a sweep directory")
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("compute", ["-5", "0", "inf", "nan", "1e36"])
def test_non_positive_or_non_finite_compute(planned, compute):
    assert_user_error(sweep_cli("propose", planned, "--compute", compute), "--compute")


def test_fitting_fewer_points_than_parameters(tmp_path):
    csv = tmp_path / "few.csv"
    csv.write_text("N,D,loss\n1e6,1e9,3.0\n2e6,1e9,2.9\n4e6,1e9,2.8\n8e6,1e9,2.7\n")
    assert_user_error(sweep_cli("fit", csv), "at least 6")


def test_fit_csv_with_bad_values_or_columns(tmp_path):
    csv = tmp_path / "bad.csv"
    csv.write_text("N,D,loss\n" + "".join(f"{n},1e9,3.0\n" for n in (1e6, 2e6, -1, 4e6, 5e6, 6e6, 7e6)))
    assert_user_error(sweep_cli("fit", csv), "'N'", "line 4 (-1)")
    assert_user_error(sweep_cli("fit", csv, "--loss-col", "nll"), "nll")
    assert_user_error(sweep_cli("fit", tmp_path / "none.csv"), "does not exist")


def test_import_of_bad_rows_writes_nothing(tmp_path, planned):
    csv = tmp_path / "bad.csv"
    csv.write_text("N,C,loss\n1e6,1e15,3.0\n2e6,1e15,inf\n")
    assert_user_error(sweep_cli("import", csv, "--into", tmp_path / "new"), "'loss'", "line 3 (inf)")
    assert not (tmp_path / "new").exists()
    before = snapshot(planned)
    assert_user_error(sweep_cli("import", csv, "--into", planned), "line 3")
    assert snapshot(planned) == before


def test_backtest_holding_out_too_many_budgets(tmp_path):
    csv = tmp_path / "runs.csv"
    csv.write_text("N,C,loss\n" + "".join(f"{n},{c},3.0\n" for c in (1e15, 1e16, 1e17) for n in (1e6, 2e6, 4e6)))
    assert_user_error(sweep_cli("backtest", csv, "--holdout-top", "2"), "hold out between 1 and 1")


def test_fitting_a_sweep_with_no_finished_runs(planned):
    assert sweep_cli("collect", planned).returncode == 0
    assert_user_error(sweep_cli("fit", planned), "no finished runs")


def test_unknown_executor(planned):
    assert_user_error(sweep_cli("launch", planned, "--executor", "cloud"), "cloud")


def test_train_without_a_run(tmp_path):
    assert_user_error(sweep_cli("train", "--out", tmp_path), "run.d_model")


def test_collect_skips_a_corrupt_result_and_ingests_the_rest(planned):
    from sweep.sweepdir import SweepDir
    from tests.unit.test_store import fake_done_run

    sweep = SweepDir(planned)
    runs = [fake_done_run(sweep.runs_dir, run.read_spec(), 3.0) for run in sweep.runs()]
    runs[0].result_file.write_text("{not json")
    result = sweep_cli("collect", planned, "--json")
    assert_user_error(result, runs[0].run_id, "result.json")
    import json

    ingested = json.loads(result.stdout)["ingested"]
    assert runs[0].run_id not in ingested and len(ingested) == len(runs) - 1
    assert runs[0].result_file.read_text() == "{not json"


@pytest.mark.parametrize(
    "command", ["plan", "launch", "status", "wait", "collect", "fit", "propose", "train", "run", "cancel"]
)
def test_every_command_has_help_with_an_example(command):
    result = sweep_cli(command, "--help")
    assert result.returncode == 0 and "Example" in result.stdout


@pytest.mark.parametrize(
    "overrides, words",
    [
        (["data=tokens"], ["data.path"]),
        (["data=tokens", "data.path=/nowhere"], ["train.bin"]),
        (["data.path=/no/such/corpus"], ["does not exist"]),
    ],
)
def test_data_that_is_not_there(tmp_path, overrides, words):
    assert_user_error(sweep_cli("plan", "sweep=smoke", *overrides, "--out", tmp_path / "s"), *words)
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("command", ["status", "launch", "collect", "fit", "propose", "cancel", "wait"])
def test_an_overlong_sweep_path_is_one_line(tmp_path, command):
    for path in (tmp_path / ("a" * 300), tmp_path / ("a/" * 2100)):
        assert_user_error(sweep_cli(command, path), "too long")


def test_backtest_of_too_few_budgets_says_how_many_it_needs(tmp_path):
    csv = tmp_path / "runs.csv"
    csv.write_text("N,C,loss\n" + "".join(f"{n},{c},3.0\n" for c in (1e15, 1e16) for n in (1e6, 2e6, 4e6)))
    for holdout in ("1", "0", "99"):
        assert_user_error(sweep_cli("backtest", csv, "--holdout-top", holdout), "at least 3 budgets", "has 2")
