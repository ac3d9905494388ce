"""The API on sweeps whose runs were not trained here: imported runs, and targets trained from a
proposal (fake run directories: no model is trained)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sweep import api
from sweep.config import compose, to_dict
from sweep.errors import UserError
from sweep.fit.cache import MAX_ENTRIES, FitCache
from sweep.fit.forms import Chinchilla
from sweep.plan.flops import spec_counts
from sweep.plan.grids import shape_rules, single_run_spec
from sweep.provenance import code_version
from sweep.rundir import RunDir
from sweep.spec import RunSpec
from sweep.store import Store
from sweep.sweepdir import SweepDir
from tests.conftest import sweep_cli
from tests.unit.fit.test_cache import counting_fit_all, same
from tests.unit.fit.test_isoflop import isoflop_runs

# N_opt(C) = sqrt(C / 300): the smoke grid's centre (50 tokens per parameter) is the true optimum.
TRUTH = Chinchilla(E=1.5, A=100.0, B=100.0 / (6 / 300) ** 0.3, alpha=0.3, beta=0.3)
OVERRIDES = ["sweep=smoke", "sweep.budgets=[3e10,1e11,3e11,1e12]", "sweep.sizes_per_budget=5", "sweep.size_span=9",
             "fit.bootstrap=8", "fit.forms=[chinchilla]"]  # fmt: skip


def fake_train(sweep_dir, spec: RunSpec, loss: float | None = None) -> float:
    """A finished run directory as a job leaves it, its loss from TRUTH with 0.3% noise unless given."""
    n, n_total, fpt = spec_counts(spec)
    noise = np.random.default_rng(int(spec.run_id, 16)).normal(0, 0.003)
    loss = float(TRUTH.loss(n, spec.tokens) * np.exp(noise)) if loss is None else loss
    run = RunDir(sweep_dir / "runs" / spec.run_id)
    run.write_spec(spec)
    run.write_result({"N": n, "N_total": n_total, "D": spec.tokens, "C": spec.tokens * fpt, "loss": loss})
    run.set_state("done")
    return loss


@pytest.fixture
def trained(tmp_path):
    sweep, planned = api.plan(OVERRIDES, tmp_path / "s")
    for run in planned:
        fake_train(sweep.path, run.spec)
    api.collect(sweep.path)
    return sweep.path, len(planned)


def test_a_proposal_trains_a_target_that_is_never_fitted_and_is_checked_against_its_prediction(trained):
    trained, proxies = trained
    _, proposal = api.propose_target(trained)
    yaml_path = api.proposal_file(SweepDir.open(trained), proposal)
    target = single_run_spec(compose(config_file=yaml_path))  # what `sweep train --config` trains
    assert target.role == "target" and target.run_id == proposal.run_id and target.budget == proposal.compute
    actual = fake_train(trained, target, loss=1.9)
    api.collect(trained)
    with Store(SweepDir.open(trained).db_file) as store:
        roles = store.runs().set_index("run_id")["role"]
    assert roles[target.run_id] == "target" and (roles.drop(target.run_id) == "proxy").all()

    human = sweep_cli("propose", trained, "fit.bootstrap=12")  # intervals move; the record must not
    assert human.returncode == 0, human.stderr
    fitted = json.loads((trained / "fits" / "fit.json").read_text())
    assert fitted["n_runs"] == proxies
    assert "1 target runs not fitted (fit.include_targets=true fits them)" in fitted["notes"]
    again = json.loads((trained / "proposals" / f"{proposal.proposal_id}.json").read_text())
    assert again["compute"] == proposal.compute  # not 10x the target's compute
    (check,) = api.trained_targets(trained)
    assert check.run_id == target.run_id and check.loss == actual and check.proposal_id == proposal.proposal_id
    assert [p.loss_interval for p in check.predictions] == [
        tuple(p.loss_interval) if p.loss_interval else None for p in proposal.predictions
    ]
    (a3,) = [p for p in check.predictions if p.approach == "approach3"]
    assert check.errors()["approach3"] == pytest.approx(a3.loss / actual - 1)
    assert "trained targets: predicted vs actual" in human.stdout and target.run_id in human.stdout
    assert f"{100 * check.errors()['approach3']:+.2f}%" in human.stdout
    backtest = sweep_cli("backtest", trained, "--holdout-top", "1", "--json")
    assert backtest.returncode == 0, backtest.stderr
    payload = json.loads(backtest.stdout)
    assert payload["trained_targets"][0]["run_id"] == target.run_id
    assert payload["n_fitted_runs"] + payload["n_held_out_runs"] == proxies  # the target is not a held-out proxy
    assert any(s.run_id == target.run_id and s.state == "done" for s in api.status(trained))


def test_a_store_from_before_roles_gains_the_column(tmp_path):
    db = tmp_path / "results.db"
    old = sqlite3.connect(db)
    old.execute("CREATE TABLE runs (run_id TEXT PRIMARY KEY, budget REAL, state TEXT NOT NULL, N REAL, D REAL, "
                "C REAL, loss REAL, spec_json TEXT NOT NULL, updated REAL NOT NULL)")  # fmt: skip
    old.execute("INSERT INTO runs VALUES ('a', 1e11, 'done', 1e4, 1e6, 1e11, 3.0, '{}', 0)")
    old.commit()
    old.close()
    with Store(db) as store:
        assert store.runs()["role"].tolist() == ["proxy"]
    with Store(db) as store:  # opening again: no second ALTER
        assert list(store.runs().columns).count("role") == 1


def imported_csv(tmp_path):
    """Runs from elsewhere: N, D, C and loss only, one budget with its minimum at its largest size."""
    budgets = [1e18, 1e19, 1e20, 1e21]
    runs = pd.concat([isoflop_runs(TRUTH, budgets[:3], sizes=6), isoflop_runs(TRUTH, budgets[3:], 0.1, sizes=6)])
    path = tmp_path / "runs.csv"
    runs.drop(columns="budget").to_csv(path, index=False)
    return path, len(runs)


def test_an_imported_sweep_shows_its_runs_and_proposes_a_real_shape(tmp_path):
    csv, rows = imported_csv(tmp_path)
    into = tmp_path / "imported"
    api.import_csv(csv, into)
    states = api.status(into)
    assert len(states) == rows and {(s.state, s.reason) for s in states} == {("done", "imported")}

    _, proposal = api.propose_target(into, overrides=["fit.bootstrap=8"])
    assert proposal.compute == pytest.approx(30 * 1e21)  # 30x the largest imported budget, not the config's
    rules = shape_rules(SweepDir.open(into).config())
    assert proposal.shape == vars(rules.make(proposal.shape["d_model"], proposal.shape["n_layers"]))
    assert proposal.shape_from == "approach3"
    assert proposal.next_wave and {w["budget"] for w in proposal.next_wave} == {1e21}


def test_too_few_runs_to_fit_still_give_a_proposal_that_says_so(tmp_path):
    sweep, planned = api.plan(["sweep=smoke", "sweep.budgets=[1e11]", "fit.bootstrap=4"], tmp_path / "one")
    for run in planned:
        fake_train(sweep.path, run.spec)
    api.collect(sweep.path)
    _, proposal = api.propose_target(sweep.path)
    assert proposal.shape_from == "best run" and proposal.predictions == []
    assert any(w.startswith("too little evidence") for w in proposal.warnings)
    assert api.proposal_file(sweep, proposal).is_file()
    human = sweep_cli("propose", sweep.path)
    assert human.returncode == 0 and "no predicted loss" in human.stdout and "too little evidence" in human.stdout


def test_the_role_is_a_tag_not_part_of_the_run_identity():
    spec = single_run_spec(compose(["run.d_model=32", "run.n_layers=2", "run.tokens=2e5"]))
    target = single_run_spec(compose(["run.d_model=32", "run.n_layers=2", "run.tokens=2e5", "run.role=target"]))
    assert (spec.role, target.role) == ("proxy", "target") and spec.run_id == target.run_id
    assert RunSpec.from_dict(target.to_dict()).role == "target"
    with pytest.raises(UserError, match="run.role=boss.*expected one of \\[proxy, target\\]"):
        compose(["run.d_model=32", "run.n_layers=2", "run.tokens=2e5", "run.role=boss"])


LRBATCH = ["sweep=lrbatch", "train.min_batch_size=2", "fit.bootstrap=8"]


def lr_star(n: float, d: float) -> float:
    """The true optimal LR: 0.006 at N=2e4, D=1e6 (near the rule's 4e-3 x 64 / d_model for d_model 32-64)."""
    return 0.006 * (n / 2e4) ** -0.3 * (d / 1e6) ** 0.1


def batch_star(d: float) -> float:
    """The true optimal batch, inside each size's grid (the rule's batch grows as D)."""
    return 13 * (d / 1e6) ** 0.8


def train_lrbatch(tmp_path) -> Path:
    """An LR x batch sweep whose losses bowl around lr_star and batch_star (no training)."""
    sweep, planned = api.plan(LRBATCH, tmp_path / "lrbatch")
    for run in planned:
        n, d = run.N, run.spec.tokens
        bowl = 0.04 * np.log(run.spec.lr / lr_star(n, d)) ** 2 + 0.04 * np.log(run.spec.batch_size / batch_star(d)) ** 2
        fake_train(sweep.path, run.spec, loss=float(TRUTH.loss(n, d)) + bowl)
    api.collect(sweep.path)
    return sweep.path


def test_the_target_takes_lr_and_batch_from_an_lrbatch_sweep(trained, tmp_path):
    isoflop, _ = trained
    lrbatch = train_lrbatch(tmp_path)
    report = api.fit(lrbatch)
    assert report.parametric is None and report.hparams.lr_law and report.hparams.batch_law
    assert report.hparams.lr_law.b == pytest.approx(-0.3, abs=0.05)
    assert report.hparams.batch_law.exponent == pytest.approx(0.8, abs=0.05)

    _, proposal = api.propose_target(isoflop, hparams_from=lrbatch)
    n, d = proposal.shape["N"], proposal.compute / proposal.shape["flops_per_token"]
    assert proposal.lr == pytest.approx(float(report.hparams.lr_law(n, d)))
    assert proposal.lr_from.startswith("fit: eta*(N, D)") and proposal.batch_from.startswith("fit: B*(D)")
    written = compose(config_file=api.proposal_file(SweepDir.open(isoflop), proposal))
    assert (written.run.lr, written.run.batch_size) == (proposal.lr, proposal.batch_size)
    _, ruled = api.propose_target(isoflop)
    assert ruled.lr_from.startswith("assumed: rule") and ruled.batch_from.startswith("assumed: rule")

    shown = sweep_cli("fit", lrbatch)
    assert shown.returncode == 0, shown.stderr
    assert "LR x batch: optimum per size" in shown.stdout and "eta*(N, D) = a N^b D^c with a =" in shown.stdout
    machine = json.loads(sweep_cli("fit", lrbatch, "--json").stdout)
    assert machine["hparams"]["lr_law"]["b"] == pytest.approx(report.hparams.lr_law.b)


def test_hparams_from_a_sweep_trained_otherwise_is_refused(trained, tmp_path):
    isoflop, _ = trained
    other = api.plan(["sweep=lrbatch", "train.warmup_frac=0.2"], tmp_path / "other")[0].path
    with pytest.raises(UserError, match="other train.warmup_frac settings"):
        api.propose_target(isoflop, hparams_from=other)


def test_a_proposal_is_known_by_its_record_or_else_by_the_latest_proposal_at_its_compute(trained):
    trained, _ = trained
    _, proposal = api.propose_target(trained)
    sweep = SweepDir.open(trained)
    yaml_path = api.proposal_file(sweep, proposal)
    api.recorded_proposal_file(sweep, proposal.run_id).unlink()  # as when the run was trained before, as a proxy
    spec, record = api.proposed_target(sweep, yaml_path)
    assert spec.run_id == proposal.run_id and record["proposal_id"] == proposal.proposal_id
    (sweep.proposals_dir / f"{proposal.proposal_id}.json").unlink()
    with pytest.raises(UserError, match=f"it proposed no run {proposal.run_id}"):
        api.proposed_target(sweep, yaml_path)


def cache_files(sweep_path: Path) -> list[Path]:
    return sorted((sweep_path / "fits" / "cache").glob("*.json"))


def test_a_fit_of_an_unchanged_sweep_is_read_from_its_cache_and_still_recorded(trained, monkeypatch):
    path, _ = trained
    calls = counting_fit_all(monkeypatch)
    first = api.fit(path)
    fit_json = path / "fits" / "fit.json"
    fit_json.unlink()
    with Store(SweepDir.open(path).db_file) as store:
        recorded = len(store.fits())
    again = api.fit(path)
    assert calls["n"] == 1 and same(again.to_dict(), first.to_dict())
    assert json.loads(fit_json.read_text()) == json.loads(json.dumps(first.to_dict()))
    with Store(SweepDir.open(path).db_file) as store:
        assert len(store.fits()) == 2 * recorded
    api.propose_target(path)  # the proposal's fit (allow_unfitted) is the same fit
    assert calls["n"] == 1 and len(cache_files(path)) == 1

    api.fit(path, ["fit.seed=1"])
    assert calls["n"] == 2
    sweep = SweepDir.open(path)
    spec = next(RunDir(p) for p in sorted(sweep.runs_dir.iterdir())).read_spec()
    fake_train(path, spec, loss=3.0)  # one run's loss changes
    api.collect(path)
    api.fit(path)
    assert calls["n"] == 3
    fake_train(path, replace(spec, seed=spec.seed + 1))  # a new run
    api.collect(path)
    api.fit(path)
    assert calls["n"] == 4
    api.fit(path)
    assert calls["n"] == 4


def test_a_torn_or_unwritable_cache_never_fails_a_fit(trained, monkeypatch):
    path, _ = trained
    api.fit(path, ["fit.bootstrap=0"])
    (entry,) = cache_files(path)
    entry.write_text('{"format": 1, "key": "')
    calls = counting_fit_all(monkeypatch)
    report = api.fit(path, ["fit.bootstrap=0"])
    assert calls["n"] == 1 and FitCache(entry.parent).get(entry.stem) is not None  # refitted and written again
    for seed in range(MAX_ENTRIES + 2):
        api.fit(path, ["fit.bootstrap=0", f"fit.seed={seed}"])
        assert len(cache_files(path)) <= MAX_ENTRIES
    shutil.rmtree(entry.parent)
    entry.parent.write_text("a file where the cache directory would be: every write fails")
    (path / "fits" / "fit.json").unlink()
    assert same(api.fit(path, ["fit.bootstrap=0"]).to_dict(), report.to_dict())
    assert (path / "fits" / "fit.json").is_file()


def test_a_sweep_backtest_reuses_its_fit_and_a_csv_backtest_writes_nothing(trained, tmp_path, monkeypatch):
    path, _ = trained
    calls = counting_fit_all(monkeypatch)
    first = api.backtest_source(path, api.CsvColumns(), None, holdout_top=1)
    again = api.backtest_source(path, api.CsvColumns(), None, holdout_top=1)
    assert calls["n"] == 1 and same(again.to_dict(), first.to_dict()) and len(cache_files(path)) == 1
    api.backtest_source(path, api.CsvColumns(), None, holdout_top=2)
    assert calls["n"] == 2

    (tmp_path / "csv").mkdir()
    csv, _ = imported_csv(tmp_path / "csv")
    before = sorted(csv.parent.rglob("*"))
    api.backtest_source(csv, api.CsvColumns(), ["fit.bootstrap=4"], holdout_top=1)
    api.backtest_source(csv, api.CsvColumns(), ["fit.bootstrap=4"], holdout_top=1)
    assert calls["n"] == 4 and sorted(csv.parent.rglob("*")) == before


def test_fits_and_proposals_record_the_finished_proxies_the_fit_config_and_the_code_version(trained):
    path, _ = trained
    spec = RunDir(next((path / "runs").iterdir())).read_spec()
    target, failed = replace(spec, seed=98, role="target"), replace(spec, seed=99)
    fake_train(path, target, loss=1.9)  # a trained target: not fitted, so not in the origin
    RunDir(path / "runs" / failed.run_id).write_spec(failed)
    RunDir(path / "runs" / failed.run_id).set_state("failed", reason="diverged at step 3")
    api.collect(path)
    proxies = sorted(p.name for p in (path / "runs").iterdir() if p.name not in (target.run_id, failed.run_id))

    api.fit(path, ["fit.bootstrap=7"])
    _, proposal = api.propose_target(path, overrides=["fit.bootstrap=7"])
    fit_config = to_dict(api.sweep_config(path, ["fit.bootstrap=7"]).fit)
    assert fit_config["bootstrap"] == 7 and api.sweep_config(path).fit.bootstrap == 8
    with Store(SweepDir.open(path).db_file) as store:
        fits, proposals, runs = store.fits(), store.proposals(), store.runs().set_index("run_id")
    assert runs.loc[target.run_id, "state"] == "done" and runs.loc[target.run_id, "role"] == "target"
    assert runs.loc[failed.run_id, "state"] == "failed"
    assert "approach3" in set(fits["approach"]) and proposals["proposal_id"].tolist() == [proposal.proposal_id]
    for row in [*fits.to_dict("records"), *proposals.to_dict("records")]:
        assert json.loads(row["run_ids_json"]) == proxies
        assert json.loads(row["fit_config_json"]) == fit_config
        assert row["code_version"] == code_version()
