"""W&B never costs a training run: no key, a backend that fails mid-run, a run that raises."""

from __future__ import annotations

import logging

import pytest

from models.config import TrainOptions
from models.train import train
from sweep.launch.job import run_one
from sweep.rundir import RunDir
from tests.unit.models.test_train import tiny_spec
from tests.wandb_offline import finished_records, go_offline


def test_online_without_an_api_key_trains_unlogged_with_one_warning(tmp_path, monkeypatch, caplog):
    go_offline(monkeypatch, tmp_path)
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc: no key anywhere
    monkeypatch.delenv("NETRC", raising=False)
    spec = tiny_spec()
    with caplog.at_level(logging.WARNING):
        result = train(spec, RunDir(tmp_path / spec.run_id), TrainOptions(threads=1, wandb_mode="online"))
    assert result["loss"] > 0
    (warning,) = [r.getMessage() for r in caplog.records if "W&B" in r.getMessage()]
    assert f"run {spec.run_id} not logged: no API key" in warning
    assert not list(tmp_path.rglob("*.wandb"))  # nothing was started


def test_a_wandb_failure_mid_run_is_a_warning_and_the_run_finishes(tmp_path, monkeypatch, caplog):
    go_offline(monkeypatch, tmp_path)
    import wandb

    def broken(*args, **kwargs):
        raise RuntimeError("W&B backend went away")

    monkeypatch.setattr(wandb.sdk.wandb_run.Run, "log", broken)
    spec = tiny_spec()
    with caplog.at_level(logging.WARNING):
        result = train(spec, RunDir(tmp_path / spec.run_id), TrainOptions(threads=1, wandb_mode="offline"))
    assert result["loss"] > 0 and wandb.run is None
    (warning,) = [r.getMessage() for r in caplog.records if "W&B" in r.getMessage()]
    assert "RuntimeError: W&B backend went away" in warning and "it trains on" in warning


@pytest.mark.parametrize("stop", [lambda: True], ids=["interrupted"])
def test_a_run_that_raises_closes_its_wandb_run_as_failed(tmp_path, monkeypatch, stop):
    go_offline(monkeypatch, tmp_path)
    import wandb

    spec = tiny_spec()
    run = RunDir(tmp_path / spec.run_id)
    run.write_spec(spec)
    assert run_one(run, TrainOptions(threads=1, wandb_mode="offline"), "test", stop) == "queued"  # preempted
    assert wandb.run is None  # the next run of this process starts a W&B run of its own
    (log,) = run.path.glob("wandb/offline-run-*/run-*.wandb")
    assert finished_records(log)[-1].exit.exit_code == 1
