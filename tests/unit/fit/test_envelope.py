import numpy as np
import pandas as pd
import pytest

from sweep.config import FitConfig
from sweep.fit.envelope import fit_envelope
from sweep.fit.errors import FitError
from sweep.fit.report import fit_all
from tests.unit.fit.test_isoflop import TRUTH, isoflop_runs


def with_curves(runs: pd.DataFrame, evals: int = 12) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Give every run an id and a curve on which the loss after d tokens is the law's L(N, d)."""
    runs = runs.assign(run_id=[f"r{i}" for i in range(len(runs))])
    rows = []
    for run in runs.itertuples():
        for d in run.D * np.arange(1, evals + 1) / evals:
            rows.append({"run_id": run.run_id, "step": 0, "tokens": d, "flops": 6 * run.N * d,
                         "eval_loss": TRUTH.loss(run.N, d)})  # fmt: skip
    return runs, pd.DataFrame(rows)


def test_the_envelope_follows_the_true_compute_optimal_frontier():
    runs, curves = with_curves(isoflop_runs(TRUTH, [1e18, 1e19, 1e20, 1e21], sizes=9, span=30.0))
    fit = fit_envelope(curves.assign(N=curves["run_id"].map(runs.set_index("run_id")["N"]), loss=curves["eval_loss"]))
    assert fit.N_star.exponent == pytest.approx(TRUTH.beta / (TRUTH.alpha + TRUTH.beta), abs=0.05)
    assert fit.D_star.exponent == pytest.approx(TRUTH.alpha / (TRUTH.alpha + TRUTH.beta), abs=0.05)
    for c in (1e19, 1e20):  # the runs are a factor 30/8 apart in N: the winner is within that of the truth
        assert 0.5 < fit.N_star(c) / TRUTH.optimal_params(c) < 2


def test_fit_all_reports_approach_1_with_intervals_when_curves_are_given():
    runs, curves = with_curves(isoflop_runs(TRUTH, [1e18, 1e19, 1e20], sizes=7))
    out = fit_all(runs, FitConfig(bootstrap=20), curves).to_dict()
    assert out["approach1"]["points"] > 5 and out["approach1"]["bootstrap"] > 10
    assert out["approach1"]["N_star"]["exponent_interval"] is not None
    assert "approach1" not in fit_all(runs, FitConfig(bootstrap=0)).to_dict()  # no curves, no Approach 1


def test_final_points_alone_are_not_an_envelope():
    runs, curves = with_curves(isoflop_runs(TRUTH, [1e18, 1e19], sizes=5), evals=1)
    report = fit_all(runs, FitConfig(bootstrap=0), curves)
    assert "training curves" in report.errors["approach1"]
    with pytest.raises(FitError):
        fit_envelope(curves.assign(N=1e6, loss=curves["eval_loss"]))
