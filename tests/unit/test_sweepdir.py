"""The sweep directory: run ids are the only names that become paths; a bad plan is an error."""

import json
from dataclasses import replace

import pytest

from sweep.config import compose
from sweep.errors import UserError
from sweep.plan.grids import make_plan
from sweep.sweepdir import SweepDir


@pytest.fixture
def sweep(tmp_path):
    config = compose(["sweep=smoke"])
    return SweepDir.create(tmp_path / "s", config, make_plan(config).specs)


@pytest.mark.parametrize("run_id", ["../../X", "/etc", "0123456789ab/..", "ABCDEF012345", "", 7])
def test_a_plan_entry_that_is_not_a_run_id_never_becomes_a_path(sweep, tmp_path, run_id):
    plan = json.loads(sweep.plan_file.read_text())
    plan["runs"].append({"run_id": run_id, "budget": 1e10, "wave": 0})
    sweep.plan_file.write_text(json.dumps(plan))
    with pytest.raises(UserError, match="plan"):
        sweep.runs()
    with pytest.raises(UserError, match="not a run id"):
        sweep.run(run_id if isinstance(run_id, str) else str(run_id))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]


@pytest.mark.parametrize("text", ["{garbage", '{"runs": 5}', '{"runs": [{"budget": 1}]}', "[]", ""])
def test_a_corrupt_plan_is_one_error_that_says_how_to_recover(sweep, text):
    sweep.plan_file.write_text(text)
    with pytest.raises(UserError, match="restore plan.json"):
        sweep.planned()


def test_a_new_sweep_appears_whole_or_not_at_all(tmp_path, monkeypatch):
    config = compose(["sweep=smoke"])
    specs = make_plan(config).specs

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(SweepDir, "_add_runs", full_disk)
    with pytest.raises(OSError):
        SweepDir.create(tmp_path / "s", config, specs)
    assert list(tmp_path.iterdir()) == []  # neither the sweep nor its staging directory
    monkeypatch.undo()
    sweep = SweepDir.create(tmp_path / "s", config, specs)  # and planning again works
    assert len(sweep.runs()) == len(specs)


def test_replanning_adds_runs_and_keeps_the_old_ones(sweep):
    config = compose(["sweep=smoke", "sweep.seeds=[0,1]"])
    extra = [s for s in make_plan(config).specs if s.seed == 1]
    before = {r.run_id for r in sweep.runs()}
    sweep.add_runs(extra, wave=1)
    assert {r.run_id for r in sweep.runs()} == before | {s.run_id for s in extra}


def test_two_plans_of_a_new_sweep_at_once_both_succeed(tmp_path, monkeypatch):
    import tempfile

    config = compose(["sweep=smoke"])
    specs = make_plan(config).specs
    real_mkdtemp = tempfile.mkdtemp

    def rival_plans_first(*args, **kwargs):  # the other plan finishes while this one stages
        staging = real_mkdtemp(*args, **kwargs)
        monkeypatch.setattr(tempfile, "mkdtemp", real_mkdtemp)
        SweepDir.create(tmp_path / "s", config, specs)
        return staging

    monkeypatch.setattr(tempfile, "mkdtemp", rival_plans_first)
    sweep = SweepDir.create(tmp_path / "s", config, specs)
    assert len(sweep.runs()) == len(specs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]  # no staging directory left behind


def test_a_widthdepth_grid_is_added_to_an_isoflop_sweep_as_a_new_wave(sweep):
    config_text = sweep.config_file.read_text()
    before = {r.run_id for r in sweep.runs()}
    widthdepth = compose(["sweep=widthdepth"])
    specs = make_plan(widthdepth).specs
    SweepDir.create(sweep.path, widthdepth, specs)
    entries = sweep.planned()
    assert {e["run_id"] for e in entries} == before | {s.run_id for s in specs}
    assert {e["wave"] for e in entries if e["run_id"] not in before} == {1}
    assert sweep.config_file.read_text() == config_text  # the sweep's config is still the first plan's
    SweepDir.create(sweep.path, widthdepth, specs)  # planning it again adds nothing
    assert sweep.planned() == entries


def test_a_grid_with_other_model_settings_is_refused(sweep):
    other = compose(["sweep=widthdepth", "model.head_dim=32"])
    with pytest.raises(UserError, match="another config.*sweep=widthdepth"):
        SweepDir.create(sweep.path, other, make_plan(other).specs)


def test_an_lr_batch_grid_is_not_added_to_an_isoflop_sweep(sweep):
    """Its run at the rules' LR and batch is an IsoFLOP run: as a grid it would leave the valley."""
    lrbatch = compose(["sweep=lrbatch"])
    with pytest.raises(UserError, match="directory of its own"):
        SweepDir.create(sweep.path, lrbatch, make_plan(lrbatch).specs)


def test_the_plan_records_each_runs_role(sweep):
    target = replace(make_plan(compose(["sweep=smoke"])).specs[0], seed=7, role="target")
    sweep.add_runs([target])
    roles = {entry["run_id"]: entry["role"] for entry in sweep.planned()}
    assert roles.pop(target.run_id) == "target" and set(roles.values()) == {"proxy"}
