"""The Sweep class on fake-trained sweeps (tests/unit/test_api.py fake_train) and a noop-trained one."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from importlib import metadata

import pandas as pd
import pytest
from typer.testing import CliRunner

import sweep
from sweep import Sweep, api, cli
from sweep.errors import UserError
from sweep.rundir import RunDir
from sweep.store import Store
from tests.unit.test_api import OVERRIDES, fake_train


@pytest.fixture
def trained(tmp_path) -> Sweep:
    planned = Sweep.plan(OVERRIDES, tmp_path / "s")
    for run in planned.planned:
        fake_train(planned.path, run.spec)
    planned.collect()
    return Sweep.open(planned.path)


def test_version_is_the_installed_packages_and_importing_sweep_leaves_the_class_unloaded():
    assert sweep.__version__ == metadata.version("scaling-sweep")
    code = "import sys, sweep; print('sweep.handle' in sys.modules, 'sweep.api' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.split() == ["False"] * 2
    with pytest.raises(AttributeError, match="no attribute 'Swept'"):
        sweep.Swept  # noqa: B018 - the attribute lookup is the test


def test_plan_writes_the_sweep_that_open_reads_back(tmp_path):
    planned = Sweep.plan(OVERRIDES, str(tmp_path / "s"))
    opened = Sweep.open(tmp_path / "s")
    assert opened.path == planned.path == tmp_path / "s"
    assert opened.config == planned.config and opened.config.sweep.budgets == [3e10, 1e11, 3e11, 1e12]
    assert opened.planned == [] and len(planned.planned) == 20
    status = opened.status()
    assert list(status.columns) == list(api.STATUS_COLUMNS)
    assert status["run_id"].tolist() == [r.spec.run_id for r in planned.planned]
    assert (status["state"] == "planned").all() and (status["role"] == "proxy").all()
    assert repr(opened) == f"<Sweep 's' at {tmp_path / 's'}: 20 runs (20 planned)>"


def test_status_has_each_runs_state_role_and_shape(trained):
    status = trained.status().set_index("run_id")
    runs = trained.runs().set_index("run_id")
    assert len(status) == 20 and (status["state"] == "done").all()
    assert status.loc[runs.index, "N"].tolist() == runs["N"].tolist()
    assert status.loc[runs.index, "budget"].tolist() == runs["budget"].tolist()
    assert {"d_model", "n_layers", "n_heads", "D", "reason"} <= set(status.columns)
    assert repr(trained).endswith(": 20 runs (20 done)>")


def test_runs_and_curves_are_the_stores_tables(trained):
    first = trained.runs()["run_id"].iloc[0]
    curve = [{"step": s, "tokens": 1e4 * s, "flops": 1e9 * s, "train_loss": 3.0 / s, "eval_loss": 3.1 / s, "lr": 1e-3}
             for s in (1, 2, 3)]  # fmt: skip
    RunDir(trained.path / "runs" / first).write_curve(curve)
    RunDir(trained.path / "runs" / first).set_state("done")
    trained.collect(rebuild=True)  # a done row is never downgraded, nor its curve re-read, without a rebuild
    with Store(trained.path / "results.db") as store:
        pd.testing.assert_frame_equal(trained.runs(), store.runs(state="done"))
        pd.testing.assert_frame_equal(trained.curves(), store.curves())
    assert len(trained.runs()) == 20 and trained.runs()["loss"].notna().all()
    assert trained.curves()["run_id"].tolist() == [first] * 3
    assert trained.curves()["eval_loss"].tolist() == [3.1, 1.55, 3.1 / 3]


def test_the_class_and_the_cli_fit_the_same_numbers(trained, tmp_path):
    other = tmp_path / "copy"
    shutil.copytree(trained.path, other)  # each fits from scratch: neither reads the other's cached fit
    by_class = json.loads(json.dumps(trained.fit(["fit.bootstrap=12"]).to_dict()))  # intervals as lists
    by_cli = CliRunner().invoke(cli.app, ["fit", str(other), "fit.bootstrap=12", "--json"])
    assert by_cli.exit_code == 0, by_cli.output
    assert by_class["approach3"] == json.loads(by_cli.stdout)["approach3"]
    assert by_class["approach3"]["bootstrap"] == 12


def test_propose_writes_the_proposal_the_store_and_export_hold(trained, tmp_path):
    proposal = trained.propose(compute=1e13)
    assert proposal.compute == 1e13 and trained.proposal_file(proposal).is_file()
    assert trained.trained_targets() == []
    tables = {t.name: t for t in trained.export("csv", tmp_path / "out")}
    proposals = pd.read_csv(tables["proposals"].path)
    assert proposals["proposal_id"].tolist() == [proposal.proposal_id]
    assert proposals["payload.tokens"].tolist() == [proposal.tokens]
    assert pd.read_csv(tables["fits"].path)["approach"].tolist() == ["approach2", "approach3"]


def test_launch_wait_and_collect_a_noop_trained_sweep(tmp_path):
    noop = Sweep.plan(["sweep=smoke", "launcher=debug", "launcher.trainer=noop"], tmp_path / "noop")
    assert len(noop.launch().submitted) == 6
    waited = noop.wait(show_progress=False)
    assert list(waited.columns) == list(api.STATUS_COLUMNS) and (waited["state"] == "done").all()
    assert sorted(noop.collect().ingested) == sorted(waited["run_id"])
    assert len(noop.runs()) == 6 and len(noop.curves()) == 6  # the noop trainer writes one curve row per run


def test_opening_what_is_no_sweep_is_a_one_line_user_error(tmp_path):
    with pytest.raises(UserError) as missing:
        Sweep.open(tmp_path / "missing")
    assert str(missing.value) == (
        f"sweep directory {tmp_path / 'missing'} does not exist; create one with `sweep plan --out "
        f"{tmp_path / 'missing'}`"
    )
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="is not a sweep directory") as empty:
        Sweep.open(tmp_path / "empty")
    assert "\n" not in str(empty.value)
    (tmp_path / "runs.csv").write_text("N,D,loss\n")
    with pytest.raises(UserError, match=r"runs.csv is a file, not a sweep directory"):
        Sweep.open(tmp_path / "runs.csv")


@pytest.mark.parametrize("compute", [-1.0, 0.0, float("nan"), 1e40])
def test_a_compute_no_run_can_have_is_the_clis_user_error_from_python_too(trained, compute):
    with pytest.raises(UserError, match=r"--compute .* must be a positive number of FLOPs up to 1e\+35"):
        trained.propose(compute=compute)


def test_a_bad_export_format_is_a_user_error(trained, tmp_path):
    with pytest.raises(UserError, match="format 'xml' is not one of csv, parquet, json"):
        trained.export("xml", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_report_writes_the_html_report(trained):
    trained.fit()
    result = trained.report()
    assert result.index == trained.path / "report" / "index.html" and result.index.read_text().startswith("<!")
    assert {p.name for p in result.figures} >= {"isoflop.png", "isoflop.svg"}


def test_imported_runs_are_in_status_as_imported_with_no_shape_and_in_runs(tmp_path):
    from tests.unit.fit.test_report import TRUTH, chinchilla_runs

    chinchilla_runs(TRUTH).to_csv(tmp_path / "runs.csv", index=False)
    api.import_csv(tmp_path / "runs.csv", tmp_path / "imported")
    imported = Sweep.open(tmp_path / "imported")
    status = imported.status()
    assert len(status) == 18 and (status["role"] == "imported").all() and (status["state"] == "done").all()
    assert status["d_model"].isna().all() and status["run_id"].str.startswith("import-").all()
    assert len(imported.runs()) == 18 and imported.curves().empty


def test_compare_takes_this_sweep_as_the_baseline(trained, tmp_path):
    other = Sweep.plan([*OVERRIDES, "model.mlp=swiglu"], tmp_path / "swiglu")
    for run in other.planned:
        fake_train(other.path, run.spec)  # the same law: a change worth nothing
    other.collect()
    comparison = trained.compare(other.path, computes=[1e12], overrides=["fit.bootstrap=40"])
    assert comparison.sweeps == [str(trained.path), str(other.path)]
    (target,) = comparison.targets
    assert target.compute == 1e12 and target.variants[1].multiplier.value == pytest.approx(1.0, rel=0.05)
