"""The command line itself: usage errors, paths, config files, --version, and train's exit code."""

from __future__ import annotations

import json
from importlib import metadata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import sweep_cli
from tests.e2e.test_bad_input import assert_user_error


@pytest.mark.parametrize(
    "args, words",
    [
        (["plan", "--bogus"], ["--bogus"]),
        (["--bogus"], ["--bogus"]),
        (["launch"], ["Missing argument"]),
        (["propose", "sweeps/x", "--compute", "abc"], ["--compute"]),
        (["nocmd"], ["nocmd"]),
        (["launch", "sweeps/x", "--executor", "cloud"], ["--executor", "cloud"]),
        (["plan", "--out"], ["--out"]),
    ],
)
def test_usage_errors_are_one_line(args, words):
    assert_user_error(sweep_cli(*args), *words)


def test_help_still_works():
    result = sweep_cli("--help")
    assert result.returncode == 0 and "plan" in result.stdout and "--version" in result.stdout
    bare = sweep_cli()
    assert bare.returncode == 0 and bare.stdout == result.stdout


def test_version():
    result = sweep_cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"sweep {metadata.version('scaling-sweep')}\n"


def test_train_exits_non_zero_when_its_run_fails(tmp_path):
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    for name in ("train.bin", "val.bin"):
        (tokens / name).write_bytes(b"\x01\x00\x02\x00")  # two tokens: shorter than one window
    args = ["train", "data=tokens", f"data.path={tokens}", "run.d_model=16", "run.n_layers=1", "run.tokens=1e4"]
    result = sweep_cli(*args, "--out", tmp_path / "out", "--json")
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert json.loads(result.stdout)["state"] == "failed"


def bad_paths(tmp_path):
    (tmp_path / "file").write_text("mine")
    return {
        "a file": (tmp_path / "file", "not a directory"),
        "under a file": (tmp_path / "file" / "sub", "not a directory"),
        "a long name": (tmp_path / ("n" * 300), "300 bytes"),
        "a long path": (tmp_path.joinpath(*["d" * 100] * 42), "bytes long"),
    }


@pytest.mark.parametrize(
    "command, case",
    [(["plan", "sweep=smoke", "--out"], case) for case in ("a file", "under a file", "a long name", "a long path")]
    + [(["run", "sweep=smoke", "--out"], "a file"), (["train", "--out"], "a long name"), (["import"], "a file")],
)
def test_an_output_path_that_cannot_be_a_directory(tmp_path, command, case):
    path, words = bad_paths(tmp_path)[case]
    args = [*command, path] if command != ["import"] else ["import", tmp_path / "runs.csv", "--into", path]
    assert_user_error(sweep_cli(*args), "--into" if command == ["import"] else "--out", words)
    assert [p.name for p in tmp_path.iterdir()] == ["file"] and (tmp_path / "file").read_text() == "mine"


def test_a_config_file_with_a_python_tag_runs_nothing(tmp_path):
    marker = tmp_path / "executed"
    config = tmp_path / "evil.yaml"
    config.write_text(f'run:\n  d_model: !!python/object/apply:os.system ["touch {marker}"]\n')
    assert_user_error(sweep_cli("train", "--config", config, "--out", tmp_path / "out"), "tag")
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_a_missing_config_file(tmp_path):
    assert_user_error(sweep_cli("train", "--config", tmp_path / "nope.yaml", "--out", tmp_path / "o"), "nope.yaml")


KEYS = ["train.beta1", "sweep.seeds", "fit.bootstrap", "model.max_layers", "sweep.sizes_per_budget", "model"]
VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.lists(st.integers(min_value=-5, max_value=5), max_size=3).map(lambda xs: f"[{','.join(map(str, xs))}]"),
    st.sampled_from(["null", "abc", "${oc.env:SWEEP_UNSET}", "[]", "''"]),
)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(KEYS), value=VALUES)
def test_generated_plan_overrides_plan_or_fail_in_one_line(tmp_path, key, value):
    out = tmp_path / f"s{abs(hash((key, value)))}"
    result = sweep_cli("plan", "sweep=smoke", f"{key}={value}", "--out", out)
    if result.returncode != 0:
        assert_user_error(result)
        assert not out.exists()
