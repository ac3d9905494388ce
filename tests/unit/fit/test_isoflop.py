import dataclasses

import numpy as np
import pandas as pd
import pytest

from sweep.fit.bootstrap import draw, samples
from sweep.fit.errors import FitError
from sweep.fit.forms import Chinchilla
from sweep.fit.isoflop import budget_fits, fit_isoflop, isoflop_refits


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


@pytest.mark.parametrize("shift, edge, copy_factor", [(1 / 8, "above", 1.0), (8.0, "below", 0.999)])
def test_a_drawn_twice_edge_size_with_the_lowest_loss_is_an_edge(shift, edge, copy_factor):
    """Whichever copy of the smallest (largest) size has the lowest loss, the minimum is at the edge."""
    runs = isoflop_runs(TRUTH, [1e19], sizes=5, centre_shift=shift)
    lowest = runs.iloc[[int(np.argmin(runs["loss"]))]]
    [fit] = budget_fits(pd.concat([runs, lowest.assign(loss=lowest["loss"] * copy_factor)]))
    assert fit.edge == edge and not fit.centred


def noisy_sweep() -> pd.DataFrame:
    """1% noise on the losses; 3 sizes at the lowest budget (resamples often draw fewer distinct
    ones), two budgets of 5 sizes around the optimum and one of 5 sizes above it (off-centre)."""
    runs = pd.concat(
        [isoflop_runs(TRUTH, [1e18], sizes=3), isoflop_runs(TRUTH, [1e19, 1e20], sizes=5),
         isoflop_runs(TRUTH, [1e21], sizes=5, centre_shift=8.0)],
        ignore_index=True,
    )  # fmt: skip
    return runs.assign(loss=runs["loss"] * np.exp(np.random.default_rng(0).normal(0, 0.01, len(runs))))


def flattened(value) -> list:
    """A fit's fields, its nested dataclasses and lists unrolled (value: dataclasses.astuple of it)."""
    if isinstance(value, tuple | list):
        return [item for v in value for item in flattened(v)]
    return [value]


def assert_same_fit(fit, reference) -> None:
    """Every field equal: floats to 1e-10 relative, the rest (counts, flags, edges) exactly."""
    values, expected = (np.array(flattened(dataclasses.astuple(f)), dtype=object) for f in (fit, reference))
    assert [type(v) for v in values] == [type(v) for v in expected]
    floats = np.array([isinstance(v, float) for v in expected])
    assert list(values[~floats]) == list(expected[~floats])
    assert list(values[floats]) == pytest.approx(list(expected[floats]), rel=1e-10, nan_ok=True)


def fit_or_none(sample: pd.DataFrame, exclude_off_centre: bool):
    try:
        return fit_isoflop(sample, exclude_off_centre)
    except FitError:
        return None


@pytest.mark.parametrize("seed_noise", [0.0, 0.01])
@pytest.mark.parametrize("exclude_off_centre", [True, False])
def test_the_batched_refits_are_the_one_at_a_time_refits(exclude_off_centre, seed_noise):
    runs = noisy_sweep()
    draws = draw(runs, 200, seed=3, by="budget", seed_noise=seed_noise)
    (resamples,) = draws.batches(elements=10**9)
    batch = isoflop_refits(runs, resamples, exclude_off_centre)
    one_at_a_time = [fit_or_none(sample, exclude_off_centre) for sample in samples(runs, draws)]

    assert [fit is None for fit in batch] == [fit is None for fit in one_at_a_time]
    for fit, reference in zip(batch, one_at_a_time, strict=True):
        if fit is not None:
            assert_same_fit(fit, reference)
    fitted = [fit for fit in batch if fit is not None]
    assert len(fitted) > 100 and any(len(fit.budgets) < 4 for fit in fitted)  # a budget left out: < 3 sizes
    assert any(not b.centred for fit in fitted for b in fit.budgets)
    if exclude_off_centre:
        assert len(fitted) < len(batch)  # fewer than 2 centred budgets: no fit


def test_the_batched_refits_need_resamples_drawn_within_budgets():
    runs = noisy_sweep()
    with pytest.raises(ValueError, match="within budgets"):
        isoflop_refits(runs, next(draw(runs, 5).batches()))
