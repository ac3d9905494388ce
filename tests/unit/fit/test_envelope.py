import numpy as np
import pandas as pd
import pytest

from sweep.config import FitConfig
from sweep.fit.bootstrap import draw
from sweep.fit.envelope import GRID_POINTS, EnvelopeFit, envelope_refits, fit_envelope, on_grid
from sweep.fit.errors import FitError
from sweep.fit.forms import PowerLaw
from sweep.fit.report import fit_all
from tests.unit.fit.test_isoflop import TRUTH, assert_same_fit, isoflop_runs


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


def envelope_on(curves: pd.DataFrame, run_ids, grid: np.ndarray) -> EnvelopeFit | None:
    """The reference: fit_envelope's steps on the curves of run_ids, read on a given grid."""
    chosen = curves[curves["run_id"].isin(run_ids)]
    runs = [run.sort_values("flops") for _, run in chosen.groupby("run_id", sort=False)]
    points = []
    for c in grid:
        reached = []  # (loss, N, tokens) of each run at c
        for run in runs:
            log_flops = np.log(run["flops"].to_numpy())
            if len(run) >= 2 and log_flops[0] <= np.log(c) <= log_flops[-1]:
                at_c = [np.exp(np.interp(np.log(c), log_flops, np.log(run[k].to_numpy()))) for k in ("loss", "tokens")]
                reached.append((at_c[0], run["N"].iloc[0], at_c[1]))
        if len(reached) < 3:
            continue
        loss, n, tokens = min(reached, key=lambda point: point[0])
        if n not in (min(p[1] for p in reached), max(p[1] for p in reached)):
            points.append((c, n, tokens, loss))
    if len({n for _, n, _, _ in points}) < 2:
        return None
    c, n, d, loss = (np.array(column) for column in zip(*points, strict=True))
    return EnvelopeFit(len(points), PowerLaw.fit(c, n), PowerLaw.fit(c, d), PowerLaw.fit(c, loss))


def noisy_curves() -> tuple[pd.DataFrame, pd.DataFrame]:
    """15 runs whose evaluations carry 0.5% noise; one run (r0) has no curve."""
    runs, curves = with_curves(isoflop_runs(TRUTH, [1e18, 1e19, 1e20], sizes=5))
    curves = curves[curves["run_id"] != "r0"]
    noise = np.exp(np.random.default_rng(0).normal(0, 0.005, len(curves)))
    evaluations = curves.assign(N=curves["run_id"].map(runs.set_index("run_id")["N"]), loss=curves["eval_loss"] * noise)
    return runs, evaluations


def test_the_point_fit_is_the_envelope_on_the_grid_of_its_runs():
    _, curves = noisy_curves()
    grid = np.logspace(np.log10(curves["flops"].min()), np.log10(curves["flops"].max()), GRID_POINTS)
    assert fit_envelope(curves) == envelope_on(curves, curves["run_id"].unique(), grid)


def test_the_batched_refits_are_one_at_a_time_refits_on_the_full_grid():
    runs, curves = noisy_curves()
    grid = np.logspace(np.log10(curves["flops"].min()), np.log10(curves["flops"].max()), GRID_POINTS)
    (resamples,) = draw(runs, 200, seed=1).batches(elements=10**9)
    run_ids = runs["run_id"].to_numpy()[resamples.rows]
    batch = envelope_refits(on_grid(curves), run_ids)
    one_at_a_time = [envelope_on(curves, ids, grid) for ids in run_ids]

    assert [fit is None for fit in batch] == [fit is None for fit in one_at_a_time]
    assert 0 < sum(fit is None for fit in batch) < 100  # some resamples have too few interior optima
    for fit, reference in zip(batch, one_at_a_time, strict=True):
        if fit is not None:
            assert_same_fit(fit, reference)
