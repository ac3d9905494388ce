import numpy as np
import pandas as pd
import pytest

from sweep.config import FitConfig, TrainConfig
from sweep.fit.forms import PowerLaw
from sweep.fit.hparams import LrLaw, fit_hparams, grid_runs, target_hparams
from sweep.fit.report import fit_all
from tests.unit.fit.test_isoflop import TRUTH, isoflop_runs

LR_TRUTH = LrLaw(a=0.5, b=-0.4, c=0.1)  # eta*(N, D)
BATCH_TRUTH = PowerLaw(coefficient=0.02, exponent=0.5)  # B*(D), sequences
LR_MULTIPLIERS = (0.25, 0.5, 1.0, 2.0, 4.0)
BATCH_MULTIPLIERS = (0.5, 1.0, 2.0)
# (budget, N): three budgets, two sizes each, so that N and D vary apart
GROUPS = [(c, n) for c in (1e12, 1e13, 1e14) for n in (np.sqrt(c / 6 / 40) / 2, np.sqrt(c / 6 / 40) * 2)]


def grid(groups=GROUPS, noise=0.002, lr_off=None, seed=0) -> pd.DataFrame:
    """Losses with a quadratic bowl in (log LR, log B) around the true optima, each grid centred
    within a factor 1.6 of them (as a rule would be); lr_off shifts the LR grid of every group."""
    rng = np.random.default_rng(seed)
    rows = []
    for budget, n in groups:
        d = budget / (6 * n)
        lr_star, batch_star = LR_TRUTH(n, d), BATCH_TRUTH(d)
        lr_centre = lr_star * (lr_off or np.exp(rng.uniform(-0.5, 0.5)))
        batch_centre = batch_star * np.exp(rng.uniform(-0.3, 0.3))
        floor = 2.0 + 10 / n**0.3
        for k in LR_MULTIPLIERS:
            for m in BATCH_MULTIPLIERS:
                lr, batch = lr_centre * k, round(batch_centre * m)
                bowl = 0.04 * np.log(lr / lr_star) ** 2 + 0.04 * np.log(batch / batch_star) ** 2
                rows.append({"budget": budget, "N": n, "D": d, "C": budget, "lr": lr, "batch_size": batch,
                             "loss": (floor + bowl) * np.exp(rng.normal(0, noise))})  # fmt: skip
    return pd.DataFrame(rows)


def test_known_power_laws_are_recovered_and_their_intervals_cover_them():
    fit = fit_hparams(grid(), FitConfig(bootstrap=100))
    assert all(not g.lr_edge and not g.batch_edge for g in fit.groups)
    for g in fit.groups:
        assert g.lr == pytest.approx(LR_TRUTH(g.N, g.D), rel=0.1)
        assert g.batch == pytest.approx(BATCH_TRUTH(g.D), rel=0.15)
    assert fit.lr_law.b == pytest.approx(LR_TRUTH.b, abs=0.05)
    assert fit.lr_law.c == pytest.approx(LR_TRUTH.c, abs=0.05)
    assert fit.batch_law.exponent == pytest.approx(BATCH_TRUTH.exponent, abs=0.05)
    out = fit.to_dict()
    for key, truth in (("b", LR_TRUTH.b), ("c", LR_TRUTH.c)):
        lo, hi = out["lr_law"]["intervals"][key]
        assert lo <= truth <= hi
    lo, hi = out["batch_law"]["intervals"]["exponent"]
    assert lo <= BATCH_TRUTH.exponent <= hi
    n, d = 1e7, 1e10  # beyond the grid: the laws extrapolate
    lr, band = fit.lr_at(n, d)
    assert lr == pytest.approx(LR_TRUTH(n, d), rel=0.2) and band[0] <= lr <= band[1]


def test_an_optimum_at_the_edge_of_its_grid_is_flagged_and_leaves_the_law_unidentified():
    fit = fit_hparams(grid(lr_off=6.0), FitConfig(bootstrap=10))  # every grid's LRs 1.5x to 24x too high
    assert all(g.lr_edge == "the optimum lies below the smallest LR trained" for g in fit.groups)
    assert fit.lr_law is None and "needs 3+ sizes or budgets with an interior LR optimum; 0 of 6" in fit.lr_why
    assert fit.batch_law is not None  # the batch is still measured
    tuned = target_hparams(fit, 1e7, 1e10, TrainConfig())
    assert tuned.lr == 0 and tuned.lr_from.startswith("assumed: rule (eta*(N, D) unidentified")
    assert tuned.batch_from.startswith("fit: B*(D)")


def test_one_size_per_budget_cannot_tell_n_from_d():
    one_size = [(c, np.sqrt(c / 6 / 40)) for c in (1e12, 1e13, 1e14)]
    fit = fit_hparams(grid(one_size), FitConfig(bootstrap=10))
    assert fit.lr_law is None and "sweep.sizes_per_budget" in fit.lr_why
    assert fit.batch_law is not None


def test_a_single_group_reports_its_optimum_only():
    fit = fit_hparams(grid(GROUPS[:1]), FitConfig(bootstrap=20))
    (group,) = fit.to_dict()["groups"]
    assert group["lr"] == pytest.approx(LR_TRUTH(group["N"], group["D"]), rel=0.1)
    assert group["lr_interval"][0] <= group["lr"] <= group["lr_interval"][1]
    assert fit.lr_law is None and fit.batch_law is None and "its optimum only" in fit.lr_why


def test_the_grid_is_left_out_of_the_isoflop_approaches_and_fitted_on_its_own():
    isoflop = isoflop_runs(TRUTH, [1e18, 1e19, 1e20]).assign(lr=1e-3, batch_size=32)
    runs = pd.concat([isoflop, grid()], ignore_index=True)
    assert grid_runs(runs).tolist() == [False] * len(isoflop) + [True] * (len(runs) - len(isoflop))
    report = fit_all(runs, FitConfig(bootstrap=5))
    assert report.n_runs == len(isoflop) and report.grid_left_out == len(runs) - len(isoflop)
    assert report.hparams.lr_law is not None
    assert any("LR x batch grid left out of Approaches 1-3" in note for note in report.notes())
    only_grid = fit_all(grid(), FitConfig(bootstrap=5))  # no IsoFLOP runs: no approach, and no error
    assert only_grid.parametric is None and "approach3" in only_grid.errors and only_grid.hparams is not None
