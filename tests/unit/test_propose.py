import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sweep.config import compose
from sweep.fit.bootstrap import Refits
from sweep.fit.forms import Chinchilla, PowerLaw
from sweep.fit.isoflop import BudgetFit, IsoflopFit
from sweep.fit.parametric import ParametricFit
from sweep.fit.report import FitReport
from sweep.plan.grids import shape_rules
from sweep.propose import Prediction, check_target, disagreements, propose, target_yaml


def prediction(approach, n, band):
    return Prediction(approach, n, 1e9, 2.0, band, None, None)


def test_approaches_whose_n_star_intervals_do_not_overlap_are_named():
    a1 = prediction("approach1", 1e8, (0.8e8, 1.2e8))
    a2 = prediction("approach2", 1.5e8, (1.1e8, 2e8))
    a3 = prediction("approach3", 4e8, (3e8, 5e8))
    warnings = disagreements([a3, a2, a1])
    assert len(warnings) == 2  # a3 against each of the others; a1 and a2 overlap
    assert all("approach3" in w for w in warnings)
    assert disagreements([a1, a2]) == []
    assert len(disagreements([a1, prediction("approach2", 1.3e8, None)])) == 1  # a point outside an interval


def test_the_compute_form_adds_a_loss_prediction_at_the_target():
    import pandas as pd

    from sweep.config import FitConfig, compose
    from sweep.fit.report import fit_all
    from sweep.propose import propose
    from tests.unit.fit.test_isoflop import TRUTH, isoflop_runs

    runs = isoflop_runs(TRUTH, [1e10, 1e11, 1e12, 1e13, 1e14], sizes=9, span=8.0)
    fit = fit_all(pd.DataFrame(runs), FitConfig(bootstrap=20))
    proposal = propose(fit, runs, compose([]), compute=1e15)
    (frontier,) = [p for p in proposal.predictions if p.approach == "L(C) form"]
    assert frontier.N is None and frontier.loss_interval is not None
    assert abs(frontier.loss / fit.forms["compute"].loss(1e15) - 1) < 1e-12
    assert not any("L(C)" in w for w in proposal.warnings)  # no N*: never part of a disagreement


def test_the_proposal_recommends_one_of_its_predictions_and_names_it_in_the_yaml():
    from sweep.config import FitConfig
    from sweep.fit.report import fit_all
    from tests.unit.fit.test_isoflop import TRUTH, isoflop_runs

    runs = isoflop_runs(TRUTH, [1e10, 1e11, 1e12, 1e13], sizes=7, span=8.0)
    proposal = propose(fit_all(runs, FitConfig(bootstrap=0)), runs, compose([]), compute=1e15)
    chosen = proposal.recommendation
    assert chosen.method == "backtest" and chosen.held_out_budget == 1e13
    assert chosen.approach == "approach3"  # the data follow Approach 3's form exactly
    payload = json.loads(json.dumps(proposal.to_dict()))
    assert payload["recommended"] == "approach3" == payload["recommendation"]["approach"]
    assert payload["recommended"] in [p["approach"] for p in payload["predictions"]]
    header = target_yaml(proposal, compose([])).splitlines()
    assert f"# recommended: approach3, {chosen.why}" in header


# Fits without a usable optimum: synthetic reports reproduce each crash, no training.
GOOD = Chinchilla(E=1.0, A=20.0, B=400.0, alpha=0.3, beta=0.4)
COMPUTE = 1e13


def report(law=None, samples=(), isoflop=True, attempted=None) -> FitReport:
    parametric = ParametricFit(law, 0.0, 12, np.zeros(5)) if law else None
    a2 = None
    if isoflop:
        budgets = [BudgetFit(c, 3, 0.05 * c**0.5, c / (0.3 * c**0.5), 3.0, True, "") for c in (1e11, 3e11, 1e12)]
        a2 = IsoflopFit(budgets, PowerLaw(0.05, 0.5), PowerLaw(1 / 0.3, 0.5), PowerLaw(20.0, -0.05))
    errors = {} if law else {"approach3": "too few points"}
    errors |= {} if isoflop else {"approach2": "needs 2 budgets"}
    return FitReport("non_embedding", 9, parametric, a2, Refits(list(samples), attempted or len(samples)),
                     Refits([a2] * 3 if a2 else [], 3), errors)  # fmt: skip


def runs_table(with_shapes=True) -> pd.DataFrame:
    rules = shape_rules(compose([]))
    rows = []
    for budget in (1e11, 3e11, 1e12):
        for i, d_model in enumerate((32, 48, 64)):
            shape = rules.make(d_model, 2)
            loss = 3.0 - budget / 1e12 + 0.01 * i
            row = {"run_id": f"r{budget:.0e}-{d_model}", "budget": budget, "N": shape.N, "C": budget, "loss": loss}
            shape_columns = {"d_model": d_model, "n_layers": 2} if with_shapes else {"d_model": None, "n_layers": None}
            rows.append({**row, "D": budget / shape.flops_per_token, **shape_columns})
    return pd.DataFrame(rows)


def approaches(proposal):
    return [p.approach for p in proposal.predictions]


def test_a_negative_exponent_falls_back_to_approach2_and_says_why():
    law = Chinchilla(E=1.0, A=20.0, B=400.0, alpha=-0.2, beta=0.4)  # alpha A / beta B < 0: a complex G before
    proposal = propose(report(law, [law]), runs_table(), compose([]), COMPUTE)
    assert proposal.shape_from == "approach2"
    assert proposal.shape == vars(shape_rules(compose([])).snap(0.05 * COMPUTE**0.5))
    assert "approach3" not in approaches(proposal) and "approach2" in approaches(proposal)
    assert any("unidentified" in w and "alpha = -0.2 <= 0" in w for w in proposal.warnings)


def test_an_infinite_optimum_falls_back_without_overflowing():
    law = Chinchilla(E=1.0, A=1e300, B=1e-300, alpha=0.01, beta=0.01)  # G overflows: N_opt = inf
    assert np.isinf(law.optimal_params(COMPUTE))
    proposal = propose(report(law), runs_table(), compose([]), COMPUTE)
    assert proposal.shape_from == "approach2"
    assert any("not between 1 and C/6" in w for w in proposal.warnings)


def test_nan_parameters_and_unidentified_approach2_fall_back_to_the_best_run():
    law = Chinchilla(E=float("nan"), A=20.0, B=400.0, alpha=0.3, beta=0.4)
    fit = report(law)
    fit = replace(fit, isoflop=replace(fit.isoflop, N_star=PowerLaw(1.0, -0.3), D_star=PowerLaw(1.0, 1.3)))
    runs = runs_table()
    proposal = propose(fit, runs, compose([]), COMPUTE)
    best = runs.loc[runs["loss"].idxmin()]
    assert proposal.shape_from == "best run"
    assert (proposal.shape["d_model"], proposal.shape["n_layers"]) == (best["d_model"], best["n_layers"])
    assert any(w.startswith("too little evidence") and best["run_id"] in w for w in proposal.warnings)
    assert any("approach2 unidentified: N_star exponent -0.3 <= 0" in w for w in proposal.warnings)
    assert proposal.predictions == []
    assert "none: no approach could be fitted" in target_yaml(proposal, compose([]))


def test_refits_that_overflowed_are_dropped_and_counted():
    overflowed = Chinchilla(E=1.0, A=float("inf"), B=400.0, alpha=1e3, beta=0.4)  # inf / N^1000 = inf / inf: NaN
    proposal = propose(report(GOOD, [GOOD, overflowed, GOOD], attempted=5), runs_table(), compose([]), COMPUTE)
    assert proposal.shape_from == "approach3"
    (a3,) = [p for p in proposal.predictions if p.approach == "approach3"]
    assert a3.loss_interval is not None and np.isfinite(a3.loss_interval).all()
    assert any("approach3: 2 of 5 bootstrap refits dropped" in w for w in proposal.warnings)  # at fit time
    assert any("1 of 3 bootstrap refits predict no finite loss at the target" in w for w in proposal.warnings)


def test_too_little_evidence_still_proposes_the_best_run_trained():
    runs = runs_table(with_shapes=False)  # imported: N and loss, no shapes
    proposal = propose(report(None, isoflop=False), runs, compose([]), COMPUTE)
    best = runs.loc[runs["loss"].idxmin()]
    assert proposal.shape == vars(shape_rules(compose([])).snap(best["N"]))
    assert any(w.startswith("too little evidence") for w in proposal.warnings)
    assert proposal.tokens > 0 and proposal.run_id


def test_the_next_wave_of_imported_runs_snaps_their_sizes():
    runs = runs_table(with_shapes=False)
    top = runs["budget"] == 1e12
    runs.loc[top, "loss"] = runs.loc[top, "loss"].to_numpy()[::-1]  # its lowest loss at its largest size
    runs.loc[~top, "loss"] += np.array([0.02, 0.0, 0.0] * 2)  # the others: an interior minimum
    wave = propose(report(GOOD), runs, compose([]), COMPUTE).next_wave
    largest = runs.loc[top, "N"].max()
    assert wave and all(w["budget"] == 1e12 and w["side"] == "above" and w["N"] > largest for w in wave)


def test_the_next_wave_comes_from_each_budget_even_when_approach2_was_not_fitted():
    runs = runs_table()  # every budget's lowest loss at its smallest size: none centred
    wave = propose(report(GOOD, isoflop=False), runs, compose([]), COMPUTE).next_wave
    assert {w["budget"] for w in wave} == {1e11, 3e11, 1e12} and {w["side"] for w in wave} == {"below"}


def test_a_shared_trunk_sweeps_next_wave_branches_off_the_trunks_it_has():
    from sweep.plan.grids import make_plan
    from sweep.propose import wave_specs

    config = compose(["sweep=wsd"])
    trunks = [s for s in make_plan(config).specs if s.role == "trunk"]
    proposal = propose(report(GOOD, isoflop=False), runs_table(), config, COMPUTE)
    specs = wave_specs(proposal, config, trunks)
    branches = [s for s in specs if s.role != "trunk"]
    assert len(branches) == len(proposal.next_wave)
    known = {t.run_id: t for t in [*trunks, *specs] if t.role == "trunk"}
    assert all(b.parent in known and b.schedule == "wsd" for b in branches)
    had_trunk = {(t.d_model, t.n_layers) for t in trunks}
    for new in (s for s in specs if s.role == "trunk"):  # a shape with a trunk gets continuations, never a new root
        assert new.parent or (new.d_model, new.n_layers) not in had_trunk


values = st.one_of(
    st.floats(-2.0, 2.0), st.floats(1e-300, 1e300), st.sampled_from([0.0, float("inf"), -float("inf"), float("nan")])
)
laws = st.builds(Chinchilla, E=values, A=values, B=values, alpha=values, beta=values)


@settings(max_examples=40, deadline=None)
@given(law=st.one_of(st.none(), laws), samples=st.lists(laws, max_size=3), n_exponent=values, isoflop=st.booleans())
def test_no_fit_makes_the_proposal_crash(law, samples, n_exponent, isoflop):
    fit = report(law, samples, isoflop=isoflop)
    if isoflop:
        fit = replace(fit, isoflop=replace(fit.isoflop, N_star=PowerLaw(0.05, n_exponent)))
    proposal = propose(fit, runs_table(), compose([]), COMPUTE)
    rules = shape_rules(compose([]))
    assert proposal.shape == vars(rules.make(proposal.shape["d_model"], proposal.shape["n_layers"]))
    assert proposal.tokens > 0 and proposal.steps > 0
    offered = [p.approach for p in proposal.predictions]
    assert proposal.recommendation.approach in (offered or [None])
    if proposal.shape_from != "approach3":
        assert any("Approach 3 gives no target" in w for w in proposal.warnings)


@pytest.mark.parametrize("record", [None, {}, [], {"proposal_id": "p", "predictions": [{"approach": 3}]}])
def test_a_missing_or_foreign_target_record_is_no_record(record):
    check = check_target("0123456789ab", 1e13, 1.5, record)
    assert check.proposal_id is None and check.predictions == []


def test_the_target_lr_and_batch_follow_the_fitted_laws_with_their_intervals():
    from sweep.config import FitConfig
    from sweep.fit.hparams import fit_hparams
    from tests.unit.fit.test_hparams import grid

    config = compose(["train.max_batch_size=4096"])
    hparams = fit_hparams(grid(), FitConfig(bootstrap=30))
    proposal = propose(report(GOOD), runs_table(), config, COMPUTE, hparams)
    n, d = proposal.shape["N"], COMPUTE / proposal.shape["flops_per_token"]
    assert proposal.lr == pytest.approx(hparams.lr_law(n, d), rel=1e-9)
    assert proposal.batch_size == round(float(hparams.batch_law(d)))
    assert proposal.lr_from.startswith("fit: eta*(N, D)") and proposal.batch_from.startswith("fit: B*(D)")
    assert proposal.lr_interval[0] <= proposal.lr <= proposal.lr_interval[1]
    assert proposal.steps == round(proposal.tokens / (proposal.batch_size * config.model.seq_len))
    assert f"lr: {proposal.lr}" in target_yaml(proposal, config)
    ruled = propose(report(GOOD), runs_table(), config, COMPUTE)
    assert ruled.lr_from.startswith("assumed: rule") and ruled.lr_interval is None
    assert ruled.lr == pytest.approx(config.train.lr * config.train.lr_ref_width / proposal.shape["d_model"])


def widthdepth_fit(optimum: float):
    """A fit of an IsoFLOP grid and a width/depth grid whose loss is lowest at `optimum`."""
    from sweep.config import FitConfig
    from sweep.fit.report import fit_all
    from tests.unit.fit.test_aspect import isoflop_shaped_runs, widthdepth_runs

    isoflop = isoflop_shaped_runs(budgets=(1e10, 1e11, 1e12), span=30.0, optimum=optimum)
    runs = pd.concat([isoflop, widthdepth_runs(optimum)], ignore_index=True)
    return fit_all(runs, FitConfig(bootstrap=20, forms=["chinchilla"])), runs


def aspect_of(proposal) -> float:
    return proposal.shape["d_model"] / proposal.shape["n_layers"]


def test_the_target_takes_the_aspect_the_widthdepth_runs_prefer():
    fit, runs = widthdepth_fit(optimum=80.0)
    proposal = propose(fit, runs, compose([]), 1e14)
    without = propose(replace(fit, aspects=[]), runs, compose([]), 1e14)
    fitted = proposal.aspect_from["aspect_ratio"]
    assert fitted == pytest.approx(80.0, rel=0.2) and proposal.aspect_from["interval"] is not None
    assert abs(np.log(aspect_of(proposal) / fitted)) < np.log(1.5)  # at ~1e6 parameters a layer moves it ~1.8x
    assert abs(np.log(aspect_of(proposal) / fitted)) < abs(np.log(aspect_of(without) / fitted))
    assert without.aspect_from == {}  # no width/depth runs: model.aspect_ratio, as before


def test_an_unidentified_aspect_is_not_used_and_the_proposal_says_so():
    fit, runs = widthdepth_fit(optimum=1000.0)  # beyond the widest aspect tried
    proposal = propose(fit, runs, compose([]), 1e14)
    assert proposal.aspect_from == {}
    assert proposal.shape == propose(replace(fit, aspects=[]), runs, compose([]), 1e14).shape
    assert any(w.startswith("aspect ratio unidentified") and "edge" in w for w in proposal.warnings)


def test_a_target_never_needs_more_tokens_than_the_data_holds_and_says_why():
    from sweep.config import FitConfig
    from sweep.fit.report import fit_all
    from tests.unit.fit.test_isoflop import TRUTH, isoflop_runs

    runs = isoflop_runs(TRUTH, [1e10, 1e11, 1e12, 1e13], sizes=7, span=8.0)
    fit = fit_all(runs, FitConfig(bootstrap=10))
    free = propose(fit, runs, compose([]), compute=1e15)
    wanted = 1e15 / free.shape["flops_per_token"]
    limited = propose(fit, runs, compose([]), compute=1e15, max_tokens=wanted / 3)
    assert 1e15 / limited.shape["flops_per_token"] <= wanted / 3 < 1e15 / free.shape["flops_per_token"]
    assert limited.shape["N"] > free.shape["N"]  # more parameters, fewer tokens: the best that sees each token once
    assert any("sees its data at most once" in w for w in limited.warnings)
    (a3,) = [p for p in limited.predictions if p.approach == "approach3"]
    assert a3.loss > next(p.loss for p in free.predictions if p.approach == "approach3")  # off the optimum: worse
    # Approach 2 and the frontier predict the compute-optimal loss, which this target cannot reach
    assert {p.approach for p in free.predictions} >= {"approach2", "L(C) form"}
    assert {p.approach for p in limited.predictions} == {"approach3"}
    assert any("cannot reach it: left out" in w for w in limited.warnings)
    assert limited.recommendation.approach == "approach3"
    roomy = propose(fit, runs, compose([]), compute=1e15, max_tokens=wanted * 2)
    assert roomy.shape == free.shape and not any("data" in w for w in roomy.warnings)
    assert [p.approach for p in roomy.predictions] == [p.approach for p in free.predictions]
