"""W&B runs as our runs and curves: what our training runs log imports back (read from an offline run)."""

import math
from dataclasses import replace

import pandas as pd
import pytest

from models.config import TrainOptions
from models.train import train
from sweep import api, wandb_import
from sweep.csvinput import CsvColumns
from sweep.rundir import RunDir
from sweep.store import Store
from sweep.wandb_import import WandbRun, convert
from tests.unit.models.test_train import tiny_spec
from tests.wandb_offline import go_offline, read_runs


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """A tiny real run trained with W&B offline, as an import reads it back: (spec, result, curve, WandbRun)."""
    tmp_path = tmp_path_factory.mktemp("wandb")
    with pytest.MonkeyPatch.context() as monkeypatch:
        go_offline(monkeypatch, tmp_path)
        spec = tiny_spec("run.budget=4e10")
        run = RunDir(tmp_path / "s" / "runs" / spec.run_id)
        result = train(spec, run, TrainOptions(threads=1, wandb_mode="offline", wandb_group="s"))
    [offline] = read_runs(run.path)
    wandb_run = WandbRun(offline.run_id, "finished", offline.summary, offline.config, offline.history)
    return spec, result, pd.read_csv(run.curve_file), wandb_run


def test_a_logged_run_converts_to_its_result_budget_and_curve(logged):
    spec, result, curve, run = logged
    imported = convert([run])
    assert imported.skipped == {}
    [row] = imported.table.to_dict("records")
    assert row.pop("name") == spec.run_id
    assert row == pytest.approx({"N": result["N"], "D": result["D"], "C": result["C"], "loss": result["loss"],
                                 "budget": spec.budget})  # fmt: skip
    pd.testing.assert_frame_equal(pd.DataFrame(imported.curves[spec.run_id]), curve, check_dtype=False)


def test_our_trunks_and_targets_are_skipped_as_never_fitted(logged):
    *_, run = logged
    as_roles = [replace(run, id=role, config={**run.config, "role": role}) for role in ("trunk", "target", "proxy")]
    imported = convert(as_roles)
    assert imported.skipped == {role: f"its role is {role}: only proxies are fitted" for role in ("trunk", "target")}
    assert list(imported.table["name"]) == ["proxy"]


def test_an_import_puts_the_run_and_its_curve_in_the_store(logged, tmp_path, monkeypatch):
    spec, result, curve, run = logged
    monkeypatch.setattr(wandb_import, "fetch_runs", lambda project: [run])  # the network call, and only it
    report = api.import_wandb("me/scaling", tmp_path / "imported")
    assert (report.rows, report.new) == (1, 1)
    with Store(report.sweep_dir / "results.db") as store:
        [stored] = store.runs().to_dict("records")
        curves = store.curves()
    assert stored["run_id"].startswith("import-") and stored["budget"] == spec.budget
    assert stored["loss"] == pytest.approx(result["loss"])
    assert curves["run_id"].unique().tolist() == [stored["run_id"]]
    assert curves["eval_loss"].tolist() == pytest.approx(curve["eval_loss"].tolist())
    again = api.import_wandb("me/scaling", tmp_path / "imported")
    assert (again.rows, again.new) == (1, 0)


def test_others_runs_are_read_by_the_keys_given_and_unusable_ones_are_skipped_with_why():
    runs = [
        WandbRun("a", "finished", {"params": 1e6, "flops": 6e13, "val/loss": 3.1}, {}),
        WandbRun("b", "crashed", {"params": 1e6, "flops": 6e13, "val/loss": 3.1}, {}),
        WandbRun("c", "finished", {"params": 1e6, "val/loss": float("nan")}, {}),
        WandbRun("d", "finished", {"params": True, "flops": 6e13, "val/loss": 3.0}, {}),
    ]
    imported = convert(runs, CsvColumns(n_col="params", d_col="", c_col="flops", loss_col="val/loss"))
    [row] = imported.table.to_dict("records")
    assert row["N"] == 1e6 and row["C"] == 6e13 and row["D"] == pytest.approx(1e7) and row["name"] == "a"
    assert math.isnan(row["budget"]) and imported.curves == {}
    assert imported.skipped == {
        "b": "its state is crashed, not finished",
        "c": "its summary has no positive val/loss, flops",
        "d": "its summary has no positive params",
    }


def test_no_importable_run_is_one_clear_error_and_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr(wandb_import, "fetch_runs", lambda project: [WandbRun("b", "finished", {"acc": 0.9}, {})])
    with pytest.raises(
        api.UserError, match="no finished run of me/p can be imported .b: its summary has no positive N"
    ):
        api.import_wandb("me/p", tmp_path / "s")
    assert not (tmp_path / "s").exists()
