"""Corrupted sweep state: each is one error line that names the file and the way back, and the
way back works. The run directories are the source of truth; the store can be rebuilt from them."""

from __future__ import annotations

import json

import pytest

from tests.conftest import sweep_cli
from tests.e2e.test_bad_input import assert_user_error, snapshot


@pytest.fixture
def collected(tmp_path):
    out = tmp_path / "s"
    assert sweep_cli("plan", "sweep=smoke", "launcher.trainer=noop", "fit.bootstrap=10", "--out", out).returncode == 0
    assert sweep_cli("launch", out, "--executor", "debug").returncode == 0
    assert sweep_cli("collect", out).returncode == 0
    return out


@pytest.mark.parametrize("damage", ["garbage", "half", "pages", "directory"])
def test_a_corrupt_store_is_one_line_and_rebuild_brings_it_back(collected, damage):
    db = collected / "results.db"
    good = json.loads(sweep_cli("fit", collected, "--json").stdout)
    if damage == "garbage":
        db.write_bytes(b"not a database" * 100)
    elif damage == "pages":  # the schema page intact, every table's pages garbage
        db.write_bytes(db.read_bytes()[:4096] + b"\xff" * (db.stat().st_size - 4096))
    elif damage == "directory":
        db.unlink()
        db.mkdir()
    else:
        db.write_bytes(db.read_bytes()[: db.stat().st_size // 2])
    runs = snapshot(collected / "runs")
    for command in ("status", "collect", "fit", "propose"):
        assert_user_error(sweep_cli(command, collected), "results.db")
    rebuilt = sweep_cli("collect", "--rebuild", collected, "--json")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert set(json.loads(rebuilt.stdout)["ingested"].values()) == {"done"}
    assert len(list(collected.glob("results.db.*.bak"))) == 1  # the damaged file is kept
    assert snapshot(collected / "runs") == runs
    again = json.loads(sweep_cli("fit", collected, "--json").stdout)
    assert again["approach3"]["E"] == good["approach3"]["E"] and again["n_runs"] == good["n_runs"]


@pytest.mark.parametrize("text", ["{garbage", '{"runs": [{"run_id": "../../x", "budget": 1}]}', ""])
def test_a_corrupt_plan_is_one_line(collected, text):
    (collected / "plan.json").write_text(text)
    for command in ("status", "launch", "collect", "wait", "cancel"):
        assert_user_error(sweep_cli(command, collected), "plan.json")
    assert not (collected.parent.parent / "x").exists()


def test_a_corrupt_config_is_one_line(collected):
    (collected / "config.yaml").write_text("{{{")
    for command in ("launch", "fit", "propose"):
        assert_user_error(sweep_cli(command, collected), "config.yaml", "restore it")


def test_fitting_a_sweep_never_collected_says_to_collect(tmp_path):
    out = tmp_path / "p"
    assert sweep_cli("plan", "sweep=smoke", "--out", out).returncode == 0
    assert_user_error(sweep_cli("fit", out), "sweep collect")
    assert not (out / "results.db").exists()
