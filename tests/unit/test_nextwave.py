"""The next wave (sweep/nextwave.py, `sweep propose --next-wave`): its scoring prefers runs that inform
the target, the greedy keeps to the allowance, the wave it plans is what `sweep launch` trains, and
bad input is refused before anything is written."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from sweep import api
from sweep.config import compose
from sweep.errors import UserError
from sweep.fit.report import fit_all
from sweep.nextwave import (
    TRUTHS,
    Candidate,
    Simulation,
    Target,
    candidates,
    check_affordable,
    fitted_table,
    next_budgets,
    next_wave,
)
from sweep.plan.grids import make_plan, run_spec, shape_rules
from sweep.propose import propose, target_shapes
from tests.conftest import REPO, sweep_cli

spec = importlib.util.spec_from_file_location("next_wave_bench", REPO / "bench" / "next_wave.py")
bench = sys.modules.setdefault("next_wave_bench", importlib.util.module_from_spec(spec))
spec.loader.exec_module(bench)

# The noop trainer's law (Hoffmann et al.'s) puts each budget's minimum inside its sizes at 10 tokens per parameter;
# its losses have no noise, so the bootstrap adds seed noise for an interval to narrow.
NOOP = ["launcher.trainer=noop", "fit.bootstrap=60", "fit.seed_noise=0.005", "sweep.tokens_per_param=10",
        "sweep.budgets=[3e10,1e11,3e11]", "sweep.sizes_per_budget=4", "sweep.max_extensions=0"]  # fmt: skip


@pytest.fixture(scope="module")
def known():
    """The demo's grid with losses from a known law (1% noise), fitted, and its target proposed."""
    config = compose(["fit.bootstrap=100"])
    runs = bench.synthetic_runs(make_plan(config).specs, bench.LAWS["balanced"], 0.01, seed=0)
    report = fit_all(runs, config.fit)
    proposal = propose(report, runs, config, compute=3e13)
    return config, runs, report, proposal


def simulation(known) -> Simulation:
    config, runs, report, proposal = known
    shapes = target_shapes(report.parametric.law, config, proposal.compute)
    target = Target.of(shapes, proposal.compute, report.counting)
    return Simulation.start(report, fitted_table(runs, config.fit), target, config.fit)


def candidate(config, budget: float, n: float, seed: int = 0, kind: str = "test") -> Candidate:
    shape = shape_rules(config).snap(n)
    return Candidate(budget, shape, (run_spec(shape, budget, seed, config),), kind)


def test_a_run_at_a_larger_budget_narrows_the_interval_more_than_repeating_a_trained_one(known):
    config, runs, report, _ = known
    trained = runs.loc[runs["budget"] == max(config.sweep.budgets)].iloc[2]  # the largest budget's middle size
    repeat = candidate(config, trained["budget"], trained["N"], seed=1)  # the same (N, D), another seed
    assert (repeat.specs[0].tokens, repeat.shape.N) == (trained["D"], trained["N"])
    larger = candidate(config, next_budgets(config.sweep.budgets)[1], 2 * trained["N"])
    sim = simulation(known)
    before = sim.widths([(np.empty((2, 0)), np.empty((TRUTHS, 0)))])[0]
    with_repeat, with_larger = sim.widths([sim.outcomes(c, i, report.counting) for i, c in enumerate([repeat, larger])])
    assert with_larger < 0.85 * before and with_larger < 0.85 * with_repeat


def test_the_greedy_spends_no_more_than_the_allowance_and_says_what_it_expects(known):
    config, runs, report, proposal = known
    offered = candidates(fitted_table(runs, config.fit), set(runs["run_id"]), config)
    kinds = {c.kind for c in offered}
    assert {"edge", "next budget"} <= kinds and not set(runs["run_id"]) & {s.run_id for c in offered for s in c.specs}
    allowance = 2.5 * next_budgets(config.sweep.budgets)[0]  # two or three runs of the next budget
    wave = next_wave(report, runs, offered, config, proposal, None, allowance)
    assert wave.picks and 0 < wave.cost <= allowance
    assert wave.expected_width < wave.width == pytest.approx(np.diff(proposal.predictions[0].loss_interval)[0])
    payload = wave.to_dict()
    assert payload["cost"] == wave.cost and len(payload["runs"]) == len(wave.picks)
    assert any(p.candidate.kind == "next budget" for p in wave.picks)  # it buys extrapolation, not only cheap runs


def test_an_allowance_below_every_candidate_is_refused(known):
    config, runs, _, _ = known
    offered = candidates(fitted_table(runs, config.fit), set(runs["run_id"]), config)
    with pytest.raises(UserError, match="buys no run: the cheapest candidate costs"):
        check_affordable(offered, min(c.cost for c in offered) / 2)
    with pytest.raises(UserError, match="every candidate is planned already"):
        check_affordable([], 1e20)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A noop sweep of 3 budgets x 4 sizes, trained in-process and collected."""
    out = tmp_path_factory.mktemp("wave") / "s"
    api.plan(NOOP, out)
    api.launch(out, "debug")
    api.collect(out)
    return out


@pytest.fixture
def sweep_dir(trained, tmp_path) -> Path:
    return Path(shutil.copytree(trained, tmp_path / "s"))


def planned(sweep_dir: Path) -> list[dict]:
    return json.loads((sweep_dir / "plan.json").read_text())["runs"]


def test_the_wave_is_planned_and_sweep_launch_trains_exactly_its_runs(sweep_dir):
    result = sweep_cli("propose", sweep_dir, "--next-wave", "--budget-flops", "1e12", "--json")
    assert result.returncode == 0, result.stderr
    wave = json.loads(result.stdout)
    chosen = {run_id for run in wave["runs"] for run_id in run["run_ids"]}
    assert chosen and wave["cost"] <= 1e12 and wave["expected_width"] < wave["width"]
    assert {e["run_id"] for e in planned(sweep_dir) if e["wave"] == 1} == chosen
    assert json.loads((sweep_dir / "proposals" / "next-wave-1.json").read_text())["runs"] == wave["runs"]
    launched = api.launch(sweep_dir, "debug")
    assert set(launched.submitted) == chosen
    assert all((sweep_dir / "runs" / run_id / "result.json").is_file() for run_id in chosen)


def test_the_cli_prints_the_interval_before_the_expected_one_after_and_the_cost(sweep_dir):
    result = sweep_cli("propose", sweep_dir, "--next-wave", "--budget-flops", "1e12")
    assert result.returncode == 0, result.stderr
    assert "95% interval [" in result.stdout and "expected width after the wave:" in result.stdout
    assert "of 1e+12 FLOPs allowed" in result.stdout and f"sweep launch {sweep_dir}" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--next-wave", "--budget-flops", "0"], "--budget-flops 0.0 must be a positive number"),
        (["--next-wave", "--budget-flops", "1e3"], "buys no run"),
        (["--next-wave"], "--next-wave needs --budget-flops"),
        (["--budget-flops", "1e12"], "give --next-wave too"),
        (["--next-wave", "--budget-flops", "1e12", "--launch"], "apply to the target"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(sweep_dir, args, message):
    before = (sweep_dir / "plan.json").read_text()
    result = sweep_cli("propose", sweep_dir, *args)
    assert result.returncode == 2 and result.stderr.startswith("error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert (sweep_dir / "plan.json").read_text() == before and not list((sweep_dir / "proposals").glob("next-wave*"))


def test_a_sweep_approach_3_cannot_fit_gets_no_wave(tmp_path):
    out = tmp_path / "s"
    api.plan([*NOOP, "sweep.budgets=[3e10]"], out)  # 4 runs: fewer than Approach 3's 6 points
    api.launch(out, "debug")
    api.collect(out)
    with pytest.raises(UserError, match="Approach 3 has none"):
        api.propose_next_wave(out, 1e12)
    assert {e["wave"] for e in planned(out)} == {0} and not (out / "proposals").exists()


def test_sweep_run_with_an_allowance_adds_the_bought_wave(tmp_path):
    out = tmp_path / "s"
    report = api.run([*NOOP, "sweep.max_extensions=1", "sweep.next_wave_flops=1e12"], out, "debug", show_progress=False)
    recorded = json.loads((out / "proposals" / "next-wave-1.json").read_text())
    bought = {run_id for run in recorded["runs"] for run_id in run["run_ids"]}
    assert bought and {r.spec.run_id for r in report.waves[0]} == bought
    assert {e["run_id"] for e in planned(out) if e["wave"] == 1} == bought
    assert all(json.loads((out / "runs" / r / "status.json").read_text())["state"] == "done" for r in bought)


def test_an_allowance_in_the_config_that_buys_no_run_is_refused_before_the_sweep_starts():
    assert compose([]).sweep.next_wave_flops == 0  # sweep run keeps the edge extension
    for bad, message in (("-1", "next_wave_flops"), ("1e9", "buys no run: a run costs about its budget")):
        with pytest.raises(UserError, match=message):
            compose([f"sweep.next_wave_flops={bad}"])


def test_a_shared_sweeps_wave_is_decay_branches_off_its_trunks_costed_at_what_they_train(tmp_path):
    out = tmp_path / "wsd"
    budgets = "sweep.budgets=[6e10,7.7e10,1e11,1.3e11,1.7e11,2.2e11]"
    overrides = ["sweep=wsd", budgets, "launcher.trainer=noop", "fit.bootstrap=40", "fit.seed_noise=0.005",
                 "sweep.max_extensions=1", "sweep.next_wave_flops=2e11"]  # fmt: skip
    report = api.run(overrides, out, "debug", show_progress=False)
    wave = [r.spec for r in report.waves[0]]
    assert wave, "the allowance bought nothing"
    finished = {p.parent.name for p in (out / "runs").glob("*/result.json")}
    branches = [s for s in wave if s.role != "trunk"]
    assert branches and all(s.parent for s in branches)
    specs = {s.run_id: s for s in wave}
    for branch in branches:  # its trunk is in the wave (a continuation) or trained already
        assert branch.parent in specs or branch.parent in finished
    recorded = json.loads((out / "proposals" / "next-wave-1.json").read_text())
    assert recorded["cost"] <= 2e11
    alone = sum(s.tokens * api.describe(s).flops_per_token for s in branches)
    assert recorded["cost"] < alone  # each paid only its decay and the stable steps it added
    assert all(json.loads((out / "runs" / s.run_id / "status.json").read_text())["state"] == "done" for s in wave)


def test_sweep_run_that_cannot_buy_a_wave_stops_extending_and_says_why(tmp_path):
    out = tmp_path / "s"
    overrides = [*NOOP, "sweep.max_extensions=1", "sweep.next_wave_flops=1e12", "fit.bootstrap=0"]
    report = api.run(overrides, out, "debug", show_progress=False)  # no bootstrap: no interval to narrow
    assert report.waves == [] and report.proposal.predictions
    assert report.stopped.startswith("no wave 1 bought with sweep.next_wave_flops: --next-wave narrows")


def test_a_second_wave_is_refused_while_the_first_is_untrained(sweep_dir):
    first = sweep_cli("propose", sweep_dir, "--next-wave", "--budget-flops", "1e12", "--json")
    assert first.returncode == 0, first.stderr
    again = sweep_cli("propose", sweep_dir, "--next-wave", "--budget-flops", "1e12")
    assert again.returncode == 2 and "not trained yet" in again.stderr
    assert {e["wave"] for e in planned(sweep_dir)} == {0, 1}
