"""Exports read back with pandas equal the store's tables, in every format."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from sweep import api
from sweep.errors import UserError
from sweep.export import TABLES, ExportFormat, expanded, store_tables
from sweep.rundir import RunDir
from sweep.store import Store
from tests.unit.test_api import OVERRIDES, fake_train

READ = {
    ExportFormat.csv: pd.read_csv,
    ExportFormat.parquet: pd.read_parquet,
    ExportFormat.json: lambda path: pd.read_json(path, orient="records", dtype=False, precise_float=True),
}


@pytest.fixture(scope="module")
def proposed(tmp_path_factory) -> Path:
    """A fake-trained sweep with a curve, fitted and proposed: every table has rows."""
    sweep, planned = api.plan(OVERRIDES, tmp_path_factory.mktemp("export") / "s")
    for run in planned:
        fake_train(sweep.path, run.spec)
    curve = [{"step": s, "tokens": 4e3 * s, "flops": 1.3e9 * s, "train_loss": 4 / s, "eval_loss": 4.2 / s, "lr": 1e-3}
             for s in (1, 2)]  # fmt: skip
    RunDir(sweep.runs_dir / planned[0].spec.run_id).write_curve(curve)
    api.collect(sweep.path)
    api.propose_target(sweep.path)
    return sweep.path


def missing_as_nan(table: pd.DataFrame) -> pd.DataFrame:
    """None and NaN are both 'missing'; CSV and JSON give back NaN for either."""
    return table.astype(object).where(table.notna(), float("nan"))


@pytest.mark.parametrize("fmt", list(ExportFormat))
def test_an_export_read_back_equals_the_stores_tables(proposed, tmp_path, fmt):
    written = api.export(proposed, fmt, tmp_path / "out")
    assert [(t.name, t.path) for t in written] == [(name, tmp_path / "out" / f"{name}.{fmt}") for name in TABLES]
    tables = store_tables(proposed / "results.db")
    with Store(proposed / "results.db") as store:
        pd.testing.assert_frame_equal(tables["runs"], store.runs())
        pd.testing.assert_frame_equal(tables["curves"], store.curves())
    assert [t.rows for t in written] == [20, 2, 2, 1]  # approaches 2 and 3 fitted (no curves for Approach 1)
    for table in written:
        back = READ[fmt](table.path)
        pd.testing.assert_frame_equal(
            missing_as_nan(back), missing_as_nan(tables[table.name]), check_dtype=False, check_exact=True
        )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(f"{name}.{fmt}" for name in TABLES)


def test_fits_and_proposals_get_a_column_per_scalar_of_their_json(proposed):
    tables = store_tables(proposed / "results.db")
    fit = json.loads((proposed / "fits" / "fit.json").read_text())
    approach3 = tables["fits"].set_index("approach").loc["approach3"]
    assert approach3["params.alpha"] == fit["approach3"]["alpha"]
    assert approach3["params.bootstrap"] == fit["approach3"]["bootstrap"]
    assert (
        tables["fits"].set_index("approach").loc["approach2", "params.N_star.exponent"]
        == (fit["approach2"]["N_star"]["exponent"])
    )
    assert "params.intervals.alpha" not in tables["fits"]  # a list: left in params_json
    assert (
        tables["proposals"]["payload.shape.d_model"].iloc[0]
        == json.loads(tables["proposals"]["payload_json"].iloc[0])["shape"]["d_model"]
    )


def test_expanded_leaves_a_key_missing_where_a_row_lacks_it():
    table = pd.DataFrame({"params_json": [json.dumps({"a": 1, "b": {"c": "x"}}), json.dumps({"a": 2, "d": [1]})]})
    out = expanded(table, "params_json", "params")
    assert list(out.columns) == ["params_json", "params.a", "params.b.c"]
    assert out["params.a"].tolist() == [1, 2] and out["params.b.c"].iloc[0] == "x"
    assert pd.isna(out["params.b.c"].iloc[1])


@pytest.mark.parametrize("fmt", [ExportFormat.csv, ExportFormat.parquet])
def test_a_sweep_with_nothing_collected_exports_empty_tables_with_their_columns(tmp_path, fmt):
    sweep, _ = api.plan(OVERRIDES, tmp_path / "s")
    written = api.export(sweep.path, fmt, tmp_path / "out")
    assert [t.rows for t in written] == [0] * 4
    assert not sweep.db_file.exists()  # exporting wrote no store into the sweep
    with Store(tmp_path / "other.db") as store:
        columns = {"runs": store.runs(), "curves": store.curves(), "fits": store.fits(), "proposals": store.proposals()}
    for table in written:
        back = READ[fmt](table.path)
        assert back.empty and list(back.columns) == list(columns[table.name].columns)


def test_an_empty_json_export_is_an_empty_list_of_records(tmp_path):
    sweep, _ = api.plan(OVERRIDES, tmp_path / "s")
    for table in api.export(sweep.path, "json", tmp_path / "out"):
        assert json.loads(table.path.read_text()) == []


def test_an_out_path_that_is_a_file_is_a_user_error(tmp_path):
    sweep, _ = api.plan(OVERRIDES, tmp_path / "s")
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match=r"--out .*file is a file, not a directory; choose another path"):
        api.export(sweep.path, "csv", tmp_path / "file")


@pytest.mark.parametrize("inside", [".", "fits", "runs/x", "report"])
def test_an_out_path_that_is_the_sweep_or_one_of_its_folders_is_refused_and_nothing_is_written(tmp_path, inside):
    sweep, _ = api.plan(OVERRIDES, tmp_path / "s")
    before = sorted(p.relative_to(sweep.path) for p in sweep.path.rglob("*"))
    with pytest.raises(UserError, match=r"is the sweep directory .* or one of its own folders; export elsewhere"):
        api.export(sweep.path, "csv", sweep.path / inside)
    assert sorted(p.relative_to(sweep.path) for p in sweep.path.rglob("*")) == before


def test_a_folder_of_its_own_inside_the_sweep_takes_the_export(tmp_path):
    sweep, _ = api.plan(OVERRIDES, tmp_path / "s")
    written = api.export(sweep.path, "csv", sweep.path / "export")
    assert sorted(t.path.name for t in written) == ["curves.csv", "fits.csv", "proposals.csv", "runs.csv"]
