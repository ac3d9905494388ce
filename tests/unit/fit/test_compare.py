"""sweep/fit/compare.py: frontiers, multipliers, crossings and the shared floor, on laws whose answer
is known (sweep/fit/synthetic.py). The coverage of the multiplier's interval over 40 noisy pairs is
measured by bench/compare_coverage.py; here a smaller set of pairs checks it cannot silently collapse."""

from __future__ import annotations

import numpy as np
import pytest

from sweep.config import FitConfig
from sweep.fit.compare import Frontiers, compare_fits, crossings, fit_shared_floor, interval, multipliers
from sweep.fit.errors import FitError
from sweep.fit.forms import Chinchilla
from sweep.fit.report import fit_all
from sweep.fit.synthetic import compute_scaled, crossing_law, isoflop_runs

LAW = Chinchilla(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
BUDGETS = [1e18, 3e18, 1e19, 3e19]


def test_the_frontier_is_the_law_at_its_best_allocation():
    compute = np.array([1e17, 1e20, 1e23])
    n = np.geomspace(1e5, 1e13, 200_001)[:, None]
    brute = LAW.loss(n, compute / (6 * n)).min(axis=0)
    np.testing.assert_allclose(Frontiers.of([LAW]).loss(compute)[0], brute, rtol=1e-9)


def test_compute_for_inverts_the_frontier_and_is_infinite_at_the_floor():
    frontier = Frontiers.of([LAW])
    compute = np.array([1e18, 1e22])
    np.testing.assert_allclose(frontier.compute_for(frontier.loss(compute))[0], compute, rtol=1e-9)
    assert frontier.compute_for(np.array([[LAW.E, LAW.E - 0.1]]))[0].tolist() == [np.inf, np.inf]


def test_an_unidentified_law_has_no_frontier():
    flat = Chinchilla(E=1.0, A=10.0, B=10.0, alpha=-0.1, beta=0.3)
    assert np.isnan(Frontiers.of([flat]).loss([1e20])).all()


@pytest.mark.parametrize("k", [1.2, 2.0])
def test_a_compute_scaled_law_is_worth_k_at_every_compute(k):
    compute = np.geomspace(1e15, 1e25, 7)
    m = multipliers(Frontiers.of([LAW]), Frontiers.of([compute_scaled(LAW, k)]), compute)
    np.testing.assert_allclose(m[0], k, rtol=1e-9)


def test_crossings_find_where_two_frontiers_meet_and_nothing_where_they_do_not():
    base, crossing = Frontiers.of([LAW, LAW]), Frontiers.of([crossing_law(LAW, 3e20), compute_scaled(LAW, 2)])
    found = crossings(base, crossing, 1e16, 1e25)
    assert found[0] == pytest.approx(3e20, rel=1e-9)
    assert np.isnan(found[1])  # a constant multiplier: parallel frontiers never meet


def test_interval_keeps_infinite_bounds_and_drops_nan():
    values = np.r_[np.linspace(1, 2, 97), np.inf, np.inf, np.inf, np.nan]
    low, high = interval(values)
    assert 1.0 < low < 1.05 and high == np.inf  # order statistics: no inf - inf NaN from interpolation
    assert interval([np.nan, 1.0]) is None


def fitted(law: Chinchilla, noise: float, seed: int, config: FitConfig):
    runs = isoflop_runs(law, BUDGETS, noise=noise, seed=seed)
    return runs, fit_all(runs, config)


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("k", [1.2, 2.0])
def test_noise_free_sweeps_give_the_multiplier_within_five_percent(k, shared):
    config = FitConfig(bootstrap=20)
    (a, fit_a), (b, fit_b) = fitted(LAW, 0.0, 0, config), fitted(compute_scaled(LAW, k), 0.0, 1, config)
    comparison = compare_fits(["a", "b"], [a, b], [fit_a, fit_b], config, shared_floor=shared)
    assert [t.compute for t in comparison.targets] == [1e18, 1e19, 1e20, 1e21, 1e22]
    for target in comparison.targets:
        m = target.variants[1].multiplier
        assert m.value == pytest.approx(k, rel=0.05)
        assert target.variants[1].significant  # exact data: the interval is k itself, away from 1
    assert comparison.crossovers[0].compute is None  # parallel frontiers
    if shared:
        assert comparison.laws[0].E == comparison.laws[1].E == pytest.approx(LAW.E, rel=1e-3)


def test_a_known_crossing_is_found_within_ten_percent_and_which_side_is_better():
    config = FitConfig(bootstrap=20)
    (a, fit_a), (b, fit_b) = fitted(LAW, 0.0, 0, config), fitted(crossing_law(LAW, 1e21), 0.0, 1, config)
    (crossing,) = compare_fits(["a", "b"], [a, b], [fit_a, fit_b], config).crossovers
    assert crossing.compute.value == pytest.approx(1e21, rel=0.10)
    low, high = crossing.compute.interval  # exact data: the refits agree, the interval is the point itself
    assert low <= 1e21 * (1 + 1e-9) and high >= 1e21 * (1 - 1e-9)
    assert crossing.better_above == "b"  # its steeper exponents win at large compute


def test_the_crossings_interval_is_where_the_difference_is_not_told_apart():
    from sweep.fit.compare import not_told_apart

    grid = np.geomspace(1, 1e6, 7)
    gaps = np.array([[-3.0, -2, -1, 0, 1, 2, -1], [-2.0, -1, 0, 1, 2, 3, 1]] * 20)  # 0 inside at 1e2-1e3, 1e6
    assert not_told_apart(grid, gaps) == [(1e2, 1e3), (1e6, np.inf)]


@pytest.mark.parametrize("k", [1.2, 2.0])
def test_the_multipliers_interval_covers_k_in_90_percent_of_40_noisy_pairs(k):
    """The issue's check, at every default target compute (1e18 to 1e22, up to 300x beyond the largest
    budget), with 0.5% noise on each run's loss and the default bootstrap; and at the budgets the
    change is told from none in most pairs."""
    config = FitConfig()
    covered, told_apart = np.zeros(5), 0
    for seed in range(40):
        (a, fit_a), (b, fit_b) = fitted(LAW, 0.005, 2 * seed, config), fitted(compute_scaled(LAW, k), 0.005,
                                                                              2 * seed + 1, config)  # fmt: skip
        targets = compare_fits(["a", "b"], [a, b], [fit_a, fit_b], config).targets
        covered += [t.variants[1].multiplier.interval[0] <= k <= t.variants[1].multiplier.interval[1] for t in targets]
        told_apart += bool(targets[1].variants[1].significant)  # at 1e19, among the budgets
    assert (covered >= 36).all(), covered
    assert told_apart >= (36 if k == 2.0 else 20), told_apart


def test_the_shared_floor_fits_one_e_and_refits_pair_up():
    config = FitConfig(bootstrap=30)
    (a, fit_a), (b, fit_b) = fitted(LAW, 0.003, 0, config), fitted(compute_scaled(LAW, 1.5), 0.003, 1, config)
    laws, z, points = fit_shared_floor([a, b], [fit_a.parametric.law, fit_b.parametric.law], 1e-3)
    assert laws[0].E == laws[1].E
    separate = fit_a.parametric.objective + fit_b.parametric.objective
    assert separate <= compare_objective(z, points) <= separate * 1.5 + 1e-6  # one constraint: a little worse
    comparison = compare_fits(["a", "b"], [a, b], [fit_a, fit_b], config, shared_floor=True)
    assert comparison.shared_floor and comparison.refits <= 30
    assert all(law.E == comparison.laws[0].E for law in comparison.laws)


def compare_objective(z, points) -> float:
    from sweep.fit.compare import joint_objective

    return joint_objective(z, points, 1e-3)[0]


def test_an_unfittable_or_unidentified_sweep_is_refused_with_its_name():
    config = FitConfig(bootstrap=0)
    a, fit_a = fitted(LAW, 0.0, 0, config)
    few = a.iloc[:4]
    with pytest.raises(FitError, match="few: Approach 3 could not be fitted"):
        compare_fits(["a", "few"], [a, few], [fit_a, fit_all(few, config, allow_unfitted=True)], config)


def test_three_sweeps_are_each_compared_with_the_first_and_the_json_has_the_issue_shape():
    config = FitConfig(bootstrap=20)
    fits = [fitted(compute_scaled(LAW, k), 0.0, i, config) for i, k in enumerate((1.0, 1.5, 3.0))]
    comparison = compare_fits(["a", "b", "c"], [f[0] for f in fits], [f[1] for f in fits], config,
                              computes=[1e21, 1e19])  # fmt: skip
    payload = comparison.to_dict()
    assert [t["compute"] for t in payload["targets"]] == [1e19, 1e21]
    a, b, c = payload["targets"][0]["variants"]
    assert "multiplier" not in a and set(a["loss"]) == {"value", "interval"}
    assert b["multiplier"]["value"] == pytest.approx(1.5, rel=0.01) and len(b["multiplier"]["interval"]) == 2
    assert c["multiplier"]["value"] == pytest.approx(3.0, rel=0.01)
    assert set(payload["curves"]["multiplier"]) == {"b", "c"}


def test_the_json_is_strict_when_the_baseline_never_reaches_a_variants_loss():
    import json

    config = FitConfig(bootstrap=20)
    lower_floor = Chinchilla(E=1.2, A=LAW.A, B=LAW.B, alpha=LAW.alpha, beta=LAW.beta)
    (a, fit_a), (b, fit_b) = fitted(LAW, 0.0, 0, config), fitted(lower_floor, 0.0, 1, config)
    payload = compare_fits(["a", "b"], [a, b], [fit_a, fit_b], config, computes=[1e19, 1e24]).to_dict()
    text = json.dumps(payload, allow_nan=False)  # raises on inf or NaN
    assert payload["targets"][1]["variants"][1]["multiplier"] == {"value": None, "interval": [None, None]}
    assert None in payload["curves"]["multiplier"]["b"]["value"] and "Infinity" not in text


@pytest.mark.parametrize(
    "law, why",
    [
        (Chinchilla(E=1.7, A=400.0, B=410.0, alpha=-0.1, beta=0.3), "alpha = -0.1 <= 0"),
        (Chinchilla(E=1.7, A=0.0, B=410.0, alpha=0.34, beta=0.28), "A = 0: the loss does not fall with N"),
    ],
)
def test_a_law_without_a_frontier_is_refused_with_why(law, why):
    from sweep.fit.compare import check_frontier

    with pytest.raises(FitError, match=f"b: Approach 3 has no compute-optimal frontier \\({why}\\)"):
        check_frontier("b", law)


def test_pairs_with_a_refit_without_a_frontier_are_dropped_and_counted():
    from sweep.fit.compare import compare

    flat = Chinchilla(E=1.7, A=400.0, B=410.0, alpha=-0.1, beta=0.3)
    samples = [Frontiers.of([LAW, LAW, LAW]), Frontiers.of([compute_scaled(LAW, 2), flat, compute_scaled(LAW, 2)])]
    comparison = compare(["a", "b"], [LAW, compute_scaled(LAW, 2)], samples, [1e20], (1e16, 1e24), [20, 20], "x", False)
    assert comparison.refits == 2
    assert comparison.notes == ["1 of 3 paired refits dropped: a refit of some sweep has no compute-optimal frontier "
                                "(an exponent <= 0 or a term switched off); the intervals are of the rest"]  # fmt: skip


def test_refits_of_sweeps_resampled_alike_are_paired_at_random():
    """Two sweeps of the same runs, fitted with the same seed, resample the same rows: paired in order,
    every refit pair would agree and the interval collapse to exactly 1."""
    config = FitConfig(bootstrap=40)
    a, fit_a = fitted(LAW, 0.005, 0, config)
    (target,) = compare_fits(["a", "a again"], [a, a], [fit_a, fit_all(a, config)], config, computes=[1e19]).targets
    low, high = target.variants[1].multiplier.interval
    assert low < 0.99 and high > 1.01
