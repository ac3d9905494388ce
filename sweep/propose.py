"""Propose the next run: the compute-optimal target at a given compute, and the next wave of proxies.

Approach 3 chooses among real shapes: for each candidate shape, D = C / (FLOPs per token of that
shape), and the shape with the lowest predicted L(N, D) wins. Every bootstrap refit makes the same
choice, which gives the intervals of N*, D* and the predicted loss. Approach 2 extrapolates its
power laws N*(C), D*(C), L*(C). Where Approach 2's N* falls outside Approach 3's interval, the
proposal says so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd

from sweep.config import Config, RunConfig, to_yaml
from sweep.fit.analysis import FitReport
from sweep.fit.bootstrap import interval
from sweep.fit.envelope import EnvelopeFit
from sweep.fit.forms import Chinchilla
from sweep.fit.isoflop import IsoflopFit
from sweep.plan.grids import extension_shapes, run_spec, shape_rules
from sweep.plan.shapes import Shape
from sweep.spec import RunSpec


@dataclass(frozen=True)
class Prediction:
    approach: str
    N: float | None  # None: the approach predicts the loss only (the L(C) form)
    D: float | None
    loss: float
    N_interval: tuple[float, float] | None
    D_interval: tuple[float, float] | None
    loss_interval: tuple[float, float] | None


@dataclass(frozen=True)
class Proposal:
    proposal_id: str
    compute: float
    shape: dict  # d_model, n_layers, n_heads, N, N_total, flops_per_token
    tokens: int
    steps: int
    batch_size: int
    lr: float
    predictions: list[Prediction]
    warnings: list[str] = field(default_factory=list)
    next_wave: list[dict] = field(default_factory=list)  # shapes to add per off-centre budget

    def to_dict(self) -> dict:
        return asdict(self)


def candidate_shapes(compute: float, config: Config, around: float) -> list[Shape]:
    """Real shapes from around/100 to around*100 parameters, on a fine log grid."""
    rules = shape_rules(config)
    targets = around * np.logspace(-2, 2, 161)
    shapes = {(s.d_model, s.n_layers): s for s in (rules.snap(n) for n in targets)}
    return [s for s in shapes.values() if compute / s.flops_per_token >= 1]


def best_shape(law: Chinchilla, shapes: list[Shape], compute: float, counting: str) -> tuple[Shape, float]:
    n = np.array([s.N if counting == "non_embedding" else s.N_total for s in shapes], dtype=float)
    d = np.array([compute / s.flops_per_token for s in shapes])
    losses = law.loss(n, d)
    i = int(np.nanargmin(losses))
    return shapes[i], float(losses[i])


def approach3_prediction(fit: FitReport, shapes: list[Shape], compute: float) -> tuple[Shape, Prediction]:
    shape, loss = best_shape(fit.parametric.law, shapes, compute, fit.counting)
    picks = [best_shape(law, shapes, compute, fit.counting) for law in fit.parametric_samples]
    count = (lambda s: s.N) if fit.counting == "non_embedding" else (lambda s: s.N_total)
    prediction = Prediction(
        approach="approach3",
        N=count(shape),
        D=compute / shape.flops_per_token,
        loss=loss,
        N_interval=interval(count(s) for s, _ in picks),
        D_interval=interval(compute / s.flops_per_token for s, _ in picks),
        loss_interval=interval(loss for _, loss in picks),
    )
    return shape, prediction


def power_law_prediction(approach: str, f: EnvelopeFit | IsoflopFit, samples: list, compute: float) -> Prediction:
    return Prediction(
        approach=approach,
        N=float(f.N_star(compute)),
        D=float(f.D_star(compute)),
        loss=float(f.L_star(compute)),
        N_interval=interval(float(s.N_star(compute)) for s in samples),
        D_interval=interval(float(s.D_star(compute)) for s in samples),
        loss_interval=interval(float(s.L_star(compute)) for s in samples),
    )


def next_wave(fit: FitReport, runs: pd.DataFrame, config: Config) -> list[dict]:
    """For each budget whose lowest loss is at its smallest or largest size, shapes beyond that edge."""
    if fit.isoflop is None:
        return []
    rules = shape_rules(config)
    wave = []
    for budget_fit in fit.isoflop.budgets:
        if not budget_fit.edge:
            continue
        group = runs[np.isclose(runs["budget"], budget_fit.budget)]
        trained = [rules.make(int(r.d_model), int(r.n_layers)) for r in group.itertuples()]
        for shape in extension_shapes(budget_fit.budget, trained, budget_fit.edge, config):
            wave.append({"budget": budget_fit.budget, "side": budget_fit.edge, **asdict(shape)})
    return wave


def disagreements(predictions: list[Prediction]) -> list[str]:
    """A warning for each pair of approaches whose 95% intervals for N* do not overlap."""
    warnings = []
    predictions = [p for p in predictions if p.N is not None]
    for i, p in enumerate(predictions):
        for q in predictions[i + 1 :]:
            p_band, q_band = p.N_interval or (p.N, p.N), q.N_interval or (q.N, q.N)
            if p_band[1] < q_band[0] or q_band[1] < p_band[0]:
                warnings.append(
                    f"{p.approach} and {q.approach} disagree on N*: {p.N:.3g} [{p_band[0]:.3g}, {p_band[1]:.3g}] "
                    f"vs {q.N:.3g} [{q_band[0]:.3g}, {q_band[1]:.3g}] (95% intervals do not overlap)"
                )
    return warnings


def propose(fit: FitReport, runs: pd.DataFrame, config: Config, compute: float) -> Proposal:
    predictions, warnings = [], []
    a2 = power_law_prediction("approach2", fit.isoflop, fit.isoflop_samples, compute) if fit.isoflop else None
    if fit.parametric is not None:
        around = fit.parametric.law.optimal_params(compute)
        shapes = candidate_shapes(compute, config, float(around))
        shape, a3 = approach3_prediction(fit, shapes, compute)
        predictions.append(a3)
        if shape in (shapes[0], shapes[-1]):
            warnings.append("Approach 3's optimum is at the edge of the shapes searched; the fit may be unidentified")
    else:
        shape = shape_rules(config).snap(a2.N)
        warnings.append(f"Approach 3 unavailable ({fit.errors.get('approach3')}); shape from Approach 2")
    if a2 is not None:
        predictions.append(a2)
    else:
        warnings.append(f"Approach 2 unavailable: {fit.errors.get('approach2')}")
    if fit.envelope is not None:
        predictions.append(power_law_prediction("approach1", fit.envelope, fit.envelope_samples, compute))
    if "compute" in fit.forms:  # the frontier with a floor: a loss to set beside Approach 2's pure power law
        law, samples = fit.forms["compute"], fit.form_samples["compute"]
        loss_band = interval(float(s.loss(compute)) for s in samples)
        predictions.append(Prediction("L(C) form", None, None, float(law.loss(compute)), None, None, loss_band))
    warnings += disagreements(predictions)
    spec = run_spec(shape, compute, config.train.seed, config)
    return Proposal(
        proposal_id=f"target-C{compute:.3g}".replace("+", ""),
        compute=compute,
        shape=asdict(shape),
        tokens=spec.tokens,
        steps=spec.steps,
        batch_size=spec.batch_size,
        lr=spec.lr,
        predictions=predictions,
        warnings=warnings,
        next_wave=next_wave(fit, runs, config),
    )


def target_config(proposal: Proposal, config: Config) -> Config:
    """The sweep's config with its `run` section set to the proposed run: `sweep train` accepts it."""
    shape = proposal.shape
    run = RunConfig(
        d_model=shape["d_model"],
        n_layers=shape["n_layers"],
        n_heads=shape["n_heads"],
        tokens=float(proposal.tokens),
        batch_size=proposal.batch_size,
        lr=proposal.lr,
        budget=proposal.compute,
    )
    return replace(config, run=run)


def target_yaml(proposal: Proposal, config: Config) -> str:
    lines = [f"# {proposal.proposal_id}: predicted loss"]
    for p in proposal.predictions:
        band = f" (95% {p.loss_interval[0]:.4f}-{p.loss_interval[1]:.4f})" if p.loss_interval else ""
        lines.append(f"#   {p.approach}: {p.loss:.4f}{band}")
    return "\n".join(lines) + "\n" + to_yaml(target_config(proposal, config))


def wave_specs(proposal: Proposal, config: Config) -> list[RunSpec]:
    rules = shape_rules(config)
    return [
        run_spec(rules.make(s["d_model"], s["n_layers"]), s["budget"], seed, config)
        for s in proposal.next_wave
        for seed in config.sweep.seeds
    ]
