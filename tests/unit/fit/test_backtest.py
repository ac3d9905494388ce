import numpy as np
import pytest

from sweep.config import FitConfig
from sweep.fit.backtest import backtest
from sweep.fit.errors import FitError
from tests.unit.fit.test_isoflop import TRUTH, isoflop_runs

BUDGETS = [1e18, 3e18, 1e19, 3e19, 1e20, 1e21]


def noisy(runs, sigma=0.003, seed=0):
    runs = runs.copy()
    runs["loss"] *= np.exp(np.random.default_rng(seed).normal(0, sigma, len(runs)))
    return runs


def test_held_out_budgets_are_predicted_from_the_smaller_ones():
    result = backtest(noisy(isoflop_runs(TRUTH, BUDGETS)), FitConfig(bootstrap=0), holdout_top=2)
    assert result.fitted_budgets == BUDGETS[:-2] and [b.budget for b in result.held_out] == BUDGETS[-2:]
    assert result.n_held_out_runs == 14 and result.n_fitted_runs == 28
    assert result.loss_mean_ape < 1.0  # the law is right and the noise is 0.3%
    for budget in result.held_out:
        errors = budget.errors()
        assert budget.observed_N_star is not None
        assert abs(errors["approach3_L_star"]) < 0.01
        # Approach 2's L*(C) is a pure power law, without the floor E: extrapolated, it runs low.
        assert errors["approach2_L_star"] < 0
        assert abs(errors["approach3_N_star"]) < 0.25 and abs(errors["approach2_N_star"]) < 0.25


def test_a_wrong_law_shows_up_as_a_large_error():
    runs = isoflop_runs(TRUTH, BUDGETS)
    top = runs["budget"] >= BUDGETS[-2]
    runs.loc[top, "loss"] *= 1.05  # the big runs do worse than the small ones promise
    result = backtest(runs, FitConfig(bootstrap=0), holdout_top=2)
    assert result.loss_mean_ape == pytest.approx(100 * (1 - 1 / 1.05), rel=0.05)


def test_holding_out_too_much_is_a_user_error():
    with pytest.raises(FitError, match="hold out between 1 and 4"):
        backtest(isoflop_runs(TRUTH, BUDGETS), FitConfig(bootstrap=0), holdout_top=5)
