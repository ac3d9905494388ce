"""The report's figures on sweeps trained by fake runs (losses from a known law, curves included)."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ElementTree
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from sweep import api
from sweep.config import FitConfig, compose
from sweep.fit.bootstrap import Refits
from sweep.fit.forms import Chinchilla
from sweep.fit.report import fit_all
from sweep.plan.flops import spec_counts
from sweep.plan.grids import single_run_spec
from sweep.report.data import ReportData, gather
from sweep.report.figures import DRAWERS, Skipped, drawn, make_figures, rendered
from sweep.report.figures.fits import target_point
from sweep.report.figures.style import num
from sweep.rundir import RunDir
from sweep.sweepdir import SweepDir
from tests.unit.fit.test_aspect import isoflop_shaped_runs, widthdepth_runs
from tests.unit.fit.test_hparams import grid
from tests.unit.test_api import OVERRIDES, TRUTH, fake_train

FIT_FIGURES = {"isoflop", "frontier", "contours", "residuals", "curves", "backtest"}
EVALUATIONS = np.linspace(0.25, 1.0, 7)  # fractions of a run's tokens at which its curve is evaluated


def write_curve(sweep_dir, spec) -> None:
    """A curve whose eval loss follows TRUTH at the tokens seen so far."""
    n, _, flops_per_token = spec_counts(spec)
    rows = []
    for fraction in EVALUATIONS:
        tokens = float(fraction * spec.tokens)
        loss = float(TRUTH.loss(n, tokens))
        rows.append({"step": max(1, round(fraction * spec.steps)), "tokens": tokens, "flops": tokens * flops_per_token,
                     "train_loss": loss, "eval_loss": loss, "lr": 1e-3})  # fmt: skip
    RunDir(sweep_dir / "runs" / spec.run_id).write_curve(rows)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> ReportData:
    """A fitted 4-budget sweep with curves, a proposal, and its target trained."""
    sweep, planned = api.plan(OVERRIDES, tmp_path_factory.mktemp("figures") / "s")
    for run in planned:
        fake_train(sweep.path, run.spec)
        write_curve(sweep.path, run.spec)
    api.collect(sweep.path)
    _, proposal = api.propose_target(sweep.path)
    target = single_run_spec(compose(config_file=api.proposal_file(SweepDir.open(sweep.path), proposal)))
    fake_train(sweep.path, target)
    write_curve(sweep.path, target)
    api.collect(sweep.path)
    return gather(sweep.path)


def without_fits(data: ReportData, runs: pd.DataFrame, config: FitConfig) -> ReportData:
    """data with other runs, fitted anew, and no curves, proposal, targets or backtest."""
    runs = runs.assign(run_id=[f"r{i}" for i in range(len(runs))], role="proxy")
    return replace(data, runs=runs, fit=fit_all(runs, config), curves=data.curves.iloc[:0], proposal=None, targets=[],
                   backtest=None)  # fmt: skip


def test_every_figure_that_applies_is_rendered_as_png_and_svg(fitted):
    told = []
    figures, skipped = make_figures(fitted, progress=lambda done, total: told.append((done, total)))
    assert {f.name for f in figures} == FIT_FIGURES
    assert skipped == {
        "lr": "no LR sweep: plan one with sweep=lrbatch",
        "aspect": "no width/depth group (one size at 3+ aspect ratios): plan one with sweep=widthdepth",
        "compare": f"no comparison recorded: `sweep compare {fitted.path} OTHER_SWEEP` makes one",
    }
    assert told == [(i, len(DRAWERS)) for i in range(1, len(DRAWERS) + 1)]
    for figure in figures:
        pixels = imread(io.BytesIO(figure.png), format="png")
        assert pixels.shape[0] > 300 and pixels.shape[1] > 500, figure.name
        assert pixels[..., :3].std() > 0.05, figure.name  # not a blank canvas
        assert ElementTree.fromstring(figure.svg).tag.endswith("svg")
        assert figure.title and "nan" not in figure.caption.lower(), figure.caption


def test_axes_carry_units_and_the_fields_log_scales(fitted):
    scales = {  # figure -> (xscale, yscale) of each panel
        "isoflop": [("log", "linear")],
        "frontier": [("log", "log"), ("log", "log")],
        "contours": [("log", "log")],
        "residuals": [("log", "linear")] * 3,
        "curves": [("log", "linear"), ("log", "linear")],
        "backtest": [("linear", "linear")],
    }
    for name, expected in scales.items():
        axes = drawn(name, fitted).figure.axes
        assert [(ax.get_xscale(), ax.get_yscale()) for ax in axes] == expected, name
        for ax in axes:
            assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title(), name
    for name in ("isoflop", "curves", "backtest"):
        assert all("nats/token" in ax.get_ylabel() for ax in drawn(name, fitted).figure.axes)
    assert [ax.get_xlabel() for ax in drawn("curves", fitted).figure.axes] == ["tokens D", "compute C (FLOPs)"]
    assert drawn("isoflop", fitted).figure.axes[0].get_xlabel() == "non-embedding parameters N"


def test_the_isoflop_vertices_drawn_are_the_fits(fitted):
    (axes,) = drawn("isoflop", fitted).figure.axes
    drawn_vertices = [tuple(np.ravel(line.get_xydata())) for line in axes.lines if line.get_gid() == "vertex"]
    centred = [(v["N_star"], v["L_star"]) for v in fitted.fit.budget_vertices() if v["centred"]]
    assert len(centred) >= 2 and drawn_vertices == centred


def test_the_frontier_marks_the_proposals_target_and_its_caption_gives_the_fits_numbers(fitted):
    drawing = drawn("frontier", fitted)
    compute = fitted.proposal["compute"]
    for ax in drawing.figure.axes:
        assert any(np.allclose(line.get_xdata(), compute) for line in ax.lines if line.get_linestyle() == "--")
    n_star = fitted.fit.isoflop.N_star(compute)
    assert f"Approach 2 (IsoFLOP) N* = {num(n_star)} [" in drawing.caption


def test_the_backtest_shows_held_out_runs_and_the_trained_target(fitted):
    (check,) = fitted.targets
    drawing = drawn("backtest", fitted)
    assert f"target {check.run_id}" in drawing.caption and "held-out budget(s) 1e12" in drawing.caption
    (axes,) = drawing.figure.axes
    labels = axes.get_legend_handles_labels()[1]
    assert "held-out runs, Approach 3" in labels and any(label.startswith("target, ") for label in labels)


def test_svg_is_the_same_byte_for_byte_when_drawn_again(fitted):
    for name in ("frontier", "curves"):  # bands, mathtext, legends; the others draw nothing else
        first, second = (rendered(name, "", "", drawn(name, fitted).figure).svg for _ in range(2))
        assert first == second, name


def test_an_approach_that_failed_skips_its_figure_with_the_reason(fitted):
    fit = replace(fitted.fit, parametric=None, parametric_samples=Refits(), isoflop=None, isoflop_samples=Refits(),
                  errors={"approach3": "too few points", "approach2": "no interior minimum"})  # fmt: skip
    figures, skipped = make_figures(replace(fitted, fit=fit))
    assert skipped["contours"] == "approach3 could not be fitted: too few points"
    assert skipped["isoflop"] == "approach2 could not be fitted: no interior minimum"
    assert {"frontier", "residuals", "curves", "backtest"} <= {f.name for f in figures}  # Approach 1 remains


def test_an_unidentified_or_overflowed_law_is_drawn_without_its_optimum_and_never_raises(fitted):
    parametric = replace(fitted.fit.parametric, law=Chinchilla(E=1.0, A=np.inf, B=10.0, alpha=-0.2, beta=np.nan))
    data = replace(fitted, fit=replace(fitted.fit, parametric=parametric))
    figures, skipped = make_figures(data)
    assert {f.name for f in figures} == FIT_FIGURES and set(skipped) == {"lr", "aspect", "compare"}
    frontier = drawn("frontier", data)
    assert "Approach 3" not in frontier.caption and "No compute-optimal line" in drawn("contours", data).caption


def test_an_lr_sweep_draws_loss_against_lr_with_each_sizes_optimum(fitted):
    data = without_fits(fitted, grid(noise=0.0), FitConfig(bootstrap=8))
    figures, skipped = make_figures(data)
    assert [f.name for f in figures] == ["lr"] and "approach3" in skipped["contours"]
    (axes,) = drawn("lr", data).figure.axes
    assert axes.get_xscale() == "log" and axes.get_xlabel() == "peak learning rate"
    optima = [line.get_xdata()[0] for line in axes.lines if line.get_gid() == "lr optimum"]
    assert optima == pytest.approx([g.lr for g in data.fit.hparams.groups])


def test_a_widthdepth_group_draws_loss_against_aspect_ratio_with_its_optimum(fitted):
    runs = pd.concat([isoflop_shaped_runs(), widthdepth_runs()], ignore_index=True)
    data = without_fits(fitted, runs, FitConfig(bootstrap=20))
    (group,) = data.fit.aspects
    assert group.identified
    drawing = drawn("aspect", data)
    (axes,) = drawing.figure.axes
    (optimum,) = [line.get_xdata()[0] for line in axes.lines if line.get_gid() == "aspect optimum"]
    assert optimum == group.aspect_ratio and axes.get_xscale() == "log"
    assert list(axes.lines[0].get_xdata()) == pytest.approx(group.aspects)  # every aspect of the group, in order
    assert "the loss is lowest at aspect" in drawing.caption


def test_a_sweep_without_curves_fits_or_backtest_skips_with_reasons(fitted):
    data = without_fits(fitted, isoflop_shaped_runs(budgets=(1e11, 3e11)), FitConfig(bootstrap=4))
    _, skipped = make_figures(data)
    assert skipped["curves"].startswith("no stored training curves")
    assert skipped["backtest"].startswith("no backtest")
    with pytest.raises(Skipped, match="no LR sweep"):
        drawn("lr", data)


def test_the_curves_tell_the_target_from_the_proxies_and_colour_by_budget(fitted):
    (check,) = fitted.targets
    for ax in drawn("curves", fitted).figure.axes:
        thick = [line for line in ax.lines if line.get_linewidth() == 2.0]
        assert len(thick) == 1  # the target's curve
        assert len(ax.lines) == fitted.curves["run_id"].nunique()
    budgets = {float(b) for b in fitted.runs["budget"]}
    assert len({tuple(line.get_color()) for line in ax.lines}) == len(budgets)
    assert check.compute in budgets


@pytest.mark.parametrize("counting", ["non_embedding", "total"])
def test_the_target_is_placed_at_its_n_as_the_fit_counts_it(fitted, counting):
    data = replace(fitted, fit=replace(fitted.fit, counting=counting))
    shape = fitted.proposal["shape"]
    assert shape["N_total"] > shape["N"]  # the two countings differ for this target
    n, d = target_point(data)
    assert n == shape["N_total" if counting == "total" else "N"] and d == fitted.proposal["tokens"]
    (star,) = [line for line in drawn("contours", data).figure.axes[0].lines if line.get_label() == "proposed target"]
    assert star.get_xdata()[0] == n
