import numpy as np
import pandas as pd
import pytest

from sweep.fit.errors import FitError
from sweep.fit.forms import Chinchilla
from sweep.fit.isoflop import fit_isoflop


def isoflop_runs(truth: Chinchilla, budgets, centre_shift=1.0, sizes=7, span=30.0):
    rows = []
    for c in budgets:
        n_opt = truth.optimal_params(c) * centre_shift
        for n in n_opt * span ** np.linspace(-0.5, 0.5, sizes):
            d = c / (6 * n)
            rows.append({"N": n, "D": d, "C": c, "loss": truth.loss(n, d), "budget": c})
    return pd.DataFrame(rows)


TRUTH = Chinchilla(E=1.7, A=400.0, B=410.0, alpha=0.34, beta=0.28)


def test_vertices_follow_the_true_frontier():
    budgets = [1e18, 1e19, 1e20, 1e21]
    fit = fit_isoflop(isoflop_runs(TRUTH, budgets))
    assert all(b.centred for b in fit.budgets)
    expected = TRUTH.beta / (TRUTH.alpha + TRUTH.beta)
    assert fit.N_star.exponent == pytest.approx(expected, abs=0.03)
    for b in fit.budgets:
        assert b.N_star == pytest.approx(float(TRUTH.optimal_params(b.budget)), rel=0.15)


def test_budgets_with_the_minimum_at_an_edge_are_flagged_and_left_out():
    budgets = [1e18, 1e19, 1e20]
    runs = pd.concat([isoflop_runs(TRUTH, budgets[:2]), isoflop_runs(TRUTH, budgets[2:], centre_shift=40.0)])
    fit = fit_isoflop(runs)
    off = [b for b in fit.budgets if not b.centred]
    assert [b.budget for b in off] == [1e20] and off[0].edge == "below"
    with pytest.raises(FitError, match="interior minimum"):
        fit_isoflop(isoflop_runs(TRUTH, budgets, centre_shift=40.0))
