import numpy as np
import pandas as pd
import pytest

from sweep.config import FitConfig, compose
from sweep.fit.aspect import fit_aspects, widthdepth_groups, without_widthdepth
from sweep.fit.forms import Chinchilla
from sweep.plan.grids import shape_rules

TRUTH = Chinchilla(E=1.7, A=400.0, B=410.0, alpha=0.34, beta=0.28)
RULES = shape_rules(compose(["model.min_layers=1"]))  # 1-layer shapes reach the widest aspects
ASPECTS = (8.0, 16.0, 32.0, 64.0, 128.0, 256.0)


def shaped_run(shape, budget: float, optimum: float, curvature: float) -> dict:
    """A run whose loss is Approach 3's law plus curvature * log(aspect / optimum)^2."""
    d = budget / shape.flops_per_token
    loss = TRUTH.loss(shape.N, d) + curvature * np.log(shape.aspect_ratio / optimum) ** 2
    return {"N": float(shape.N), "D": d, "C": budget, "budget": budget, "loss": loss,
            "d_model": shape.d_model, "n_layers": shape.n_layers}  # fmt: skip


def widthdepth_runs(optimum=40.0, budget=6e12, n=3e5, aspects=ASPECTS, curvature=0.03, noise=3e-4, seed=0):
    """One size across aspect ratios, each loss with relative noise."""
    rows = pd.DataFrame([shaped_run(s, budget, optimum, curvature) for s in {RULES.snap(n, a) for a in aspects}])
    return rows.assign(loss=rows["loss"] * np.exp(np.random.default_rng(seed).normal(0, noise, len(rows))))


def isoflop_shaped_runs(budgets=(1e11, 3e11, 1e12), sizes=5, span=8.0, optimum=40.0, curvature=0.03):
    """An IsoFLOP grid as the planner makes it: sizes log-spaced over span, snapped to shapes."""
    centres = {budget: np.sqrt(budget / (6 * 40)) for budget in budgets}
    return pd.DataFrame([shaped_run(RULES.snap(centre * span**e), budget, optimum, curvature)
                         for budget, centre in centres.items() for e in np.linspace(-0.5, 0.5, sizes)])  # fmt: skip


def test_the_grid_has_one_size_across_aspects():
    runs = widthdepth_runs()
    assert runs["N"].max() / runs["N"].min() < 1.25 and len(runs) >= 5


def test_a_known_optimum_is_found_and_its_interval_covers_it():
    (fit,) = fit_aspects(widthdepth_runs(), TRUTH, FitConfig(bootstrap=200))
    assert fit.identified and fit.corrected
    assert fit.aspect_ratio == pytest.approx(40.0, rel=0.15)
    assert fit.interval[0] <= 40.0 <= fit.interval[1]
    assert fit.interval[1] / fit.interval[0] < 3  # an interval that says something
    assert fit.aspects == sorted(fit.aspects) and fit.budget == 6e12


@pytest.mark.parametrize("optimum", [20.0, 90.0])
def test_optima_across_the_range_are_found(optimum):
    (fit,) = fit_aspects(widthdepth_runs(optimum), TRUTH, FitConfig(bootstrap=50))
    assert fit.identified and fit.aspect_ratio == pytest.approx(optimum, rel=0.15)


def test_differences_in_size_are_corrected_by_approach3():
    """A steep loss in N makes the group's 25% spread of sizes matter: fitted raw, the optimum moves."""
    steep = Chinchilla(E=1.0, A=3e3, B=10.0, alpha=0.5, beta=0.1)
    runs = widthdepth_runs(noise=0.0)
    runs["loss"] += steep.loss(runs["N"], runs["D"]) - TRUTH.loss(runs["N"], runs["D"])
    (corrected,) = fit_aspects(runs, steep, FitConfig(bootstrap=0))
    (raw,) = fit_aspects(runs, None, FitConfig(bootstrap=0))
    assert corrected.aspect_ratio == pytest.approx(40.0, rel=0.05)
    assert not raw.corrected and abs(np.log(raw.aspect_ratio / 40.0)) > abs(np.log(corrected.aspect_ratio / 40.0))


def test_a_minimum_at_an_edge_of_the_aspects_is_unidentified():
    (fit,) = fit_aspects(widthdepth_runs(optimum=1000.0), TRUTH, FitConfig(bootstrap=20))
    assert not fit.identified and "edge" in fit.unidentified


def test_a_loss_that_peaks_in_aspect_is_unidentified():
    (fit,) = fit_aspects(widthdepth_runs(curvature=-0.03, aspects=ASPECTS[1:5]), TRUTH, FitConfig(bootstrap=20))
    assert not fit.identified and "non-convex" in fit.unidentified


def test_a_group_is_sizes_in_steps_under_25_percent_spanning_under_1_5x():
    shapes = [RULES.make(d, layers) for d, layers in ((32, 6), (80, 1), (48, 3), (32, 7), (64, 2))]
    runs = pd.DataFrame([shaped_run(s, 6e11, 40.0, 0.03) for s in shapes])  # N from 7.4e4 to 9.9e4
    (group,) = widthdepth_groups(runs)
    assert sorted(group) == list(range(5))
    wide = pd.concat([runs, runs.assign(N=runs["N"] * 1.2)], ignore_index=True)  # a chain spanning 1.6x
    assert widthdepth_groups(wide) == []


def test_an_isoflop_grid_has_no_widthdepth_group():
    runs = isoflop_shaped_runs()
    assert widthdepth_groups(runs) == []
    assert without_widthdepth(runs) is runs
    assert fit_aspects(runs, TRUTH, FitConfig(bootstrap=10)) == []


def test_imported_runs_without_shapes_form_no_group():
    runs = widthdepth_runs().assign(d_model=None, n_layers=None)
    assert widthdepth_groups(runs) == [] and widthdepth_groups(runs.drop(columns=["d_model", "n_layers"])) == []


def test_a_widthdepth_group_counts_as_one_size_at_the_isoflop_aspect():
    isoflop = isoflop_shaped_runs(budgets=(6e12,), sizes=5, span=8.0)
    mixed = pd.concat([isoflop, widthdepth_runs(n=float(isoflop["N"].median()))], ignore_index=True)
    (group,) = widthdepth_groups(mixed)
    kept = without_widthdepth(mixed)
    assert len(kept) == len(mixed) - len(group) + 1
    (left,) = set(kept.index) & set(group)
    reference = np.median(isoflop["d_model"] / isoflop["n_layers"])  # the others' aspect
    aspects = mixed["d_model"] / mixed["n_layers"]
    assert abs(np.log(aspects[left] / reference)) == min(abs(np.log(aspects[group] / reference)))
    alone = widthdepth_runs()
    assert len(without_widthdepth(alone)) == 1  # a width/depth budget of its own: one size, no valley
