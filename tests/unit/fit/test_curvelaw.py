import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from bench.curve_law import WSD_OVERRIDES, train_set, wsd_family
from sweep import api
from sweep.config import FitConfig, compose
from sweep.errors import UserError
from sweep.fit.backtest import backtest
from sweep.fit.curvelaw import (
    CurveLaw,
    RunCurve,
    areas,
    backtest_curves,
    fit_curve_law,
    fit_group,
    fit_points,
    predicted_points,
)
from sweep.fit.report import fit_all
from sweep.plan.flops import spec_counts
from sweep.plan.grids import single_run_spec

TRUTH = CurveLaw(L0=1.6, A=40.0, alpha=0.35, C=4e-4, decay=0.99)
EVALS = 12


@pytest.fixture(scope="module")
def base():
    return single_run_spec(compose(["run.d_model=32", "run.n_layers=2", "run.tokens=100000", "run.batch_size=8"]))


def curve_of(spec, trunk: RunCurve | None = None, law=TRUTH) -> RunCurve:
    """A run whose evaluations lie on the law exactly: EVALS evenly spaced, or a branch's trunk's up
    to its branch point and 4 within its decay."""
    total = spec.steps
    steps = np.linspace(total / EVALS, total, EVALS).round().astype(int)
    if trunk is not None:
        inherited = trunk.steps[trunk.steps <= spec.branch_step]
        steps = np.r_[inherited, np.linspace(spec.branch_step, total, 5)[1:].round()].astype(int)
    forward, annealing = areas(spec, law.decay, law.per)
    losses = law.loss(forward[steps - 1], annealing[steps - 1])
    return RunCurve(spec.run_id, spec, steps, losses, float(losses[-1]))


def family_curves(family) -> list[RunCurve]:
    trunk = curve_of(family[0])
    return [trunk, *(curve_of(branch, trunk) for branch in family[1:])]


def cosine(base, tokens, batch):
    return replace(base, tokens=tokens, batch_size=batch)


def test_the_fit_recovers_the_law_of_cosine_curves_at_different_batches(base):
    curves = [curve_of(cosine(base, t, b)) for t, b in ((300_000, 4), (800_000, 7), (2_000_000, 11))]
    law = fit_curve_law(curves)
    assert law.decay == TRUTH.decay
    for name in ("L0", "A", "alpha", "C"):
        assert getattr(law, name) == pytest.approx(getattr(TRUTH, name), rel=1e-3), name


def test_the_fit_recovers_the_law_of_a_wsd_trunk_and_its_branches(base):
    family = wsd_family(
        base, [(400, 0.2, "linear"), (1000, 0.2, "linear"), (1000, 0.4, "one_minus_sqrt")], warmup_steps=20
    )
    law = fit_curve_law(family_curves(family))
    assert law.decay == TRUTH.decay
    for name in ("L0", "A", "alpha", "C"):
        assert getattr(law, name) == pytest.approx(getattr(TRUTH, name), rel=1e-3), name


def test_a_branch_copy_of_its_trunk_rows_is_fitted_once(base):
    trunk_curve, branch_curve = family_curves(wsd_family(base, [(1000, 0.2, "linear")], warmup_steps=20))
    inherited = branch_curve.steps <= branch_curve.spec.branch_step
    own = fit_points([branch_curve], (0.99,), "tokens")
    both = fit_points([trunk_curve, branch_curve], (0.99,), "tokens")
    assert inherited.sum() > 5
    assert (
        len(both.loss) == len(own.loss) == len(fit_points([trunk_curve], (0.99,), "tokens").loss) + (~inherited).sum()
    )


def test_the_law_predicts_the_final_loss_of_schedules_not_run(base):
    fitted = fit_group([curve_of(cosine(base, t, 8)) for t in (300_000, 800_000, 2_000_000)])
    unseen = [
        cosine(base, 5_000_000, 8),  # another token count, 2.5x past the longest run
        replace(base, tokens=1_500_000, batch_size=8, schedule="wsd", decay_frac=0.3, decay_shape="one_minus_sqrt"),
        replace(base, tokens=1_500_000, batch_size=8, schedule="wsd", decay_frac=0.1),
    ]
    for spec in unseen:
        assert fitted.final_loss(spec) == pytest.approx(TRUTH.final_loss(spec), rel=1e-4)
    assert fitted.final_loss(unseen[1]) != pytest.approx(fitted.final_loss(unseen[2]), rel=1e-3)  # decays differ


def test_a_group_of_one_run_is_reported_not_backtested(base):
    curves = [curve_of(cosine(base, t, 8)) for t in (300_000, 800_000)]
    alone = curve_of(replace(base, d_model=48, tokens=500_000))  # another shape
    result = backtest_curves([*curves, alone])
    assert [c.run_id for c in result.checks] == [c.run_id for c in curves]
    assert result.unchecked == [f"48x2 (lr {base.lr:.3g}): 1 run, none other to fit its law from"]


def test_too_few_points_are_a_reason_not_a_crash(base):
    short = [replace(curve_of(cosine(base, t, 8)), steps=np.array([t // 1024]), losses=np.array([2.0]))
             for t in (300_000, 800_000, 900_000)]  # fmt: skip
    result = backtest_curves(short)
    assert all(c.predicted is None and "curve law needs 5" in c.why for c in result.checks)
    assert result.ape() == (None, None)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A real WSD set, trained here: per shape a trunk and 4 branches (~15 s on one thread)."""
    out = tmp_path_factory.mktemp("wsd") / "sweep"
    branches = [(60, 0.2, "linear"), (100, 0.2, "linear"), (160, 0.2, "linear"), (160, 0.4, "one_minus_sqrt")]
    overrides = [o for o in WSD_OVERRIDES if not o.startswith("data=")] + ["data=synthetic", "data.vocab_size=32",
                 "data.synthetic_tokens=400000", "train.eval_points=6"]  # fmt: skip
    return train_set(out, overrides, [(16, 1), (24, 1)], branches, warmup_steps=6)


def test_the_backtest_on_real_curves_beats_the_nearest_run_baseline(trained):
    result = api.curve_backtest(trained)
    assert len(result.checks) == 8 and not result.unchecked
    (mean, top), (baseline_mean, _) = result.ape(), result.ape(baseline=True)
    assert mean < 0.6 * baseline_mean, (mean, baseline_mean)  # measured: 0.14% against 0.31%
    assert top < 1


def test_predicted_points_are_other_token_counts_marked_predicted(trained):
    runs = api.finished_runs(trained)
    runs["budget"] = runs["C"].map(lambda c: float(f"{c:.2g}"))
    points = predicted_points(runs, api.stored_curves(api.SweepDir.open(trained)))
    assert len(points) and points["predicted"].all() and points["run_id"].str.startswith("predicted-").all()
    merged = points.merge(runs[runs["role"] != "trunk"], on=["d_model", "n_layers", "D"])
    assert merged.empty  # no point at a token count a run of its shape trained at


def test_a_csv_or_a_sweep_without_curves_is_a_user_error(tmp_path):
    csv = tmp_path / "runs.csv"
    pd.DataFrame({"N": [1e6], "D": [1e7], "loss": [2.0]}).to_csv(csv, index=False)
    with pytest.raises(UserError, match="--curves needs a sweep directory"):
        api.curve_backtest(csv)
    with pytest.raises(UserError, match="does not exist"):
        api.curve_backtest(tmp_path / "nowhere")
    empty, _ = api.plan(["sweep=smoke"], tmp_path / "planned")
    with pytest.raises(UserError, match="no results store"):
        api.curve_backtest(empty.path)
    api.collect(empty.path)
    with pytest.raises(UserError, match="no finished runs with training curves"):
        api.curve_backtest(empty.path)


def test_approach3_takes_the_predicted_points_only_when_asked(trained):

    runs, curves = api.finished_runs(trained), api.stored_curves(api.SweepDir.open(trained))
    without = fit_all(runs, FitConfig(bootstrap=0), curves, allow_unfitted=True)
    with_points = fit_all(runs, FitConfig(bootstrap=0, curve_law_points=True), curves, allow_unfitted=True)
    assert without.curve_law_points == 0
    assert with_points.curve_law_points == len(predicted_points(runs, curves)) > 0
    assert any("final losses predicted by the curve law" in note for note in with_points.notes())


def synthetic_sweep(base) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A store's runs and curves: 3 shapes at 4 budgets, not each at every budget, each shape's curves
    on a law of its own."""
    runs, curves = [], []
    for d_model, budgets in ((16, (3e10, 1e11, 3e11)), (24, (3e10, 1e11, 3e11, 1e12)), (32, (1e11, 3e11, 1e12))):
        law = replace(TRUTH, L0=1.2 + 8 / d_model)
        for budget in budgets:
            shape = replace(base, d_model=d_model, n_heads=d_model // 8, budget=budget)
            n, n_total, per_token = spec_counts(shape)
            spec = replace(shape, tokens=int(budget / per_token))
            curve, per_step = curve_of(spec, law=law), spec.batch_size * spec.seq_len
            runs.append({"run_id": spec.run_id, "N": n, "N_total": n_total, "D": spec.tokens, "C": budget,
                         "loss": curve.final_loss, "budget": budget, "d_model": d_model, "n_layers": spec.n_layers,
                         "role": "proxy", "lr": spec.lr, "batch_size": spec.batch_size,
                         "flops_per_token": per_token, "spec_json": json.dumps(spec.to_dict())})  # fmt: skip
            curves += [{"run_id": spec.run_id, "step": s, "tokens": s * per_step, "flops": s * per_step * per_token,
                        "eval_loss": loss} for s, loss in zip(curve.steps, curve.losses, strict=True)]  # fmt: skip
    return pd.DataFrame(runs), pd.DataFrame(curves)


def test_a_backtest_takes_predicted_points_from_the_kept_budgets_only(base):
    runs, curves = synthetic_sweep(base)
    kept = runs[runs["budget"] < 1e12]
    with_points = FitConfig(bootstrap=0, curve_law_points=True)
    off = backtest(runs, FitConfig(bootstrap=0), holdout_top=1, curves=curves)
    on = backtest(runs, with_points, holdout_top=1, curves=curves)
    assert off.report.curve_law_points == 0
    assert on.report.curve_law_points == len(predicted_points(kept, curves)) > 0
    assert on.report.parametric.law != off.report.parametric.law
    assert on.report.parametric.law == fit_all(kept, with_points, curves).parametric.law
