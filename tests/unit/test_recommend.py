"""Which prediction to trust: scored on the sweep's own top budget, else a fixed order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sweep import recommend as recommend_module
from sweep.config import FitConfig
from sweep.fit.errors import FitError
from sweep.recommend import FIXED_ORDER, recommend
from tests.unit.fit.test_isoflop import TRUTH, isoflop_runs

BUDGETS = [1e18, 1e19, 1e20, 1e21]
CONFIG = FitConfig(bootstrap=0)
BOTH = ["approach3", "approach2"]


def runs_with_top_budget_scaled(factor: float):
    """Runs on TRUTH's frontier, the top budget's losses times `factor` (below 1: better than the law)."""
    runs = isoflop_runs(TRUTH, BUDGETS)
    runs.loc[runs["budget"] == BUDGETS[-1], "loss"] *= factor
    return runs


def test_on_the_true_law_approach3_wins_and_approach2s_power_law_runs_low():
    chosen = recommend(BOTH, runs_with_top_budget_scaled(1.0), CONFIG)
    assert chosen.method == "backtest" and chosen.held_out_budget == BUDGETS[-1]
    assert chosen.approach == "approach3" == min(chosen.errors, key=lambda a: abs(chosen.errors[a]))
    assert abs(chosen.errors["approach3"]) < 1e-6  # exact data, the right form
    assert chosen.errors["approach2"] < -0.02  # L*(C) without a floor, extrapolated
    assert "held-out top budget C = 1e+21" in chosen.why and "3 budgets below it" in chosen.why


def test_a_top_budget_that_beats_the_floor_makes_approach2_the_one_to_trust():
    truth = recommend(BOTH, runs_with_top_budget_scaled(1.0), CONFIG)
    chosen = recommend(BOTH, runs_with_top_budget_scaled(0.95), CONFIG)
    assert chosen.approach == "approach2" == min(chosen.errors, key=lambda a: abs(chosen.errors[a]))
    # The predictions come from the budgets below only: each error moves by the held-out loss alone.
    for approach in BOTH:
        assert chosen.errors[approach] == pytest.approx((1 + truth.errors[approach]) / 0.95 - 1, rel=1e-6)
    assert chosen.observed_loss == pytest.approx(0.95 * truth.observed_loss, rel=1e-9)


def test_only_an_approach_that_predicts_the_target_is_recommended():
    chosen = recommend(["approach2", "approach1"], runs_with_top_budget_scaled(1.0), CONFIG)
    assert chosen.approach == "approach2" and chosen.method == "backtest"
    assert abs(chosen.errors["approach3"]) < abs(chosen.errors["approach2"])  # scored, but not on offer
    assert "approach1" not in chosen.errors  # no curves: not fitted below, not scored
    alone = recommend(["approach1"], runs_with_top_budget_scaled(1.0), CONFIG)
    assert (alone.approach, alone.method) == ("approach1", "only one")


def test_fewer_than_three_budgets_fall_back_to_the_fixed_order_and_say_so():
    two = isoflop_runs(TRUTH, BUDGETS[:2])
    chosen = recommend(BOTH, two, CONFIG)
    assert (chosen.approach, chosen.method, chosen.errors) == ("approach3", "fixed order", {})
    assert "2 budgets are too few for a backtest" in chosen.why and ", ".join(FIXED_ORDER) in chosen.why
    assert recommend(["L(C) form", "approach1", "approach2"], two, CONFIG).approach == "approach2"


def test_a_backtest_whose_fit_fails_never_fails_the_recommendation(monkeypatch):
    def broken(*args, **kwargs):
        raise FitError("the optimizer\nexploded")

    monkeypatch.setattr(recommend_module, "approach3", broken)
    chosen = recommend(BOTH, runs_with_top_budget_scaled(1.0), CONFIG)
    assert (chosen.approach, chosen.method) == ("approach3", "fixed order")
    assert "the backtest failed (FitError: the optimizer exploded)" in chosen.why  # one line


def test_a_bug_in_the_backtest_keeps_its_traceback(monkeypatch):
    def buggy(*args, **kwargs):
        raise TypeError("a bug, not a bad fit")

    monkeypatch.setattr(recommend_module, "approach3", buggy)
    with pytest.raises(TypeError):
        recommend(BOTH, runs_with_top_budget_scaled(1.0), CONFIG)


def test_a_backtest_that_scores_no_offered_approach_falls_back():
    one_size_each = isoflop_runs(TRUTH, BUDGETS, sizes=1)  # nothing can be fitted on one run per budget
    chosen = recommend(["approach1", "approach2"], one_size_each, CONFIG)
    assert (chosen.approach, chosen.method) == ("approach2", "fixed order")
    assert "scores none of the approaches" in chosen.why


def test_no_prediction_no_recommendation():
    chosen = recommend([], runs_with_top_budget_scaled(1.0), CONFIG)
    assert chosen.approach is None and chosen.why == "no approach predicts the target"


def curves_of(runs):
    """Each run's held-out loss at 8 points along its training, as TRUTH gives it."""
    rows = []
    for run in runs.itertuples():
        for fraction in np.linspace(0.3, 1.0, 8):
            tokens = fraction * run.D
            rows.append({"run_id": run.run_id, "step": int(100 * fraction), "tokens": tokens,
                         "flops": run.C * fraction, "eval_loss": TRUTH.loss(run.N, tokens)})  # fmt: skip
    return pd.DataFrame(rows)


def test_every_approach_is_scored_on_the_held_out_budget_from_the_budgets_below_alone():
    runs = isoflop_runs(TRUTH, [1e17, *BUDGETS])
    runs["run_id"] = [f"r{i}" for i in range(len(runs))]
    config = FitConfig(bootstrap=0, forms=["chinchilla", "compute"])
    approaches = ["approach3", "approach2", "approach1", "L(C) form"]
    chosen = recommend(approaches, runs, config, curves_of(runs))
    assert set(chosen.errors) == set(approaches)
    assert chosen.approach == min(chosen.errors, key=lambda a: abs(chosen.errors[a]))
    below = runs[runs["budget"] < BUDGETS[-1]]
    assert recommend(approaches, runs, config, curves_of(below)).errors == chosen.errors  # top budget's curves unused
