"""Shared trunks (train.schedule=wsd sweep.share_trunks=true): per shape, one stable-LR trunk up to
the largest token count its budgets need, and each budget's run a short decay branch off the
trunk's stable checkpoint (MiniCPM's WSD; "Scaling Laws and Compute-Optimal Training Beyond Fixed
Training Durations"). A branch is an ordinary run in the store, an (N, D, loss) point like any other;
the trunk (role "trunk") is only its stable phase and is never fitted.

Budgets share shapes only if their grids pick the same ones, so the sizes of every budget are
consecutive rungs of one ladder (the grid's log spacing, anchored at the smallest model) instead of
a spacing centred on each budget's own guess. Every branch of a trunk trains with the trunk's batch
and warmup: the rule's batch at the geometric mean of its branches' tokens, and warmup_frac of its
smallest branch's steps. The rule gives a run alone a batch that grows with its tokens, and at these
sizes the loss at fixed tokens still falls with the steps, so a shared batch moves the branches'
losses both ways of their independent twins' (measured in bench/wsd.py); the smallest branch's
batch, which gives every branch at least the steps of its twin, biased every loss low by 1.7% on
average and the target's prediction by 6%.
A trunk does not depend on the decay's shape, so plans that differ only there share it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import replace

from sweep.config import Config
from sweep.errors import UserError
from sweep.plan.hparams import batch_size
from sweep.plan.shapes import Shape
from sweep.spec import RunSpec


def check_sharing(config: Config) -> None:
    if str(config.train.schedule) != "wsd":
        raise UserError("sweep.share_trunks=true needs train.schedule=wsd (branches decay off a stable trunk)")
    if str(config.sweep.kind) != "isoflop":
        raise UserError(f"sweep.share_trunks=true plans IsoFLOP grids only, not sweep.kind={config.sweep.kind}")


def ladder_shapes(budget: float, config: Config) -> list[Shape]:
    """sizes_per_budget consecutive rungs of the ladder N_k = N_smallest * ratio^k nearest the
    budget's centre, ratio = size_span^(1 / (sizes - 1)); where rungs snap to one shape, the ladder
    continues above."""
    from sweep.plan.grids import centre_params, fits_budget, shape_rules, unique_shapes

    s = config.sweep
    rules = shape_rules(config)
    count = s.sizes_per_budget
    ratio = s.size_span ** (1 / max(1, count - 1))
    base = rules.smallest.N
    centre = centre_params(budget, s.tokens_per_param)
    first = max(0, round(math.log(centre / base) / math.log(ratio)) - (count - 1) // 2) if ratio > 1 else 0
    rung = first + count
    shapes = unique_shapes([rules.snap(base * ratio**k) for k in range(first, rung)])
    while ratio > 1 and len(shapes) < count and fits_budget(shapes[-1], budget, config):
        shapes = unique_shapes([*shapes, rules.snap(base * ratio**rung)])
        rung += 1
    return [shape for shape in shapes if fits_budget(shape, budget, config)][:count]


def trunk_and_branches(shape: Shape, budgets: list[float], seed: int, config: Config) -> list[RunSpec]:
    """The trunk of one shape and one decay branch per budget, the trunk first."""
    from sweep.plan.grids import run_spec

    t, seq_len = config.train, config.model.seq_len
    tokens = [budget / shape.flops_per_token for budget in budgets]
    batch = batch_size(math.prod(tokens) ** (1 / len(tokens)), seq_len, t)
    branches = [run_spec(shape, budget, seed, config, batch=batch) for budget in budgets]
    warmup = max(1, round(t.warmup_frac * min(b.steps for b in branches)))
    decay_starts = [b.steps - round(b.decay_frac * b.steps) for b in branches]
    if min(decay_starts) <= warmup:
        shortest = min(branches, key=lambda b: b.steps)
        raise UserError(
            f"train.decay_frac={t.decay_frac:g} leaves the {shortest.steps}-step branch of d_model={shape.d_model} "
            f"at budget {shortest.budget:.3g} no stable steps after its {warmup}-step warmup; lower train.decay_frac"
        )
    trunk_steps = max(decay_starts)
    trunk = replace(
        branches[0], tokens=trunk_steps * batch * seq_len, decay_frac=0.0, decay_shape="linear", warmup_steps=warmup,
        role="trunk",
        budget=0.0, branch_steps=tuple(sorted(set(decay_starts) - {trunk_steps})),
    )  # fmt: skip
    return [trunk] + [
        replace(b, warmup_steps=warmup, parent=trunk.run_id, branch_step=start)
        for b, start in zip(branches, decay_starts, strict=True)
    ]


def shared_plan(config: Config) -> list[RunSpec]:
    """Every shape's trunk and branches over the sweep's budgets and seeds."""
    from sweep.plan.grids import check_budget

    check_sharing(config)
    budgets_of: dict[tuple[int, int], list[float]] = defaultdict(list)
    shapes: dict[tuple[int, int], Shape] = {}
    for budget in sorted(config.sweep.budgets):
        check_budget(budget, config)
        for shape in ladder_shapes(budget, config):
            key = (shape.d_model, shape.n_layers)
            shapes[key] = shape
            budgets_of[key].append(budget)
    return [
        spec for seed in config.sweep.seeds for key in sorted(shapes, key=lambda k: shapes[k].N)
        for spec in trunk_and_branches(shapes[key], budgets_of[key], seed, config)
    ]  # fmt: skip


def branch_off(trunks: list[RunSpec], shape: Shape, budget: float, seed: int, config: Config) -> list[RunSpec]:
    """A decay branch at `budget` for a shape that has trunks already (the next wave of a shared
    sweep): it starts from the trunk checkpoint at its branch point, or from a continuation trunk
    that resumes the latest kept checkpoint before it and trains the stable phase up to there. The
    branch trains with the batch, LR and warmup of the shape's longest trunk, and only trunks trained
    with those count. A shape with no trunk, or whose trunks keep no checkpoint before the branch
    point, gets a new trunk (with those settings where it has one)."""
    from sweep.plan.grids import run_spec

    shape_key = (shape.d_model, shape.n_layers, seed)
    own = [t for t in trunks if t.role == "trunk" and (t.d_model, t.n_layers, t.seed) == shape_key]
    if not own:
        return trunk_and_branches(shape, [budget], seed, config)
    longest = max(own, key=lambda t: t.steps)
    settings = {"batch_size": longest.batch_size, "lr": longest.lr, "warmup_steps": longest.warmup_steps}
    alike = [t for t in own if all(getattr(t, k) == v for k, v in settings.items())]
    branch = replace(run_spec(shape, budget, seed, config, batch=longest.batch_size, lr=longest.lr),
                     warmup_steps=longest.warmup_steps)  # fmt: skip
    start = branch.steps - round(branch.decay_frac * branch.steps)
    kept = [(step, t) for t in alike for step in (*t.branch_steps, t.steps) if step <= start]
    if not kept:
        new_trunk = replace(branch, tokens=start * branch.batch_size * branch.seq_len, decay_frac=0.0,
                            decay_shape="linear", role="trunk", budget=0.0)  # fmt: skip
        return [new_trunk, replace(branch, parent=new_trunk.run_id, branch_step=start)]
    step, trunk = max(kept, key=lambda kept_at: kept_at[0])
    if step == start:
        return [replace(branch, parent=trunk.run_id, branch_step=start)]
    tokens = start * trunk.batch_size * trunk.seq_len
    continuation = replace(trunk, tokens=tokens, parent=trunk.run_id, branch_step=step, branch_steps=(), budget=0.0)
    return [continuation, replace(branch, parent=continuation.run_id, branch_step=start)]
