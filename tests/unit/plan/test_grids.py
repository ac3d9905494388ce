import math

import pytest

from sweep.config import compose
from sweep.errors import UserError
from sweep.plan.flops import spec_counts
from sweep.plan.grids import (
    MIN_STEPS,
    extension_shapes,
    isoflop_shapes,
    make_plan,
    run_spec,
    shape_rules,
    single_run_spec,
)


def test_default_plan_is_an_isoflop_grid_of_at_least_3_budgets_by_5_sizes():
    config = compose()
    specs = make_plan(config).specs
    budgets = sorted({s.budget for s in specs})
    assert len(budgets) >= 3
    for budget in budgets:
        runs = [s for s in specs if s.budget == budget]
        assert len(runs) >= 5
        sizes = [spec_counts(s)[0] for s in runs]
        assert len(set(sizes)) == len(sizes)
        for spec in runs:
            compute = spec.tokens * spec_counts(spec)[2]
            assert compute == pytest.approx(budget, rel=0.05)
    assert len({s.run_id for s in specs}) == len(specs)


def test_within_a_budget_depth_never_falls_as_size_grows():
    """One shape family per grid: N and shape are not confounded (no 2, 1, 2, 3, 2 layers)."""
    config = compose()
    for budget in config.sweep.budgets:
        layers = [s.n_layers for s in isoflop_shapes(budget, config)]
        assert layers == sorted(layers) and min(layers) >= config.model.min_layers


def test_every_proxy_gets_the_minimum_steps():
    config = compose()
    assert all(s.steps >= config.train.min_steps for s in make_plan(config).specs)
    starved = make_plan(compose(["train.min_steps=0"])).specs  # the batch floor alone starves the large-N end
    assert min(s.steps for s in starved) < config.train.min_steps


def test_a_budget_whose_small_sizes_share_the_smallest_shape_keeps_its_count_above():
    config = compose(["sweep.budgets=[3e10]"])
    shapes = isoflop_shapes(3e10, config)
    assert len(shapes) == config.sweep.sizes_per_budget
    assert len({s.N for s in shapes}) == len(shapes)


def test_bigger_budgets_train_bigger_models_on_bigger_batches():
    specs = make_plan(compose()).specs
    lo, hi = min(s.budget for s in specs), max(s.budget for s in specs)
    mean_width = {b: sum(s.d_model for s in specs if s.budget == b) for b in (lo, hi)}
    assert mean_width[hi] > mean_width[lo]
    assert max(s.batch_size for s in specs if s.budget == hi) > min(s.batch_size for s in specs if s.budget == lo)


def test_budget_too_small_for_the_smallest_model_is_a_user_error():
    with pytest.raises(UserError, match="too small"):
        make_plan(compose(["sweep.budgets=[1e6]"]))


def test_widthdepth_grid_spans_aspect_ratios_at_one_size():
    specs = make_plan(compose(["sweep=widthdepth"])).specs
    assert len(specs) >= 3
    ratios = sorted(s.d_model / s.n_layers for s in specs)
    assert ratios[-1] / ratios[0] >= 4
    sizes = [spec_counts(s)[0] for s in specs]
    assert max(sizes) / min(sizes) < 1.25


def test_extension_continues_the_grid_beyond_an_edge():
    config = compose()
    budget = config.sweep.budgets[-1]
    trained = isoflop_shapes(budget, config)
    below = extension_shapes(budget, trained, "below", config)
    above = extension_shapes(budget, trained, "above", config)
    assert below and all(min(t.N for t in trained) > s.N for s in below)
    assert above and all(max(t.N for t in trained) < s.N for s in above)


def test_single_run_spec_from_the_run_section():
    spec = single_run_spec(compose(["run.d_model=64", "run.n_layers=2", "run.tokens=1e6"]))
    assert (spec.d_model, spec.n_layers, spec.n_heads) == (64, 2, 8)  # heads of model.head_dim=8
    assert math.isclose(spec.tokens, 1e6, rel_tol=0.05)
    with pytest.raises(UserError, match="run.d_model"):
        single_run_spec(compose())
    with pytest.raises(UserError, match="multiple"):
        single_run_spec(compose(["run.d_model=60", "run.n_layers=2", "run.tokens=1e6"]))
    assert shape_rules(compose()).smallest.d_model == 16


def test_lrbatch_grid_trains_each_size_at_every_lr_and_batch_multiplier_on_its_budget():
    config = compose(["sweep=lrbatch", "sweep.seeds=[0,1]"])
    s, t = config.sweep, config.train
    specs = make_plan(config).specs
    assert len({spec.run_id for spec in specs}) == len(specs)
    for budget in s.budgets:
        runs = [spec for spec in specs if spec.budget == budget]
        shapes = {(spec.d_model, spec.n_layers) for spec in runs}
        assert shapes == {(x.d_model, x.n_layers) for x in isoflop_shapes(budget, config)}
        assert len(shapes) == s.sizes_per_budget
        for d_model, n_layers in shapes:
            size = [spec for spec in runs if (spec.d_model, spec.n_layers) == (d_model, n_layers)]
            rule = run_spec_of_size(size[0], config)
            multipliers = sorted({round(spec.lr / rule.lr, 6) for spec in size})
            assert multipliers == sorted(s.lr_multipliers)
            batches = {spec.batch_size for spec in size}
            expected = {
                min(t.max_batch_size, max(t.min_batch_size, round(rule.batch_size * k))) for k in s.batch_multipliers
            }
            assert batches == expected and len(batches) >= 2
            assert len(size) == len(batches) * len(s.lr_multipliers) * len(s.seeds)
            for spec in size:
                assert spec.tokens * spec_counts(spec)[2] == pytest.approx(budget, rel=0.05)
                assert spec.steps >= MIN_STEPS


def run_spec_of_size(spec, config):
    """The run the rules give this spec's size at its budget."""
    return run_spec(shape_rules(config).make(spec.d_model, spec.n_layers), spec.budget, spec.seed, config)


def test_lrbatch_run_count_is_capped_like_the_other_grids():
    with pytest.raises(UserError, match="LR x batch multipliers"):
        compose(["sweep=lrbatch", "sweep.sizes_per_budget=200", "sweep.lr_multipliers=[1,2,3,4,5,6,7,8,9,10]"])


def test_a_size_span_of_1_plans_one_size_per_budget_instead_of_hanging():
    config = compose(["sweep.size_span=1"])
    specs = make_plan(config).specs
    assert len(specs) == len(config.sweep.budgets)
