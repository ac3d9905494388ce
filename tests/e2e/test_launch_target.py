"""A proposal's target launched like a proxy (`sweep launch --proposal`, `sweep propose --launch`),
and the recommended approach, through the CLI; the noop trainer stands in for training."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from sweep.rundir import RunDir
from sweep.store import Store
from tests.conftest import sweep_cli

NOOP = ["launcher.trainer=noop", "fit.bootstrap=10"]
CENTRED = "sweep.tokens_per_param=10"  # where the noop trainer's law puts each budget's minimum inside its sizes


def trained_sweep(out: Path, *overrides: str) -> Path:
    """A sweep of the noop trainer, planned, trained in-process and collected."""
    for command in (
        ["plan", *NOOP, *overrides, "--out", out],
        ["launch", out, "--executor", "debug"],
        ["collect", out],
    ):
        result = sweep_cli(*command)
        assert result.returncode == 0, result.stderr
    return out


def proposed(sweep: Path, *args: str) -> dict:
    result = sweep_cli("propose", sweep, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """Three budgets of five sizes, trained, with a proposal written."""
    sweep = trained_sweep(tmp_path_factory.mktemp("base") / "s", CENTRED)
    proposed(sweep)
    return sweep


@pytest.fixture
def sweep(base, tmp_path) -> Path:
    return Path(shutil.copytree(base, tmp_path / "s"))


def proposal_yaml(sweep: Path) -> Path:
    (path,) = (sweep / "proposals").glob("*.yaml")
    return path


def launched(sweep: Path, *args: str) -> dict:
    result = sweep_cli("launch", sweep, "--proposal", proposal_yaml(sweep), *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def roles(sweep: Path) -> dict[str, str]:
    with Store(sweep / "results.db") as store:
        return store.runs().set_index("run_id")["role"].to_dict()


def test_a_target_launched_once_per_seed_is_a_target_checked_against_the_one_prediction(sweep):
    before = proposed(sweep)
    proxies = json.loads((sweep / "fits" / "fit.json").read_text())["n_runs"]
    first = launched(sweep, "--seeds", "0,1", "--executor", "local")
    targets = {t["seed"]: t["run_id"] for t in first["targets"]}
    assert first["proposal_id"] == before["proposal_id"] and targets[0] == before["run_id"]
    assert sorted(first["submitted"]) == sorted(targets.values()) and len(set(targets.values())) == 2
    again = launched(sweep, "--seeds", "0,1")  # twice = once
    assert again["submitted"] == [] and set(again["skipped"]) == set(targets.values())

    assert sweep_cli("wait", sweep).returncode == 0 and sweep_cli("collect", sweep).returncode == 0
    status = json.loads(sweep_cli("status", sweep, "--json").stdout)["runs"]
    assert {(s["state"], s["reason"]) for s in status if s["run_id"] in targets.values()} == {("done", "target")}
    for run_id in targets.values():
        spec = json.loads((sweep / "runs" / run_id / "spec.json").read_text())
        assert spec["role"] == "target" and spec["seed"] in targets and spec["budget"] == before["compute"]
        assert json.loads((sweep / "runs" / run_id / "status.json").read_text())["executor"] == "local"
    stored = roles(sweep)
    assert {stored[r] for r in targets.values()} == {"target"} and list(stored.values()).count("target") == 2

    after = proposed(sweep, "fit.bootstrap=12")  # the intervals move; the targets keep their prediction
    assert after["run_id"] == before["run_id"]
    checks = {c["run_id"]: c for c in after["trained_targets"]}
    assert set(checks) == set(targets.values())
    for check in checks.values():
        assert check["proposal_id"] == before["proposal_id"]
        assert [p["loss_interval"] for p in check["predictions"]] == [p["loss_interval"] for p in before["predictions"]]
    fitted = json.loads((sweep / "fits" / "fit.json").read_text())
    assert (
        fitted["n_runs"] == proxies
        and "2 target runs not fitted (fit.include_targets=true fits them)" in fitted["notes"]
    )


def test_propose_launch_submits_the_target_it_proposed_and_says_so(sweep):
    result = sweep_cli("propose", sweep, "--launch", "--executor", "debug")
    assert result.returncode == 0, result.stderr
    proposal = json.loads((sweep / "proposals" / f"{proposal_yaml(sweep).stem}.json").read_text())
    assert f"target run {proposal['run_id']} (seed 0) of {proposal['proposal_id']}: submitted" in result.stdout
    assert "submitted 1 runs in 1 debug jobs" in result.stdout
    assert RunDir(sweep / "runs" / proposal["run_id"]).state == "done"
    payload = proposed(sweep, "--launch", "--seeds", "0,3", "--executor", "debug")
    assert [t["seed"] for t in payload["launch"]["targets"]] == [0, 3]
    assert payload["launch"]["skipped"] == {proposal["run_id"]: "done"} and len(payload["launch"]["submitted"]) == 1


def test_retry_failed_resubmits_a_failed_target(sweep):
    (target,) = [t["run_id"] for t in launched(sweep, "--executor", "debug")["targets"]]
    run = RunDir(sweep / "runs" / target)
    run.result_file.unlink()
    run.set_state("failed", reason="killed by the test")
    assert launched(sweep, "--executor", "debug")["skipped"] == {target: "failed"}
    assert launched(sweep, "--executor", "debug", "--retry-failed")["submitted"] == [target]
    assert run.state == "done"


def tree(sweep: Path) -> dict[str, str]:
    return {
        str(p.relative_to(sweep)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sweep.rglob("*") if p.is_file()
    }


def refused(sweep: Path, proposal: Path, *args: str) -> str:
    """The one-line error of launching this proposal; nothing in the sweep changed."""
    before = tree(sweep)
    result = sweep_cli("launch", sweep, "--proposal", proposal, *args)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert tree(sweep) == before
    return result.stderr


def test_what_is_not_a_proposal_of_this_sweep_is_refused_and_nothing_is_written(sweep, tmp_path):
    assert "is not a file" in refused(sweep, tmp_path / "missing.yaml")
    assert "its run.role is proxy, not target" in refused(sweep, sweep / "config.yaml")
    edited = tmp_path / "edited.yaml"
    edited.write_text(proposal_yaml(sweep).read_text().replace("  batch_size: ", "  batch_size: 1"))
    assert f"is not a proposal of {sweep}" in refused(sweep, edited)
    other = trained_sweep(tmp_path / "other", "sweep.budgets=[1e11,3e11,1e12,3e12]")
    proposed(other)
    assert f"is not a proposal of {sweep}" in refused(sweep, proposal_yaml(other))
    assert "out of range" in refused(sweep, proposal_yaml(sweep), "--seeds", "-1")
    assert "not a comma-separated list" in refused(sweep, proposal_yaml(sweep), "--seeds", "0,one")


def test_propose_with_bad_launch_options_or_hparams_dir_writes_nothing(sweep, tmp_path):
    for args in (["--launch", "--seeds", "-1"], ["--launch", "--seeds", "0,x"], ["--hparams-from", tmp_path / "nope"]):
        before = tree(sweep)
        result = sweep_cli("propose", sweep, *args)
        assert result.returncode == 2 and result.stderr.startswith("error: "), result.stderr
        assert tree(sweep) == before, args


def test_seeds_and_executor_without_a_launch_are_refused(sweep):
    for command in (["launch", sweep, "--seeds", "0"], ["propose", sweep, "--seeds", "0"]):
        result = sweep_cli(*command)
        assert result.returncode == 2 and "give --" in result.stderr


def test_propose_recommends_the_approach_with_the_lowest_backtest_error(sweep):
    payload = proposed(sweep)
    chosen = payload["recommendation"]
    assert payload["recommended"] == chosen["approach"] in [p["approach"] for p in payload["predictions"]]
    offered = {a: e for a, e in chosen["errors"].items() if a in [p["approach"] for p in payload["predictions"]]}
    assert chosen["method"] == "backtest" and chosen["held_out_budget"] == 1e12
    assert chosen["approach"] == min(offered, key=lambda a: abs(offered[a]))
    human = sweep_cli("propose", sweep)
    assert f"* {chosen['approach']}" in human.stdout and f"recommended: {chosen['approach']}, " in human.stdout
    assert f"# recommended: {chosen['approach']}, " in proposal_yaml(sweep).read_text()
