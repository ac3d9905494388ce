"""The fit and proposal logged to W&B runs of their own, read back from offline runs' files."""

import json
import logging
from types import SimpleNamespace

import pytest
from PIL import Image

from sweep import api
from sweep.config import compose
from sweep.rundir import RunDir
from sweep.wandb_log import FIT_COLUMNS, POWER_LAWS, PREDICTION_COLUMNS, fit_rows, log_fit, prediction_rows
from tests.unit.test_api import OVERRIDES, fake_train
from tests.wandb_offline import OfflineRun, go_offline, read_runs


@pytest.fixture
def collected(tmp_path, monkeypatch):
    """A sweep named `s` with wandb.mode=offline and a fit.forms form, its runs trained (fake results, three-point
    curves)."""
    go_offline(monkeypatch, tmp_path / "wandb-home")
    overrides = [o for o in OVERRIDES if not o.startswith("fit.forms=")] + ["fit.forms=[chinchilla,compute]"]
    sweep, planned = api.plan([*overrides, "wandb.mode=offline"], tmp_path / "s")
    for run in planned:
        loss = fake_train(sweep.path, run.spec)
        tokens = [run.spec.tokens // 4, run.spec.tokens // 2, run.spec.tokens]
        RunDir(sweep.path / "runs" / run.spec.run_id).write_curve([
            {"step": i + 1, "tokens": d, "flops": d * run.flops_per_token, "train_loss": loss * (1 + 0.1 / (i + 1)),
             "eval_loss": loss * (1 + 0.1 / (i + 1)), "lr": 1e-3}
            for i, d in enumerate(tokens)
        ])  # fmt: skip
    api.collect(sweep.path)
    return sweep.path


def logged_table(run: OfflineRun, key: str) -> dict:
    [row] = [row for row in run.history if f"{key}.path" in row]
    return json.loads(run.file(row[f"{key}.path"]).read_text())


def test_fit_logs_its_parameters_with_intervals_and_the_report_figures(collected):
    report = api.fit(collected)
    [run] = read_runs(collected)
    assert (run.name, run.group, run.job_type) == ("s-fit", "s", "fit")
    assert run.config["fit"]["bootstrap"] == 8
    table = logged_table(run, "fit/parameters")
    assert table["columns"] == FIT_COLUMNS
    expected = fit_rows(report.to_dict())
    assert {row[0] for row in expected} == {"approach1", "approach2", "approach3", "compute"}
    assert [row[:2] for row in table["data"]] == [row[:2] for row in expected]
    assert [row[2:] for row in table["data"]] == [pytest.approx(row[2:]) for row in expected]
    assert run.summary["approach3/alpha"] == pytest.approx(report.parametric.law.alpha)
    assert run.summary["n_runs"] == report.n_runs
    [image] = [row for row in run.history if "figures/curves.path" in row]
    with Image.open(run.file(image["figures/curves.path"])) as png:
        assert png.width > 200 and png.height > 100
        assert len(png.getcolors(1 << 20)) > 10  # drawn, not blank


def test_propose_logs_the_target_its_predictions_and_warnings(collected):
    _, proposal = api.propose_target(collected, compute=3e12)
    [run] = read_runs(collected)
    assert (run.name, run.group, run.job_type) == ("s-propose", "s", "propose")
    proposed = proposal.to_dict()
    predictions = logged_table(run, "proposal/predictions")
    assert predictions["columns"] == PREDICTION_COLUMNS
    assert [row[0] for row in predictions["data"]] == [p.approach for p in proposal.predictions]
    assert [row[1:] for row in predictions["data"]] == [pytest.approx(row[1:]) for row in prediction_rows(proposed)]
    assert logged_table(run, "proposal/warnings")["data"] == [[w] for w in proposal.warnings]
    assert run.summary["target/compute"] == 3e12
    assert run.summary["target/d_model"] == proposal.shape["d_model"]
    assert run.summary["target/tokens"] == proposal.tokens
    assert run.summary["target/run_id"] == proposal.run_id
    assert "figures/curves.path" in {key for row in run.history for key in row}


def test_a_wandb_failure_is_one_warning_and_never_costs_the_fit(collected, monkeypatch, caplog):
    import wandb

    def refuse(**_):
        raise wandb.errors.CommError("could not reach api.wandb.ai\nretrying")

    monkeypatch.setattr(wandb, "init", refuse)
    with caplog.at_level(logging.WARNING, logger="sweep.wandb_log"):
        report = api.fit(collected)
    assert report.parametric is not None and (collected / "fits" / "fit.json").exists()
    [warning] = caplog.messages
    assert (
        warning == f"W&B: the fit was not logged (CommError: could not reach api.wandb.ai); it is saved in {collected}"
    )


def test_nothing_goes_to_wandb_when_it_is_disabled(collected, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")  # overrides the sweep's wandb.mode=offline
    api.fit(collected)
    assert not (collected / "wandb").exists()


def test_a_parameter_without_an_interval_is_logged_with_empty_bounds(tmp_path, monkeypatch):
    go_offline(monkeypatch, tmp_path)
    law = {"coefficient": 2.0, "exponent": 0.5, "coefficient_interval": None, "exponent_interval": [0.4, 0.6]}
    fit = {"n_runs": 3, "counting": "non_embedding", "notes": [], "approach2": dict.fromkeys(POWER_LAWS, law)}
    log_fit(tmp_path / "s", compose(["wandb.mode=offline"]), SimpleNamespace(to_dict=lambda: fit), with_figures=False)
    [run] = read_runs(tmp_path / "s")
    assert logged_table(run, "fit/parameters")["data"][:2] == [
        ["approach2", "N_star.coefficient", 2.0, None, None],
        ["approach2", "N_star.exponent", 0.5, 0.4, 0.6],
    ]


def test_figures_are_left_out_when_overrides_change_the_fit_they_would_not_show(collected):
    api.fit(collected, ["fit.bootstrap=6"])
    [run] = read_runs(collected)
    assert run.config["fit"]["bootstrap"] == 6
    logged = {key for row in run.history for key in row}
    assert "fit/parameters.path" in logged and not any(key.startswith("figures/") for key in logged)
    assert json.loads((collected / "fits" / "fit.json").read_text())["approach3"]["bootstrap"] == 6  # not refitted


def test_the_logged_config_leaves_out_slurm_setup_lines(collected):
    api.fit(collected, ["launcher.slurm.setup=['export HF_TOKEN=hf_secret']"])
    [run] = read_runs(collected)
    assert run.config["launcher"]["slurm"]["setup"] == ["<1 lines not shown>"]
    assert "hf_secret" not in json.dumps(run.config)


def test_online_without_an_api_key_logs_nothing_and_says_so(collected, monkeypatch, caplog, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc: no key anywhere
    monkeypatch.delenv("NETRC", raising=False)
    with caplog.at_level(logging.WARNING):
        report = api.fit(collected)
    assert report.parametric is not None and not read_runs(collected)
    (warning,) = [r.getMessage() for r in caplog.records if "W&B" in r.getMessage()]
    assert "the fit was not logged (no API key" in warning
