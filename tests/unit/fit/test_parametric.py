import numpy as np
import pandas as pd
import pytest

from sweep.config import FitConfig
from sweep.fit import parametric
from sweep.fit.bootstrap import draw
from sweep.fit.errors import FitError
from sweep.fit.forms import Chinchilla
from sweep.fit.parametric import fit_parametric
from sweep.fit.report import fit_all


def epoch_rows(path):
    """Epoch's conventions: D = C / (6N), and drop the 5 highest-loss rows."""
    frame = pd.read_csv(path).sort_values("loss").iloc[:-5]
    n, c = frame["Model Size"].to_numpy(), frame["Training FLOP"].to_numpy()
    return n, c / (6 * n), frame["loss"].to_numpy()


def test_reproduces_epochs_huber_lbfgs_fit_on_chinchilla_data(epoch_csv):
    n, d, loss = epoch_rows(epoch_csv)
    assert len(n) == 240
    law = fit_parametric(n, d, loss, delta=1e-3).law
    # Besiroglu et al. 2024, Huber(1e-3) with L-BFGS-B over their grid of starts.
    assert pytest.approx(1.8172, rel=0.002) == law.E
    assert law.alpha == pytest.approx(0.34731, rel=0.002)
    assert law.beta == pytest.approx(0.36718, rel=0.002)


def test_bootstrap_intervals_match_epochs_published_intervals(epoch_csv):
    n, d, loss = epoch_rows(epoch_csv)
    report = fit_all(pd.DataFrame({"N": n, "D": d, "C": 6 * n * d, "loss": loss}), FitConfig(bootstrap=200))
    bands = report.parameter_intervals()
    for name, (low, high) in {"E": (1.769, 1.871), "alpha": (0.317, 0.373), "beta": (0.331, 0.415)}.items():
        # With 200 resamples a 2.5% quantile wanders by ~5% of the interval's width (one sd): 15% is 3 sd.
        # An interval of [0, inf), or one shifted or twice as wide, fails.
        width = high - low
        assert abs(bands[name][0] - low) < 0.15 * width and abs(bands[name][1] - high) < 0.15 * width, (name, bands)


@pytest.mark.slow
def test_95_percent_intervals_cover_the_true_parameters_in_at_least_90_percent_of_repetitions():
    """Calibration: sweeps drawn from a known law with 0.5% noise, a bootstrap per sweep."""
    truth = Chinchilla(E=1.7, A=400.0, B=410.0, alpha=0.34, beta=0.28)
    repetitions, covered = 40, {"E": 0, "alpha": 0, "beta": 0}
    for seed in range(repetitions):
        rng = np.random.default_rng(seed)
        rows = []
        for c in (1e18, 3e18, 1e19, 3e19, 1e20):
            for size in truth.optimal_params(c) * 16 ** np.linspace(-0.5, 0.5, 7):
                rows.append({"N": size, "D": c / (6 * size), "C": c, "budget": c})
        runs = pd.DataFrame(rows)
        runs["loss"] = truth.loss(runs["N"], runs["D"]) * np.exp(rng.normal(0, 0.005, len(runs)))
        bands = fit_all(runs, FitConfig(bootstrap=100, seed=seed)).parameter_intervals()
        for name in covered:
            covered[name] += bands[name][0] <= getattr(truth, name) <= bands[name][1]
    assert all(hits >= 0.9 * repetitions for hits in covered.values()), covered


def test_recovers_known_parameters_from_noisy_synthetic_runs():
    truth = Chinchilla(E=1.7, A=400.0, B=1200.0, alpha=0.34, beta=0.30)
    rng = np.random.default_rng(0)
    n = np.exp(rng.uniform(np.log(1e7), np.log(1e10), 200))
    d = np.exp(rng.uniform(np.log(1e9), np.log(1e12), 200))
    loss = truth.loss(n, d) * np.exp(rng.normal(0, 0.002, 200))
    law = fit_parametric(n, d, loss).law
    assert pytest.approx(truth.E, rel=0.03) == law.E
    assert law.alpha == pytest.approx(truth.alpha, rel=0.1)
    assert law.beta == pytest.approx(truth.beta, rel=0.1)


def test_fewer_points_than_parameters_is_a_user_error():
    with pytest.raises(FitError, match="at least 6"):
        fit_parametric([1e6, 2e6, 4e6, 8e6, 1.6e7], [1e9] * 5, [3.0, 2.9, 2.8, 2.7, 2.6])


def synthetic_points(count: int, seed: int = 0):
    truth = Chinchilla(E=1.7, A=400.0, B=1200.0, alpha=0.34, beta=0.30)
    rng = np.random.default_rng(seed)
    n = np.exp(rng.uniform(np.log(1e7), np.log(1e10), count))
    d = np.exp(rng.uniform(np.log(1e9), np.log(1e12), count))
    return np.log(np.array([n, d])), truth.loss(n, d) * np.exp(rng.normal(0, 0.002, count))


def test_a_large_table_reaches_the_optimum_found_by_scoring_every_point(monkeypatch):
    logs, loss = synthetic_points(600)
    theta, objective = parametric.fit_terms(logs, loss)
    monkeypatch.setattr(parametric, "SCORED_ROWS", 150)  # the grid scored on 150 of the 600 points
    theta_sub, objective_sub = parametric.fit_terms(logs, loss)
    # Both are L-BFGS-B optima of the same objective (ftol 1e-15): equal to well within 1e-9.
    assert objective_sub == pytest.approx(objective, rel=1e-9)
    assert theta_sub == pytest.approx(theta, rel=1e-4)


@pytest.mark.parametrize("seed_noise", [0.0, 0.005])
def test_batched_refits_reach_what_one_l_bfgs_b_polish_per_resample_reaches(seed_noise):
    logs, loss = synthetic_points(80, seed=1)
    theta, _ = parametric.fit_terms(logs, loss)
    table = pd.DataFrame({"loss": loss})
    (resamples,) = draw(table, 40, seed=3, seed_noise=seed_noise).batches()
    drawn = resamples.loss(loss)
    batched = parametric.refit_terms(theta, logs, drawn, 1e-3, rows=resamples.rows)
    for i, rows in enumerate(resamples.rows):
        log_l = np.log(drawn[i])
        ours = parametric.objective_and_gradient(batched[i], logs[:, rows], log_l, 1e-3)[0]
        polished_theta, polished = parametric.polish(theta, logs[:, rows], log_l, 1e-3)
        assert ours <= polished * (1 + 1e-6)
        assert batched[i][3:] == pytest.approx(polished_theta[3:], abs=2e-3)


def test_refits_in_chunks_equal_refits_in_one_pass(monkeypatch):
    logs, loss = synthetic_points(50, seed=2)
    theta, _ = parametric.fit_terms(logs, loss)
    (resamples,) = draw(pd.DataFrame({"loss": loss}), 9, seed=0).batches()
    whole = parametric.refit_terms(theta, logs, resamples.loss(loss), 1e-3, rows=resamples.rows)
    monkeypatch.setattr(parametric, "CHUNK_ELEMENTS", 50 * 5 * 2)  # 2 resamples a pass, the last one alone
    chunked = parametric.refit_terms(theta, logs, resamples.loss(loss), 1e-3, rows=resamples.rows)
    assert np.array_equal(whole, chunked)


def test_the_profile_solves_the_linear_part_exactly_without_noise():
    """At the true exponents, the non-negative least squares of the profile recovers E, A, B."""
    truth = Chinchilla(E=1.7, A=400.0, B=1200.0, alpha=0.34, beta=0.30)
    rng = np.random.default_rng(0)
    n, d = np.exp(rng.uniform(np.log(1e7), np.log(1e10), 30)), np.exp(rng.uniform(np.log(1e9), np.log(1e12), 30))
    objective, thetas = parametric.profile(
        np.array([[0.34, 0.30], [0.5, 0.5]]), np.log([n, d]), np.log(truth.loss(n, d)), 1e-3
    )
    assert objective[0] < 1e-20 < objective[1]
    assert np.exp(thetas[0, :3]) == pytest.approx([1.7, 400.0, 1200.0], rel=1e-6)


def test_a_term_the_data_does_not_want_is_switched_off_by_the_profile_and_revived_for_refinement():
    """Losses that do not depend on D: the best linear part at any beta has B = 0."""
    n = np.geomspace(1e7, 1e10, 12)
    d = np.tile([1e9, 1e11], 6)
    loss = 1.7 + 400.0 / n**0.34
    logs, log_l = np.log([n, d]), np.log(loss)
    _, thetas = parametric.profile(np.array([[0.34, 0.3]]), logs, log_l, 1e-3)
    assert thetas[0, 2] == parametric.TINY
    revived = parametric.revive(thetas, logs, log_l)
    assert np.exp(revived[0, 2] - 0.3 * logs[1].mean()) == pytest.approx(1e-4 * loss.min())


def test_the_batched_non_negative_least_squares_agrees_with_scipys_nnls():
    from scipy.optimize import nnls

    rng = np.random.default_rng(0)
    columns = rng.uniform(0.1, 1.0, (200, 30, 3)) ** rng.uniform(0.1, 4.0, (200, 1, 3))
    target = columns @ rng.normal(0.5, 1.0, (200, 3, 1))[..., 0][..., None] + rng.normal(0, 0.05, (200, 30, 1))
    gram = columns.transpose(0, 2, 1) @ columns
    b = (columns.transpose(0, 2, 1) @ target)[..., 0]
    ours = parametric.nonnegative_least_squares(gram, b)
    theirs = np.array([nnls(x, y[:, 0])[0] for x, y in zip(columns, target, strict=True)])
    assert (theirs == 0).any() and (theirs > 0).all(axis=1).any()  # both kinds of answer occur
    assert ours == pytest.approx(theirs, abs=1e-6)


def test_no_resamples_give_no_refits():
    logs, loss = synthetic_points(30)
    theta, _ = parametric.fit_terms(logs, loss)
    assert parametric.refit_terms(theta, logs, np.empty((0, 30)), 1e-3, rows=np.empty((0, 30), dtype=int)).shape == (
        0,
        5,
    )


def test_the_reported_law_is_the_fitted_one_when_a_term_is_switched_off_or_tiny():
    """Losses with no floor, and losses that do not depend on N: the law's own objective is the fit's."""
    rng = np.random.default_rng(2)
    n, d = np.exp(rng.uniform(np.log(1e7), np.log(1e10), 40)), np.exp(rng.uniform(np.log(1e9), np.log(1e12), 40))
    for loss in (400.0 / n**0.34 + 1200.0 / d**0.3, (1.7 + 1200.0 / d**0.3) * np.exp(rng.normal(0, 0.003, 40))):
        fit = fit_parametric(n, d, loss)
        law = fit.law
        theta = np.log([law.E, law.A, law.B, np.exp(law.alpha), np.exp(law.beta)])
        theta[3:] = law.alpha, law.beta
        with np.errstate(divide="ignore"):
            reported = parametric.objective_and_gradient(theta, np.log([n, d]), np.log(loss), 1e-3)[0]
        assert reported == pytest.approx(fit.objective, rel=1e-9, abs=1e-20)


def test_refits_of_a_law_whose_floor_is_switched_off_keep_it_off_where_that_fits_better():
    rng = np.random.default_rng(3)
    n, d = np.exp(rng.uniform(np.log(1e7), np.log(1e10), 40)), np.exp(rng.uniform(np.log(1e9), np.log(1e12), 40))
    loss = 400.0 / n**0.34 + 1200.0 / d**0.3  # no floor
    theta = np.array([-np.inf, np.log(400.0), np.log(1200.0), 0.34, 0.3])  # E switched off
    (resamples,) = draw(pd.DataFrame({"loss": loss}), 20, seed=0).batches()
    refits = parametric.refit_terms(theta, np.log([n, d]), resamples.loss(loss), 1e-3, rows=resamples.rows)
    assert (np.exp(refits[:, 0]) < 1e-8 * loss.min()).all()  # started alive at 1e-4 of it, a refit would stay near
