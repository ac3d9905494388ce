"""Shared trunks: one stable trunk per shape, a decay branch per budget, planned for fewer FLOPs."""

from collections import defaultdict

import pytest

from models.schedules import spec_schedule
from sweep.api import PlanCost, describe
from sweep.config import compose
from sweep.errors import UserError
from sweep.plan.grids import make_plan, shape_rules
from sweep.plan.trunks import ladder_shapes


def shared(*overrides):
    return make_plan(compose(["sweep=wsd", *overrides])).specs


def test_every_branch_decays_off_its_shapes_trunk_with_the_trunks_batch_warmup_and_lr():
    specs = shared()
    trunks = {s.run_id: s for s in specs if s.role == "trunk"}
    branches = [s for s in specs if s.role != "trunk"]
    assert trunks and len(branches) == 12 * 5  # every budget keeps its five sizes
    seen = set()
    for spec in specs:
        if spec.role == "trunk":
            seen.add(spec.run_id)
            continue
        trunk = trunks[spec.parent]
        assert spec.parent in seen  # a trunk is planned before its branches
        for name in ("d_model", "n_layers", "batch_size", "lr", "warmup_steps", "seed", "schedule"):
            assert getattr(spec, name) == getattr(trunk, name), name
        schedule = spec_schedule(spec)
        assert spec.branch_step == schedule.decay_start == spec.steps - round(0.2 * spec.steps)
        assert spec.branch_step in (*trunk.branch_steps, trunk.steps)
        assert spec_schedule(trunk).decay_steps == 0
    for trunk in trunks.values():
        own = [s.branch_step for s in branches if s.parent == trunk.run_id]
        assert trunk.steps == max(own)  # the trunk goes exactly as far as its longest branch needs
        assert set(trunk.branch_steps) == set(own) - {max(own)}


def test_budgets_share_shapes_so_each_shape_has_one_trunk():
    specs = shared()
    budgets_per_shape = defaultdict(set)
    for s in specs:
        if s.role != "trunk":
            budgets_per_shape[(s.d_model, s.n_layers)].add(s.budget)
    trunk_shapes = [(s.d_model, s.n_layers) for s in specs if s.role == "trunk"]
    assert sorted(trunk_shapes) == sorted(budgets_per_shape)
    assert max(len(b) for b in budgets_per_shape.values()) >= 8


def test_the_preset_costs_at_least_2_5x_fewer_flops_than_its_runs_trained_apart():
    cost = PlanCost.of([describe(s) for s in shared()])
    assert cost.independent_flops / cost.planned_flops >= 2.5
    assert cost.branches == 60 and cost.trunks == len({(s.d_model, s.n_layers) for s in shared()})


def test_plans_that_differ_only_in_their_decay_shape_share_trunks():
    linear, root = shared(), shared("train.decay_shape=one_minus_sqrt")
    trunk_ids = [{s.run_id for s in plan if s.role == "trunk"} for plan in (linear, root)]
    assert trunk_ids[0] == trunk_ids[1]
    branch_ids = [{s.run_id for s in plan if s.role != "trunk"} for plan in (linear, root)]
    assert not branch_ids[0] & branch_ids[1]


def test_ladder_sizes_are_consecutive_rungs_around_each_budgets_centre():
    config = compose(["sweep=wsd"])
    rules = shape_rules(config)
    low, high = ladder_shapes(6e10, config), ladder_shapes(1e12, config)
    assert len(low) == len(high) == 5
    assert low[0] == rules.smallest and high[0].N > low[0].N
    assert set(low) & set(high)  # neighbouring decades still share rungs


def test_a_cosine_plan_keeps_the_run_ids_it_had_before_schedules_existed():
    plain = make_plan(compose(["sweep=smoke"])).specs
    assert all(s.schedule == "cosine" and not s.parent and s.role == "proxy" for s in plain)
    assert plain[0].run_id == "bd678f1a235f"  # as the README shows it


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["sweep.share_trunks=true"], "needs train.schedule=wsd"),
        (["sweep=widthdepth", "sweep.share_trunks=true", "train.schedule=wsd"], "IsoFLOP grids only"),
    ],
)
def test_sharing_what_cannot_be_shared_is_refused(overrides, message):
    with pytest.raises(UserError, match=message):
        make_plan(compose(overrides))


def test_a_later_branch_continues_its_shapes_trunk_and_pays_only_for_what_it_adds():
    from sweep.plan.trunks import branch_off

    config = compose(["sweep=wsd"])
    specs = make_plan(config).specs
    trunks = [s for s in specs if s.role == "trunk"]
    trunk = trunks[-1]
    shape = shape_rules(config).make(trunk.d_model, trunk.n_layers)
    continuation, branch = branch_off(trunks, shape, 3e12, trunk.seed, config)
    assert continuation.role == "trunk" and continuation.parent == trunk.run_id
    assert continuation.branch_step == trunk.steps < continuation.steps == branch.branch_step
    assert branch.parent == continuation.run_id and branch.budget == 3e12
    for name in ("batch_size", "lr", "warmup_steps"):
        assert getattr(branch, name) == getattr(continuation, name) == getattr(trunk, name)
    stable_added = (continuation.steps - trunk.steps) * trunk.batch_size * trunk.seq_len
    assert continuation.trained_tokens + branch.trained_tokens == stable_added + (branch.steps - branch.branch_step) * (
        branch.batch_size * branch.seq_len
    )
    saved = branch.tokens - continuation.trained_tokens - branch.trained_tokens
    assert saved == trunk.steps * trunk.batch_size * trunk.seq_len  # the trunk's stable phase, trained once
    new_shape = shape_rules(config).snap(5e6)
    alone = branch_off(trunks, new_shape, 3e12, 0, config)
    assert [s.role for s in alone] == ["trunk", "proxy"] and alone[1].parent == alone[0].run_id


def test_a_decay_that_leaves_a_branch_no_stable_phase_is_refused():
    with pytest.raises(UserError, match="no stable steps after its"):
        make_plan(compose(["sweep=wsd", "train.decay_frac=0.97", "train.warmup_frac=0.03"]))
    with pytest.raises(UserError, match="the decay would start inside the warmup"):
        compose(["sweep=wsd", "train.decay_frac=1"])


def test_a_later_branch_never_mixes_in_a_trunk_trained_with_another_batch():
    from dataclasses import replace

    from sweep.plan.trunks import branch_off

    config = compose(["sweep=wsd"])
    trunks = [s for s in make_plan(config).specs if s.role == "trunk"]
    trunk = trunks[-1]
    other = replace(trunk, batch_size=trunk.batch_size + 3, branch_steps=(3,))  # kept a checkpoint at step 3
    shape = shape_rules(config).make(trunk.d_model, trunk.n_layers)
    for budget in (1.5e11, 2e12):
        specs = branch_off([other, *trunks], shape, budget, trunk.seed, config)
        parents = {s.run_id: s for s in [other, *trunks, *specs]}
        for spec in specs:
            assert spec.batch_size == trunk.batch_size and spec.warmup_steps == trunk.warmup_steps
            assert spec.parent != other.run_id
            if spec.parent:  # it starts where its parent's kept checkpoint is
                assert spec.branch_step in (*parents[spec.parent].branch_steps, parents[spec.parent].steps)
