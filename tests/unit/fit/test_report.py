from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from sweep.config import FitConfig
from sweep.fit.errors import FitError
from sweep.fit.forms import Chinchilla
from sweep.fit.report import fit_all, prepare


def test_report_has_named_parameters_with_intervals_that_contain_them():
    truth = Chinchilla(E=1.7, A=400.0, B=410.0, alpha=0.34, beta=0.28)
    rng = np.random.default_rng(1)
    rows = []
    for c in (1e18, 1e19, 1e20):
        for n in truth.optimal_params(c) * 20 ** np.linspace(-0.5, 0.5, 6):
            d = c / (6 * n)
            rows.append({"N": n, "D": d, "C": c, "loss": truth.loss(n, d) * np.exp(rng.normal(0, 0.003))})
    report = fit_all(pd.DataFrame(rows), FitConfig(bootstrap=60))
    out = report.to_dict()
    for name in ("E", "A", "B", "alpha", "beta"):
        lo, hi = out["approach3"]["intervals"][name]
        assert lo <= out["approach3"][name] <= hi
    assert out["approach2"]["N_star"]["exponent_interval"] is not None


def test_rows_with_bad_values_are_named():
    frame = pd.DataFrame({"N": [1e6, -1, 3e6], "D": [1e9, 1e9, float("nan")], "C": [1, 1, 1], "loss": [3, 3, 3]})
    with pytest.raises(FitError, match=r"'N'.*rows 1"):
        prepare(frame)


def test_budgets_are_inferred_from_flops_when_absent():
    frame = pd.DataFrame({"N": [1, 2, 3], "D": [1, 1, 1], "C": [1.01e18, 0.996e18, 3.02e18], "loss": [3, 3, 3]})
    assert sorted(set(prepare(frame)["budget"])) == [1e18, 3e18]


def test_the_compute_form_recovers_the_floor_of_the_frontier():
    truth = Chinchilla(E=1.7, A=400.0, B=410.0, alpha=0.34, beta=0.28)
    rows = []
    for c in np.logspace(17, 25, 9):
        for n in truth.optimal_params(c) * 4 ** np.linspace(-0.5, 0.5, 15):
            rows.append({"N": n, "D": c / (6 * n), "C": c, "loss": truth.loss(n, c / (6 * n))})
    report = fit_all(pd.DataFrame(rows), FitConfig(bootstrap=20, forms=["chinchilla", "compute"]))
    law = report.forms["compute"]
    assert pytest.approx(truth.E, rel=0.02) == law.E
    assert law.alpha == pytest.approx(truth.alpha * truth.beta / (truth.alpha + truth.beta), rel=0.1)
    assert set(report.to_dict()["forms"]["compute"]["intervals"]) == {"E", "A", "alpha"}


def test_kaplan_forms_fit_runs_where_the_other_variable_does_not_limit():
    truth = Chinchilla(E=1.7, A=400.0, B=410.0, alpha=0.34, beta=0.28)
    n = np.logspace(6, 11, 12)
    runs = pd.DataFrame({"N": n, "D": 1e15, "C": 6e15 * n, "loss": truth.loss(n, 1e15)})  # data-unlimited
    report = fit_all(runs, FitConfig(bootstrap=0, forms=["chinchilla", "kaplan_n"]))
    law = report.forms["kaplan_n"]
    assert law.alpha == pytest.approx(truth.alpha, rel=0.02)
    assert pytest.approx(truth.E + truth.B / 1e15**truth.beta, rel=0.01) == law.E
    assert "kaplan_d" not in report.forms


def test_the_other_counting_is_reported_when_the_runs_have_both():
    truth = Chinchilla(E=1.7, A=400.0, B=410.0, alpha=0.34, beta=0.28)
    rows = []
    for c in (1e18, 1e19, 1e20):
        for n in truth.optimal_params(c) * 20 ** np.linspace(-0.5, 0.5, 6):
            rows.append({"N": n, "N_total": 1.5 * n, "D": c / (6 * n), "C": c, "loss": truth.loss(n, c / (6 * n))})
    runs = pd.DataFrame(rows)
    other = fit_all(runs, FitConfig(bootstrap=0)).to_dict()["other_counting"]
    assert other["counting"] == "total"
    assert other["approach3"]["alpha"] == pytest.approx(truth.alpha, rel=0.02)  # N x 1.5 moves A, not alpha
    assert other["approach3"]["A"] == pytest.approx(truth.A * 1.5**truth.alpha, rel=0.05)
    assert "other_counting" not in fit_all(runs.drop(columns="N_total"), FitConfig(bootstrap=0)).to_dict()


def test_seed_noise_widens_the_intervals_of_noiseless_runs():
    truth = Chinchilla(E=1.7, A=400.0, B=410.0, alpha=0.34, beta=0.28)
    rows = []
    for c in (1e18, 1e19, 1e20, 1e21):
        for n in truth.optimal_params(c) * 20 ** np.linspace(-0.5, 0.5, 6):
            rows.append({"N": n, "D": c / (6 * n), "C": c, "loss": truth.loss(n, c / (6 * n))})
    runs = pd.DataFrame(rows)

    def width(seed_noise):
        lo, hi = fit_all(runs, FitConfig(bootstrap=40, seed_noise=seed_noise)).parameter_intervals()["alpha"]
        return hi - lo

    assert width(0.0) < 1e-3  # exact runs: every resample finds the same law
    assert width(0.01) > 10 * width(0.0)


TRUTH = Chinchilla(E=1.7, A=400.0, B=410.0, alpha=0.34, beta=0.28)


def chinchilla_runs(truth: Chinchilla, budgets=(1e18, 1e19, 1e20), noise=0.002) -> pd.DataFrame:
    """Six sizes per budget around the optimum, losses off the law by `noise` (relative std)."""
    rng = np.random.default_rng(0)
    rows = []
    for c in budgets:
        for n in truth.optimal_params(c) * 20 ** np.linspace(-0.5, 0.5, 6):
            loss = truth.loss(n, c / (6 * n)) * np.exp(rng.normal(0, noise))
            rows.append({"N": n, "D": c / (6 * n), "C": c, "loss": loss})
    return pd.DataFrame(rows)


def test_refits_that_overflow_are_dropped_and_the_report_says_how_many(monkeypatch):
    import sweep.fit.report as report_module

    real = report_module.refit_terms

    def every_other_refit_overflows(theta, *args, **kwargs):
        thetas = real(theta, *args, **kwargs)
        if len(theta) == 5:  # Approach 3's refits: exp of a huge log-coefficient is inf
            thetas[::2, 1] = 1e6
        return thetas

    monkeypatch.setattr(report_module, "refit_terms", every_other_refit_overflows)
    report = fit_all(chinchilla_runs(TRUTH), FitConfig(bootstrap=10))
    assert (len(report.parametric_samples), report.parametric_samples.dropped) == (5, 5)
    out = report.to_dict()
    assert out["approach3"]["bootstrap"] == 5 and out["approach3"]["dropped"] == 5
    assert "approach3: 5 of 10 bootstrap refits dropped (failed or overflowed)" in out["notes"]
    assert all(np.isfinite(band).all() for band in out["approach3"]["intervals"].values())


def test_an_overflowed_point_fit_is_an_error_not_a_law(monkeypatch):
    import sweep.fit.report as report_module

    real = report_module.fit_parametric

    def overflowed(*args, **kwargs):
        fit = real(*args, **kwargs)
        return replace(fit, law=replace(fit.law, E=np.nan))

    monkeypatch.setattr(report_module, "fit_parametric", overflowed)
    report = fit_all(chinchilla_runs(TRUTH), FitConfig(bootstrap=4, forms=["chinchilla"]))
    assert report.parametric is None and "overflowed" in report.errors["approach3"]
    assert report.isoflop is not None  # the other approaches still stand


def test_an_unidentified_fit_is_named_in_the_notes():
    truth = TRUTH
    report = fit_all(chinchilla_runs(truth), FitConfig(bootstrap=0))
    report = replace(report, parametric=replace(report.parametric, law=replace(truth, beta=-0.05)))
    assert "approach3 unidentified: beta = -0.05 <= 0" in report.notes()


def test_target_runs_are_left_out_of_the_fit_unless_asked():
    truth = TRUTH
    runs = chinchilla_runs(truth).assign(role="proxy")
    target = {"N": 1e9, "D": 2e10, "C": 1.2e20, "loss": 9.0, "role": "target"}  # far off the law: it would move it
    runs = pd.concat([runs, pd.DataFrame([target])], ignore_index=True)
    config = FitConfig(bootstrap=0, forms=["chinchilla"])
    proxies_only = fit_all(runs, config)
    assert proxies_only.n_runs == len(runs) - 1 and proxies_only.targets_left_out == 1
    assert proxies_only.parametric.law == fit_all(runs[:-1], config).parametric.law
    assert "1 target runs not fitted (fit.include_targets=true fits them)" in proxies_only.notes()
    everything = fit_all(runs, replace(config, include_targets=True))
    assert everything.n_runs == len(runs) and everything.targets_left_out == 0


def test_a_widthdepth_budget_is_not_an_isoflop_valley_but_gives_the_aspect():
    from tests.unit.fit.test_aspect import isoflop_shaped_runs, widthdepth_runs

    isoflop = isoflop_shaped_runs(budgets=(1e10, 1e11, 1e12), span=30.0)
    both = pd.concat([isoflop, widthdepth_runs(budget=1e12 * 6)], ignore_index=True)
    config = FitConfig(bootstrap=20, forms=["chinchilla"])
    alone, mixed = fit_all(isoflop, config), fit_all(both, config)
    assert [b.budget for b in mixed.isoflop.budgets] == [1e10, 1e11, 1e12]  # no parabola through 6e12
    assert mixed.isoflop.budgets == alone.isoflop.budgets
    assert mixed.parametric.n_points == len(both)  # Approach 3 fits every run
    out = mixed.to_dict()["aspect"]
    assert out["aspect_ratio"] == pytest.approx(40.0, rel=0.2) and out["interval"] is not None
    assert len(out["groups"]) == 1 and out["groups"][0]["corrected"]
    assert alone.aspects == [] and "aspect" not in alone.to_dict()


def test_an_unidentified_aspect_is_a_note_and_no_value():
    from tests.unit.fit.test_aspect import widthdepth_runs

    report = fit_all(
        widthdepth_runs(optimum=1000.0), FitConfig(bootstrap=10, forms=["chinchilla"]), allow_unfitted=True
    )
    assert report.to_dict()["aspect"]["aspect_ratio"] is None
    assert any(note.startswith("aspect ratio unidentified") and "model.aspect_ratio" in note for note in report.notes())


def test_the_frontier_leaves_out_a_budget_of_widthdepth_runs_alone():
    from sweep.fit.report import frontier
    from tests.unit.fit.test_aspect import isoflop_shaped_runs, widthdepth_runs

    isoflop = isoflop_shaped_runs(budgets=(1e10, 1e11, 1e12), span=30.0)
    wd_apart, wd_inside = widthdepth_runs(budget=6e12), widthdepth_runs(budget=1e12, n=1e5)
    budgets, _ = frontier(pd.concat([isoflop, wd_apart, wd_inside], ignore_index=True))
    assert list(budgets) == [1e10, 1e11, 1e12]  # 1e12 has IsoFLOP runs too: kept


def test_a_fitted_value_at_the_edge_of_the_search_is_named_in_the_notes():
    """Losses with no floor (E = 0) and a steep cut-off in D: the fit reports both edges."""
    rng = np.random.default_rng(1)
    n, d = np.exp(rng.uniform(np.log(1e7), np.log(1e9), 60)), np.exp(rng.uniform(np.log(1e9), np.log(1e11), 60))
    loss = 400.0 / n**0.34 + 1e60 / d**6.0
    runs = pd.DataFrame({"N": n, "D": d, "C": 6 * n * d, "loss": loss})
    report = fit_all(runs, FitConfig(bootstrap=0, forms=["chinchilla"]))
    law = report.parametric.law
    floor = law.E
    assert floor < 1e-4 * loss.min() and law.beta > 3
    notes = "\n".join(report.notes())
    assert "approach3: E = " in notes and "the runs do not identify a floor" in notes
    assert f"approach3: beta = {law.beta:.3g} is at or beyond the edge of the exponent grid" in notes
    assert "alpha" not in notes  # alpha = 0.34 is well inside


def test_a_law_well_inside_the_search_has_no_edge_notes():
    report = fit_all(chinchilla_runs(TRUTH), FitConfig(bootstrap=0))
    assert not any("edge" in note for note in report.notes())


def test_progress_hears_the_stages_and_the_bootstrap_chunk_by_chunk(monkeypatch):
    import sweep.fit.bootstrap as bootstrap

    runs = chinchilla_runs(TRUTH)
    monkeypatch.setattr(bootstrap, "BATCH_ELEMENTS", len(runs) * 8)  # 8 resamples a batch
    reports = []
    fit_all(runs, FitConfig(bootstrap=20), progress=lambda *report: reports.append(report))
    stages = [stage for stage, _, _ in reports]
    assert stages[0] == "Approach 3" and "Approach 2" in stages
    bootstrap = [(done, total) for stage, done, total in reports if stage == "Approach 3 bootstrap"]
    dones = [done for done, _ in bootstrap]
    assert len(bootstrap) == 3 and dones == sorted(set(dones)) and bootstrap[-1] == (20, 20)
