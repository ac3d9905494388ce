"""Bad CSV files for fit, backtest and import: one clear line naming the column and the first bad
lines, exit 2, and nothing written; then random CSVs (hypothesis) held to the same contract."""

from __future__ import annotations

import io
import subprocess
import sys
import uuid
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sweep import cli
from tests.conftest import sweep_cli
from tests.e2e.test_bad_input import assert_user_error, planned, snapshot  # noqa: F401 (planned: a fixture)

SIZES = (1e6, 2e6, 4e6, 8e6)
GOOD_ROWS = "".join(f"{n:g},{c:g},{3.5 - 0.1 * i - c / 1e16}\n" for c in (1e15, 1e16) for i, n in enumerate(SIZES))


def write(tmp_path: Path, text: str | bytes, name: str = "runs.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_text_in_n_when_only_c_is_given(tmp_path):
    csv = write(tmp_path, "N,C,loss\n" + GOOD_ROWS + "abc,1e15,3.0\n")
    for command in ("fit", "backtest"):
        assert_user_error(sweep_cli(command, csv), "'N'", "text", "line 10 (abc)")


def test_a_text_budget_column_is_refused_before_any_row_is_imported(tmp_path, planned):  # noqa: F811
    rows = "".join(f"{n:g},{c:g},3.0,{c:g}\n" for c in (1e15, 1e16, 1e17, 1e18, 1e19) for n in (1e6, 2e6, 4e6, 8e6))
    csv = write(tmp_path, "N,C,loss,budget\n" + rows + "1e6,1e20,3.0,big\n")
    assert_user_error(sweep_cli("import", csv, "--into", tmp_path / "new", "--budget-col", "budget"),
                      "'budget'", "line 22 (big)")  # fmt: skip
    assert not (tmp_path / "new").exists()
    before = snapshot(planned)
    assert_user_error(sweep_cli("import", csv, "--into", planned, "--budget-col", "budget"), "line 22")
    assert snapshot(planned) == before


@pytest.mark.parametrize("last, words", [("True", ["true/false", "8 rows"]), ("3.0", ["text", "line 9 (True)"])])
def test_booleans_are_not_numbers(tmp_path, last, words):
    losses = ["True"] * 7 + [last] if last == "True" else ["3.0"] * 7 + ["True"]
    csv = write(tmp_path, "N,D,loss\n" + "".join(f"{i + 1},1e9,{loss}\n" for i, loss in enumerate(losses)))
    assert_user_error(sweep_cli("fit", csv), "'loss'", *words)


@pytest.mark.parametrize("budget", ["-1e15", "inf", "0"])
def test_budgets_must_be_positive_and_finite(tmp_path, budget):
    budgets = [budget] + ["1e15"] * 3 + ["1e16"] * 4
    rows = [f"{line},{b}\n" for line, b in zip(GOOD_ROWS.splitlines(), budgets, strict=True)]
    csv = write(tmp_path, "N,C,loss,b\n" + "".join(rows))
    result = sweep_cli("import", csv, "--into", tmp_path / "s", "--budget-col", "b")
    assert_user_error(result, "'b'", "positive", f"line 2 ({float(budget):g})")
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    "text, words",
    [
        ("", ["empty"]),
        ("N,C,loss\n", ["header but no rows"]),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\xff\xfe\x80", ["not a readable CSV"]),
        ('{"runs": [{"N": 1e6}]}\n', ["no column 'N'"]),
    ],
)
def test_files_that_are_not_runs(tmp_path, text, words):
    csv = write(tmp_path, text)
    assert_user_error(sweep_cli("fit", csv), *words)
    assert_user_error(sweep_cli("import", csv, "--into", tmp_path / "s"), *words)
    assert not (tmp_path / "s").exists()


def test_a_first_row_longer_than_the_header_is_not_read_shifted(tmp_path):
    csv = write(tmp_path, "N,C,loss\n" + GOOD_ROWS.replace("\n", ",7\n", 1))
    assert_user_error(sweep_cli("fit", csv), "more fields than the header")


def test_c_far_from_six_n_d_is_refused_with_a_way_out(tmp_path):
    flops = (1e15, 1e15, 3e15)  # the third run's C counts 3x the 6 N D of its D
    rows = "".join(f"{n:g},{1e15 / (6 * n):g},{c:g},3.0\n" for n, c in zip(SIZES, flops, strict=False))
    csv = write(tmp_path, "N,D,C,loss\n" + rows)
    assert_user_error(sweep_cli("import", csv, "--into", tmp_path / "s"), "6 N D", "line 4 (C/6ND = 3)",
                      "non-embedding", "--c-col ''")  # fmt: skip
    assert not (tmp_path / "s").exists()
    assert sweep_cli("import", csv, "--into", tmp_path / "s", "--c-col", "").returncode == 0


def test_dropping_as_many_rows_as_there_are(tmp_path):
    csv = write(tmp_path, "N,C,loss\n" + GOOD_ROWS)
    assert_user_error(sweep_cli("fit", csv, "--drop-highest-loss", "8"), "between 0 and 7")


def test_csv_options_with_a_sweep_directory(planned):  # noqa: F811
    assert_user_error(sweep_cli("fit", planned, "--n-col", "params"), "CSV files only")


# --- random CSVs ------------------------------------------------------------------------------------


def run_in_process(*args) -> subprocess.CompletedProcess:
    """`sweep ARGS` in this process (a subprocess costs seconds of imports per example)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err), mock.patch.object(sys, "argv", ["sweep", *map(str, args)]):
        try:
            cli.main()
            code = 0
        except SystemExit as exc:
            code = exc.code or 0
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


PLAUSIBLE = st.floats(min_value=1e-3, max_value=1e12).map(repr)  # so that some files fit
CELLS = st.one_of(
    PLAUSIBLE,
    st.floats().map(repr),  # negatives, zero, nan, inf, huge
    st.sampled_from(["", "True", "False", "nan", "inf", "-inf", "-1", "0", "1e400", "1e-400", "abc"]),
    st.text(alphabet='ab ,."-1e', max_size=5),
)


@st.composite
def csv_files(draw) -> bytes:
    """Mostly the columns a fit needs (in any order, with others), each column clean or messy; now
    and then bytes that are not text."""
    if draw(st.integers(0, 19)) == 0:
        return draw(st.binary(max_size=40))
    columns = ["N", "loss", *draw(st.sampled_from([["D"], ["C"], ["D", "C"]]))] if draw(st.integers(0, 4)) else []
    columns += draw(st.lists(st.sampled_from(["N", "D", "C", "loss", "budget", "name", "x"]), max_size=3))
    columns = draw(st.permutations(list(dict.fromkeys(columns))))
    cells = [PLAUSIBLE if draw(st.integers(0, 3)) else CELLS for _ in columns]
    rows = [",".join(draw(cell) for cell in cells) for _ in range(draw(st.sampled_from([0, 1, 7, 9, 12])))]
    return ("\n".join([",".join(columns), *rows]) + "\n").encode()


CSV_OPTIONS = [("--budget-col", "budget"), ("--c-col", ""), ("--d-col", ""), ("--drop-highest-loss", "1"),
               ("--n-col", "x"), ("--loss-col", "")]  # fmt: skip


def options(choices: list[tuple[str, str]]):
    pairs = st.lists(st.sampled_from(choices), max_size=3, unique=True)
    return pairs.map(lambda chosen: [word for pair in chosen for word in pair])


def assert_success_or_one_error_line(result) -> None:
    assert result.returncode in (0, 2), (result.returncode, result.stderr)
    if result.returncode == 2:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A sweep with imported runs (random imports must leave it as it was, or add to it), and room."""
    root = tmp_path_factory.mktemp("random-csv")
    result = run_in_process("import", write(root, "N,C,loss\n" + GOOD_ROWS, "good.csv"), "--into", root / "sweep")
    assert result.returncode == 0, result.stderr
    return root


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=csv_files(), options=options([*CSV_OPTIONS, ("--name-col", "name")]))
def test_random_csvs_import_or_fail_with_one_line_and_write_nothing(workdir, text, options):
    csv = write(workdir, text, f"{uuid.uuid4().hex}.csv")
    fresh = workdir / uuid.uuid4().hex
    result = run_in_process("import", csv, "--into", fresh, *options)
    assert_success_or_one_error_line(result)
    assert result.returncode == 0 or not fresh.exists()
    before = snapshot(workdir / "sweep")
    result = run_in_process("import", csv, "--into", workdir / "sweep", *options)
    assert_success_or_one_error_line(result)
    assert result.returncode == 0 or snapshot(workdir / "sweep") == before


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=csv_files(), options=options(CSV_OPTIONS))
def test_random_csvs_fit_or_fail_with_one_line(workdir, text, options):
    csv = write(workdir, text, f"{uuid.uuid4().hex}.csv")
    assert_success_or_one_error_line(run_in_process("fit", csv, *options, "fit.bootstrap=0", "--json"))


def test_the_cli_itself_keeps_the_contract_on_a_bad_file(tmp_path):
    """The in-process runs above stand for the real command: one subprocess check that they agree."""
    csv = write(tmp_path, "N,C,loss\n" + GOOD_ROWS + "abc,1e15,True\n")
    assert run_in_process("fit", csv).stderr == sweep_cli("fit", csv).stderr
