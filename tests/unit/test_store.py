import json
import sqlite3

import pytest

from sweep.config import compose
from sweep.errors import UserError
from sweep.plan.grids import make_plan
from sweep.provenance import Origin
from sweep.rundir import RunDir
from sweep.store import Store


def fake_done_run(root, spec, loss):
    """A finished run directory as a job leaves it (the store does not care who trained it)."""
    run = RunDir(root / spec.run_id)
    run.write_spec(spec)
    run.write_curve([{"step": 1, "tokens": 10, "flops": 100, "train_loss": 3.0, "eval_loss": 3.1, "lr": 1e-3}])
    run.write_result({"N": 1000, "N_total": 5000, "D": spec.tokens, "C": spec.tokens * 6000.0, "loss": loss})
    run.set_state("done")
    return run


def test_collect_is_an_idempotent_upsert_in_wal_mode(tmp_path):
    specs = make_plan(compose(["sweep=smoke"])).specs
    runs = [fake_done_run(tmp_path / "runs", s, 3.0 + i) for i, s in enumerate(specs)]
    budgets = {s.run_id: s.budget for s in specs}
    with Store(tmp_path / "results.db") as store:
        first = store.collect(runs, budgets)
        second = store.collect(runs, budgets)
        assert first.ingested == second.ingested and not first.skipped
        frame = store.runs(state="done")
        assert len(frame) == len(specs) and set(frame["loss"]) == {3.0 + i for i in range(len(specs))}
        assert len(store.curves()) == len(specs)
    mode = sqlite3.connect(tmp_path / "results.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_corrupt_or_foreign_files_are_skipped_and_the_rest_ingested(tmp_path):
    specs = make_plan(compose(["sweep=smoke"])).specs
    runs = [fake_done_run(tmp_path / "runs", s, 3.0) for s in specs]
    runs[0].result_file.write_text('{"loss": 3.0, "N": ')  # torn
    runs[1].result_file.write_text(json.dumps({"loss": float("nan"), "N": 1, "D": 1, "C": 1}))
    foreign = RunDir(tmp_path / "runs" / "not-a-run")
    foreign.path.mkdir()
    (foreign.path / "spec.json").write_text("hello")
    with Store(tmp_path / "results.db") as store:
        report = store.collect([*runs, foreign], {})
        assert set(report.skipped) == {runs[0].run_id, runs[1].run_id, "not-a-run"}
        assert "not valid JSON" in report.skipped[runs[0].run_id]
        assert len(store.runs(state="done")) == len(specs) - 2
    assert runs[0].result_file.read_text() == '{"loss": 3.0, "N": '  # left as it was


def test_runs_are_filed_under_their_directory_and_a_foreign_spec_is_reported(tmp_path):
    specs = make_plan(compose(["sweep=smoke"])).specs
    runs = [fake_done_run(tmp_path / "runs", s, 3.0 + i) for i, s in enumerate(specs)]
    runs[1].write_spec(specs[0])  # copied over: must not overwrite run 0's row
    edited = json.loads(runs[2].spec_file.read_text())
    edited["lr"] = 0.5  # edited by hand: must not add a phantom row under the edited spec's hash
    runs[2].spec_file.write_text(json.dumps(edited))
    with Store(tmp_path / "results.db") as store:
        report = store.collect(runs, {})
        frame = store.runs()
    assert set(report.skipped) == {runs[1].run_id, runs[2].run_id}
    assert all("describes run" in why for why in report.skipped.values())
    assert set(frame["run_id"]) == {r.run_id for r in runs} - set(report.skipped)
    assert frame.set_index("run_id").loc[runs[0].run_id, "loss"] == 3.0


def test_collect_never_downgrades_a_done_row(tmp_path):
    specs = make_plan(compose(["sweep=smoke"])).specs
    run = fake_done_run(tmp_path / "runs", specs[0], 3.0)
    with Store(tmp_path / "results.db") as store:
        store.collect([run], {})
        run.result_file.unlink()  # lost later: the directory now reads as planned
        run.status_file.write_text("{torn")
        assert store.collect([run], {}).ingested == {run.run_id: "planned"}
        row = store.runs().set_index("run_id").loc[run.run_id]
    assert row["state"] == "done" and row["loss"] == 3.0


def test_reading_a_store_that_does_not_exist_is_an_error_not_an_empty_store(tmp_path):
    with pytest.raises(UserError, match="sweep collect"):
        Store(tmp_path / "typo" / "results.db", create=False)
    assert not (tmp_path / "typo").exists()


def test_speed_is_stored_and_an_older_store_gains_its_columns(tmp_path):
    with sqlite3.connect(tmp_path / "results.db") as db:  # a store from before roles and MFU
        db.execute("CREATE TABLE runs (run_id TEXT PRIMARY KEY, budget REAL, state TEXT NOT NULL, reason TEXT, "
                   "d_model INTEGER, n_layers INTEGER, n_heads INTEGER, seq_len INTEGER, batch_size INTEGER, lr REAL, "
                   "seed INTEGER, steps INTEGER, N REAL, N_total REAL, D REAL, C REAL, flops_per_token REAL, "
                   "loss REAL, wall_time_s REAL, tokens_per_s REAL, device TEXT, spec_json TEXT NOT NULL, "
                   "result_json TEXT, updated REAL NOT NULL)")  # fmt: skip
    spec = make_plan(compose(["sweep=smoke"])).specs[0]
    run = fake_done_run(tmp_path / "runs", spec, 3.0)
    speed = {"tokens_per_s": 1e5, "flops_per_s": 4e14, "mfu": 0.4, "device": "cuda", "device_name": "NVIDIA H100"}
    run.write_result({**run.read_result(), **speed})
    with Store(tmp_path / "results.db") as store:
        store.collect([run], {})
        row = store.runs().iloc[0]
    assert {k: row[k] for k in speed} == speed
    assert row["role"] == "proxy"


ORIGIN = Origin(
    run_ids=["a1", "b2"], fit_config={"bootstrap": 7, "forms": ["chinchilla"]}, code_version="0.1.0+g1a2b3c4"
)


def test_fits_and_proposals_are_recorded_with_their_origin(tmp_path):
    with Store(tmp_path / "results.db") as store:
        store.record_fit("approach3", "non_embedding", 2, {"alpha": 0.3}, ORIGIN)
        store.record_proposal("p1", 1e15, {"compute": 1e15}, ORIGIN)
        fit, proposal = store.fits().iloc[0], store.proposals().iloc[0]
    for row in (fit, proposal):
        assert json.loads(row["run_ids_json"]) == ORIGIN.run_ids
        assert json.loads(row["fit_config_json"]) == ORIGIN.fit_config
        assert row["code_version"] == ORIGIN.code_version
    assert json.loads(fit["params_json"]) == {"alpha": 0.3} and fit["n_points"] == 2
    assert json.loads(proposal["payload_json"]) == {"compute": 1e15} and proposal["compute"] == 1e15


def test_a_store_from_before_provenance_gains_the_origin_columns_and_keeps_its_rows(tmp_path):
    with sqlite3.connect(tmp_path / "results.db") as db:  # fits and proposals as stores first wrote them
        db.execute(
            "CREATE TABLE fits (fit_id INTEGER PRIMARY KEY AUTOINCREMENT, created REAL NOT NULL, "
            "approach TEXT NOT NULL, counting TEXT NOT NULL, n_points INTEGER, params_json TEXT NOT NULL)"
        )
        db.execute("CREATE TABLE proposals (proposal_id TEXT PRIMARY KEY, created REAL NOT NULL, "
                   "compute REAL NOT NULL, payload_json TEXT NOT NULL)")  # fmt: skip
        db.execute("INSERT INTO fits (created, approach, counting, n_points, params_json) "
                   "VALUES (1, 'approach3', 'non_embedding', 9, '{}')")  # fmt: skip
        db.execute("INSERT INTO proposals VALUES ('old', 1, 1e15, '{}')")
    db.close()
    for _ in range(2):  # opening again adds nothing twice
        with Store(tmp_path / "results.db") as store:
            fits, proposals = store.fits(), store.proposals()
    for table in (fits, proposals):
        assert list(table.columns[-3:]) == ["run_ids_json", "fit_config_json", "code_version"]
        assert table[["run_ids_json", "fit_config_json", "code_version"]].isna().all().all()
    assert fits["n_points"].tolist() == [9] and proposals["proposal_id"].tolist() == ["old"]

    with Store(tmp_path / "results.db") as store:
        store.record_fit("approach2", "total", 3, {}, ORIGIN)
        store.record_proposal("new", 1e16, {}, ORIGIN)
        fits, proposals = store.fits(), store.proposals()
    assert fits["code_version"].tolist()[1:] == [ORIGIN.code_version] and fits["approach"].tolist()[0] == "approach3"
    assert proposals.set_index("proposal_id").loc["new", "run_ids_json"] == json.dumps(ORIGIN.run_ids)
