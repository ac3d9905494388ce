from sweep.propose import Prediction, disagreements


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
    from sweep.fit.analysis import fit_all
    from sweep.propose import propose
    from tests.unit.fit.test_isoflop import TRUTH, isoflop_runs

    runs = isoflop_runs(TRUTH, [1e10, 1e11, 1e12, 1e13, 1e14], sizes=9, span=8.0)
    fit = fit_all(pd.DataFrame(runs), FitConfig(bootstrap=20))
    proposal = propose(fit, runs, compose([]), compute=1e15)
    (frontier,) = [p for p in proposal.predictions if p.approach == "L(C) form"]
    assert frontier.N is None and frontier.loss_interval is not None
    assert abs(frontier.loss / fit.forms["compute"].loss(1e15) - 1) < 1e-12
    assert not any("L(C)" in w for w in proposal.warnings)  # no N*: never part of a disagreement
