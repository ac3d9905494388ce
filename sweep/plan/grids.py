"""Grids of runs: IsoFLOP (sizes around each budget's guessed optimum), width/depth, and LR x batch."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from sweep.config import Config
from sweep.errors import UserError
from sweep.plan.hparams import batch_size, hidden_lr
from sweep.plan.shapes import Shape, ShapeRules
from sweep.spec import DataSpec, RunSpec

MIN_STEPS = 50  # a run shorter than this measures its warmup, not its model


def shape_rules(config: Config) -> ShapeRules:
    m = config.model
    return ShapeRules(
        config.data.vocab_size, m.seq_len, m.head_dim, m.aspect_ratio, m.min_d_model, m.max_layers, str(m.mlp),
        str(m.positions), m.min_layers, str(m.shape_rule),
    )  # fmt: skip


def centre_params(budget: float, tokens_per_param: float) -> float:
    """N at which D = tokens_per_param * N spends the budget under C = 6 N D."""
    return math.sqrt(budget / (6.0 * tokens_per_param))


def min_tokens(config: Config) -> int:
    return MIN_STEPS * config.train.min_batch_size * config.model.seq_len


def fits_budget(shape: Shape, budget: float, config: Config) -> bool:
    return budget / shape.flops_per_token >= min_tokens(config)


def check_budget(budget: float, config: Config) -> None:
    smallest = shape_rules(config).smallest
    needed = smallest.flops_per_token * min_tokens(config)
    if budget < needed:
        raise UserError(
            f"budget {budget:.3g} FLOPs is too small: the smallest model (d_model={smallest.d_model}, "
            f"{smallest.n_layers} layers) needs at least {needed:.3g} FLOPs for {MIN_STEPS} steps; raise sweep.budgets"
        )


def run_spec(
    shape: Shape, budget: float, seed: int, config: Config, tokens: float = 0, batch: int = 0, lr: float = 0
) -> RunSpec:
    """The spec of one run: tokens default to what spends the budget; batch and LR to the rules."""
    t, m, d = config.train, config.model, config.data
    tokens_wanted = tokens or budget / shape.flops_per_token
    batch = batch or batch_size(tokens_wanted, m.seq_len, t)
    steps = max(1, round(tokens_wanted / (batch * m.seq_len)))
    return RunSpec(
        d_model=shape.d_model, n_layers=shape.n_layers, n_heads=shape.n_heads, seq_len=m.seq_len,
        mlp=m.mlp, positions=m.positions, tokens=steps * batch * m.seq_len, batch_size=batch,
        lr=lr or hidden_lr(shape.d_model, t), lr_ref_width=t.lr_ref_width, warmup_frac=t.warmup_frac,
        min_lr_ratio=t.min_lr_ratio, weight_decay=t.weight_decay, beta1=t.beta1, beta2=t.beta2,
        grad_clip=t.grad_clip, eval_points=t.eval_points, eval_sequences=t.eval_sequences,
        final_eval_sequences=t.final_eval_sequences,
        data=DataSpec(d.source, d.path, d.vocab_size, d.val_fraction, d.markov_order, d.zipf_exponent,
                      d.synthetic_seed, d.synthetic_tokens),
        seed=seed, parameterization=t.parameterization, precision=str(t.precision), budget=budget,
        **schedule_fields(config),
    )  # fmt: skip


def schedule_fields(config: Config) -> dict:
    """A spec's schedule fields; a cosine run's are left at their defaults, so its id is as before they existed."""
    t = config.train
    if t.schedule != "wsd":
        return {}
    return {"schedule": "wsd", "decay_frac": t.decay_frac, "decay_shape": str(t.decay_shape)}


def unique_shapes(shapes: list[Shape]) -> list[Shape]:
    seen: dict[tuple[int, int], Shape] = {}
    for s in shapes:
        seen.setdefault((s.d_model, s.n_layers), s)
    return sorted(seen.values(), key=lambda s: s.N)


def isoflop_shapes(budget: float, config: Config) -> list[Shape]:
    """sizes_per_budget distinct shapes, log-spaced over size_span around the guessed optimum. Where
    small sizes snap to the same shape (the smallest model, or widths a head apart), the spacing
    continues above the largest, so each budget keeps its sizes."""
    s = config.sweep
    rules = shape_rules(config)
    centre = centre_params(budget, s.tokens_per_param)
    exponents = np.linspace(-0.5, 0.5, s.sizes_per_budget) if s.sizes_per_budget > 1 else np.zeros(1)
    step = exponents[1] - exponents[0] if s.sizes_per_budget > 1 else 0.0
    shapes = unique_shapes([rules.snap(centre * s.size_span**e) for e in exponents])
    top = exponents[-1]
    while step and s.size_span > 1 and len(shapes) < s.sizes_per_budget and fits_budget(shapes[-1], budget, config):
        top += step
        shapes = unique_shapes([*shapes, rules.snap(centre * s.size_span**top)])
    return [shape for shape in shapes if fits_budget(shape, budget, config)][: s.sizes_per_budget]


def widthdepth_shapes(budget: float, config: Config) -> list[Shape]:
    """One size (sweep.widthdepth_params, or the budget's centre) at each aspect ratio."""
    s = config.sweep
    rules = shape_rules(config)
    n = s.widthdepth_params or centre_params(budget, s.tokens_per_param)
    shapes = unique_shapes([rules.snap(n, aspect) for aspect in s.aspect_ratios])
    return [shape for shape in shapes if fits_budget(shape, budget, config)]


def lrbatch_specs(shape: Shape, budget: float, seed: int, config: Config) -> list[RunSpec]:
    """The shape at each sweep.lr_multipliers x sweep.batch_multipliers times the rules' LR and batch.
    Every run spends the budget (the same tokens; the batch sets the steps). Batches are clipped to
    [train.min_batch_size, train.max_batch_size] and those leaving fewer than MIN_STEPS steps dropped."""
    s, t, seq_len = config.sweep, config.train, config.model.seq_len
    tokens = budget / shape.flops_per_token
    rule_batch = batch_size(tokens, seq_len, t)
    batches = {min(t.max_batch_size, max(t.min_batch_size, round(rule_batch * k))) for k in s.batch_multipliers}
    rule_lr = hidden_lr(shape.d_model, t)
    return [
        run_spec(shape, budget, seed, config, batch=batch, lr=rule_lr * k)
        for batch in sorted(batches) if tokens / (batch * seq_len) >= MIN_STEPS
        for k in s.lr_multipliers
    ]  # fmt: skip


def grid_specs(shape: Shape, budget: float, seed: int, config: Config) -> list[RunSpec]:
    if config.sweep.kind == "lrbatch":
        return lrbatch_specs(shape, budget, seed, config)
    return [run_spec(shape, budget, seed, config)]


@dataclass(frozen=True)
class Plan:
    specs: list[RunSpec]


def make_plan(config: Config) -> Plan:
    if config.sweep.share_trunks:
        from sweep.plan.trunks import shared_plan

        return Plan(shared_plan(config))
    grid = widthdepth_shapes if config.sweep.kind == "widthdepth" else isoflop_shapes  # lrbatch: isoflop's sizes
    specs: list[RunSpec] = []
    for budget in sorted(config.sweep.budgets):
        check_budget(budget, config)
        shapes = grid(budget, config)
        if not shapes:
            raise UserError(f"no model of the grid fits budget {budget:.3g} with {MIN_STEPS} steps; raise it")
        specs += [
            spec for shape in shapes for seed in config.sweep.seeds for spec in grid_specs(shape, budget, seed, config)
        ]
    return Plan(specs)


def extension_shapes(budget: float, trained: list[Shape], side: str, config: Config, count: int = 2) -> list[Shape]:
    """Shapes beyond the smallest (side='below') or largest (side='above') trained size of a budget,
    continuing the grid's log spacing: the next wave when a budget's minimum sits at its edge."""
    s = config.sweep
    rules = shape_rules(config)
    ratio = s.size_span ** (1 / max(1, s.sizes_per_budget - 1))
    edge = min(trained, key=lambda x: x.N) if side == "below" else max(trained, key=lambda x: x.N)
    direction = -1 if side == "below" else 1
    known = {(x.d_model, x.n_layers) for x in trained}
    new = [rules.snap(edge.N * ratio ** (direction * k)) for k in range(1, count + 1)]
    return [
        x for x in unique_shapes(new)
        if (x.d_model, x.n_layers) not in known and fits_budget(x, budget, config)
        and (x.N < edge.N if side == "below" else x.N > edge.N)
    ]  # fmt: skip


def single_run_spec(config: Config) -> RunSpec:
    """The run named by the config's `run` section (what `sweep train` and proposals use)."""
    r = config.run
    if r.d_model <= 0 or r.n_layers <= 0 or not (r.tokens > 0 or r.budget > 0):
        raise UserError(
            "sweep train needs run.d_model, run.n_layers and run.tokens (or run.budget), "
            "e.g. run.d_model=64 run.n_layers=2 run.tokens=2e6, or --config a proposal's YAML"
        )
    rules = shape_rules(config)
    if r.d_model % config.model.head_dim:
        raise UserError(f"run.d_model={r.d_model} must be a multiple of model.head_dim={config.model.head_dim}")
    shape = rules.make(r.d_model, r.n_layers)
    if r.n_heads and r.n_heads != shape.n_heads:
        raise UserError(f"run.n_heads={r.n_heads} disagrees with d_model / model.head_dim = {shape.n_heads}")
    spec = run_spec(shape, r.budget, config.train.seed, config, tokens=r.tokens, batch=r.batch_size, lr=r.lr)
    return replace(spec, role=str(r.role))
