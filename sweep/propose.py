"""Propose the next run: the compute-optimal target at a given compute, and the next wave of proxies.

Approach 3 chooses among real shapes: for each candidate shape, D = C / (FLOPs per token of that
shape), and the shape with the lowest predicted L(N, D) wins. Every bootstrap refit makes the same
choice, which gives the intervals of N*, D* and the predicted loss. Approach 2 extrapolates its
power laws N*(C), D*(C), L*(C). Where Approach 2's N* falls outside Approach 3's interval, the
proposal says so. Where width/depth runs identify a preferred aspect ratio d_model / n_layers
(sweep.fit.aspect), the shapes are snapped near it instead of near model.aspect_ratio (aspect_from).

A fit without a finite, plausible optimum (an exponent <= 0, an overflow) never chooses the shape:
the proposal falls back to Approach 2's N*, else to the best run trained, and says why. Trained
targets (role=target) are set beside the prediction their proposal recorded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd

from sweep.config import Config, RunConfig, to_yaml
from sweep.fit.aspect import without_widthdepth
from sweep.fit.bootstrap import interval
from sweep.fit.envelope import EnvelopeFit
from sweep.fit.forms import Chinchilla
from sweep.fit.hparams import HparamFit, target_hparams
from sweep.fit.isoflop import IsoflopFit, budget_fits
from sweep.fit.report import FitReport
from sweep.plan.grids import extension_shapes, run_spec, shape_rules, single_run_spec
from sweep.plan.shapes import Shape, ShapeRules
from sweep.recommend import MIN_BUDGETS, Recommendation, recommend
from sweep.spec import RunSpec


class Unidentified(Exception):
    """An approach gives no usable optimum at the target compute; the message says why."""


@dataclass(frozen=True)
class Prediction:
    approach: str
    N: float | None  # None: the approach predicts the loss only (the L(C) form)
    D: float | None
    loss: float
    N_interval: tuple[float, float] | None
    D_interval: tuple[float, float] | None
    loss_interval: tuple[float, float] | None

    @classmethod
    def from_dict(cls, payload: dict) -> Prediction:
        bands = {k: tuple(payload[k]) if payload[k] else None for k in ("N_interval", "D_interval", "loss_interval")}
        return cls(payload["approach"], payload["N"], payload["D"], payload["loss"], **bands)


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
    shape_from: str = "approach3"  # approach3 | approach2 | best run: what chose the shape
    aspect_from: dict = field(default_factory=dict)  # the width/depth fit the shape's aspect came from, if any
    run_id: str = ""  # the id `sweep train --config` gives the proposed run
    lr_from: str = "assumed: rule"  # "fit: eta*(N, D) = ..." where an LR x batch grid measured it
    batch_from: str = "assumed: rule"
    lr_interval: tuple[float, float] | None = None  # 95% bootstrap interval of the fitted law at the target
    batch_interval: tuple[float, float] | None = None
    recommendation: Recommendation | None = None  # which prediction to trust (sweep.recommend)

    def to_dict(self) -> dict:
        recommended = self.recommendation.approach if self.recommendation else None
        return {**asdict(self), "recommended": recommended}


def plausible(n: float | None, compute: float) -> bool:
    """An optimum N a run at this compute could have: at least one parameter and one token per parameter."""
    return n is not None and bool(np.isfinite(n)) and 1 <= n <= compute / 6


def candidate_shapes(compute: float, config: Config, around: float, aspect: float | None = None) -> list[Shape]:
    """Real shapes from around/100 to around*100 parameters, on a fine log grid, near the given aspect
    ratio (default model.aspect_ratio)."""
    rules = shape_rules(config)
    targets = around * np.logspace(-2, 2, 161)
    shapes = {(s.d_model, s.n_layers): s for s in (rules.snap(n, aspect) for n in targets)}
    return [s for s in shapes.values() if compute / s.flops_per_token >= 1]


def best_shape(law: Chinchilla, shapes: list[Shape], compute: float, counting: str) -> tuple[Shape, float] | None:
    """The shape of lowest predicted loss, or None when the law's loss is finite at none of them."""
    n = np.array([s.N if counting == "non_embedding" else s.N_total for s in shapes], dtype=float)
    d = np.array([compute / s.flops_per_token for s in shapes])
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        losses = law.loss(n, d)
    finite = np.isfinite(losses)
    if not finite.any():
        return None
    i = int(np.argmin(np.where(finite, losses, np.inf)))
    return shapes[i], float(losses[i])


def within_data(shapes: list[Shape], compute: float, max_tokens: float | None) -> list[Shape]:
    """The shapes whose run at this compute sees its training data at most once (all, without a limit,
    or when none does)."""
    fitting = [s for s in shapes if max_tokens is None or compute / s.flops_per_token <= max_tokens]
    return fitting or shapes


def target_shapes(law: Chinchilla, config: Config, compute: float, aspect: float | None = None,
                  max_tokens: float | None = None) -> list[Shape]:  # fmt: skip
    """The shapes Approach 3 chooses the target among (see approach3_prediction)."""
    return within_data(
        candidate_shapes(compute, config, float(law.optimal_params(compute)), aspect), compute, max_tokens
    )


def approach3_prediction(
    fit: FitReport, config: Config, compute: float, aspect: float | None = None, max_tokens: float | None = None
) -> tuple[Shape, Prediction, list[str]]:
    """The shape Approach 3 chooses, its prediction and warnings; raises Unidentified when the point
    fit has no finite, plausible optimum at this compute. max_tokens: the training tokens the data
    holds; a shape needing more would repeat data, which no proxy did, so the laws do not cover it."""
    law = fit.parametric.law
    if why := law.unidentified():
        raise Unidentified(why)
    around = float(law.optimal_params(compute))
    if not plausible(around, compute):
        raise Unidentified(f"its optimum N = {around:.3g} at C = {compute:.3g} is not between 1 and C/6")
    every_shape = candidate_shapes(compute, config, around, aspect)
    shapes = within_data(every_shape, compute, max_tokens)
    best = best_shape(law, shapes, compute, fit.counting)
    if best is None:
        raise Unidentified("its predicted loss is not finite at any shape this compute can train")
    shape, loss = best
    warnings = data_warnings(law, every_shape, shape, compute, fit.counting, max_tokens)
    picks = [pick for sample in fit.parametric_samples if (pick := best_shape(sample, shapes, compute, fit.counting))]
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
    if shape in (every_shape[0], every_shape[-1]):
        warnings.append("Approach 3's optimum is at the edge of the shapes searched; the fit may be unidentified")
    if len(picks) < len(fit.parametric_samples):
        warnings.append(f"approach3: {len(fit.parametric_samples) - len(picks)} of {len(fit.parametric_samples)} "
                        "bootstrap refits predict no finite loss at the target; left out of its intervals")  # fmt: skip
    return shape, prediction, warnings


def data_warnings(
    law: Chinchilla, shapes: list[Shape], chosen: Shape, compute: float, counting: str, max_tokens: float | None
) -> list[str]:
    """Why the chosen shape is not the law's optimum when the data is too small for it, or that it
    repeats data when no shape avoids that."""
    if max_tokens is None:
        return []
    optimum, _ = best_shape(law, shapes, compute, counting)
    tokens = compute / optimum.flops_per_token
    if tokens <= max_tokens:
        return []
    if compute / chosen.flops_per_token > max_tokens:
        return [f"every shape at C = {compute:.3g} needs more tokens than the data's {max_tokens:.3g}: the target "
                "repeats data, which no proxy did, so its predictions are not covered by the laws"]  # fmt: skip
    return [f"the data holds {max_tokens:.3g} training tokens, fewer than the {tokens:.3g} that the compute-optimal "
            f"shape (N = {optimum.N:.3g}) would see; repeated data is not what the proxies measured, so the target is "
            f"the best shape that sees its data at most once (N = {chosen.N:.3g}); more data (data.path) would give "
            "the compute-optimal one"]  # fmt: skip


def beyond_data(predictions: list[Prediction], max_tokens: float, a3_tokens: float | None) -> list[str]:
    """The approaches that predict the loss of a compute-optimal run needing more tokens than the data
    holds: Approaches 1 and 2 by their own D*, and the L(C) frontier when any approach's optimum
    (a3_tokens: Approach 3's, unconstrained) is limited so. Approach 3 predicts the proposed shape."""
    limited = [p.approach for p in predictions if p.approach in ("approach1", "approach2") and max_tokens < p.D]
    frontier = any(p.approach == "L(C) form" for p in predictions)
    if frontier and (limited or (a3_tokens is not None and max_tokens < a3_tokens)):
        limited.append("L(C) form")
    return limited


def power_law_prediction(approach: str, f: EnvelopeFit | IsoflopFit, samples, compute: float) -> Prediction:
    with np.errstate(over="ignore", invalid="ignore"):
        return Prediction(
            approach=approach,
            N=float(f.N_star(compute)),
            D=float(f.D_star(compute)),
            loss=float(f.L_star(compute)),
            N_interval=interval(float(s.N_star(compute)) for s in samples),
            D_interval=interval(float(s.D_star(compute)) for s in samples),
            loss_interval=interval(float(s.L_star(compute)) for s in samples),
        )


def run_shape(run, rules: ShapeRules) -> Shape:
    """A trained run's shape; an imported run has none recorded, so the rules' shape nearest its N."""
    if pd.notna(getattr(run, "d_model", None)) and pd.notna(getattr(run, "n_layers", None)):
        return rules.make(int(run.d_model), int(run.n_layers))
    return rules.snap(float(run.N))


def best_run_shape(runs: pd.DataFrame, config: Config) -> tuple[Shape, str]:
    """The shape of the run with the lowest loss, and a note naming it."""
    best = runs.loc[runs["loss"].idxmin()]
    name = best["run_id"] if "run_id" in runs else f"row {best.name}"
    return run_shape(best, shape_rules(config)), f"the best run trained ({name}, loss {best['loss']:.4g})"


def next_wave(runs: pd.DataFrame, config: Config) -> list[dict]:
    """For each budget whose lowest loss is at its smallest or largest size, shapes beyond that edge.
    Found per budget, so also when no budget is centred and Approach 2 as a whole could not be fitted."""
    if "budget" not in runs or runs.empty:
        return []
    rules = shape_rules(config)
    wave = []
    for budget_fit in budget_fits(without_widthdepth(runs)):
        group = runs[np.isclose(runs["budget"], budget_fit.budget)]
        if not budget_fit.edge or group.empty:
            continue
        trained = [run_shape(r, rules) for r in group.itertuples()]
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


def choose_shape(
    fit: FitReport,
    runs: pd.DataFrame,
    config: Config,
    compute: float,
    a2: Prediction | None,
    aspect: float | None = None,
    max_tokens: float | None = None,
) -> tuple[Shape, str, Prediction | None, list[str]]:
    """The target's shape, what chose it, Approach 3's prediction (None when it has none) and warnings.
    Approach 3 first; where it has no usable optimum, Approach 2's N*; else the best run trained."""
    why = fit.errors.get("approach3", "not fitted")
    if fit.parametric is not None:
        try:
            shape, a3, warnings = approach3_prediction(fit, config, compute, aspect, max_tokens)
            return shape, "approach3", a3, warnings
        except Unidentified as exc:
            why = f"unidentified: {exc}"
    warning = f"Approach 3 gives no target ({why})"
    a2_why = fit.unidentified().get("approach2") or fit.errors.get("approach2", "not fitted")
    if a2 is not None and "approach2" not in fit.unidentified():
        if plausible(a2.N, compute):
            return shape_rules(config).snap(a2.N, aspect), "approach2", None, [f"{warning}; shape from Approach 2's N*"]
        a2_why = f"its N* = {a2.N:.3g} is not between 1 and C/6"
    shape, best = best_run_shape(runs, config)
    evidence = (
        f"too little evidence for a compute-optimal shape: {warning}, nor does Approach 2 ({a2_why}); "
        f"the shape is that of {best}. Train more sizes per budget and more budgets, then propose again"
    )
    return shape, "best run", None, [evidence]


def propose(
    fit: FitReport,
    runs: pd.DataFrame,
    config: Config,
    compute: float,
    hparams: HparamFit | None = None,
    curves: pd.DataFrame | None = None,
    max_tokens: float | None = None,
) -> Proposal:
    """runs: the runs fitted (proxies). A fit that is unidentified or was not possible is named in
    the warnings and a fallback chooses the shape; this never fails on a bad fit. The LR and batch
    come from the laws of hparams (else of the fit's own LR x batch grid) where identified, else the rules.
    curves: the runs' training curves, for Approach 1 in the backtest that recommends an approach.
    max_tokens: the training tokens of the data the proxies saw; the target sees them at most once."""
    a2 = power_law_prediction("approach2", fit.isoflop, fit.isoflop_samples, compute) if fit.isoflop else None
    aspect = fit.preferred_aspect()
    aspect_from = asdict(aspect) if aspect and aspect.identified else {}
    shape, shape_from, a3, warnings = choose_shape(
        fit, runs, config, compute, a2, aspect_from.get("aspect_ratio"), max_tokens
    )
    warnings = [*fit.notes(), *warnings]
    predictions = [a3] if a3 else []
    if a2 is not None and "approach2" not in fit.unidentified():
        predictions.append(a2)
    elif "approach2" in fit.errors:
        warnings.append(f"Approach 2 unavailable: {fit.errors['approach2']}")
    if fit.envelope is not None and "approach1" not in fit.unidentified():
        predictions.append(power_law_prediction("approach1", fit.envelope, fit.envelope_samples, compute))
    if "compute" in fit.forms:  # the frontier with a floor: a loss to set beside Approach 2's pure power law
        law, samples = fit.forms["compute"], fit.form_samples["compute"]
        loss_band = interval(float(s.loss(compute)) for s in samples)
        predictions.append(Prediction("L(C) form", None, None, float(law.loss(compute)), None, None, loss_band))
    warnings += [f"{p.approach} predicts a non-finite loss at C = {compute:.3g}; left out"
                 for p in predictions if not np.isfinite(p.loss)]  # fmt: skip
    predictions = [p for p in predictions if np.isfinite(p.loss)]
    a3_tokens = compute / (6 * fit.parametric.law.optimal_params(compute)) if a3 is not None else None
    if max_tokens is not None and (beyond := beyond_data(predictions, max_tokens, a3_tokens)):
        verb = "predicts" if len(beyond) == 1 else "predict"
        warnings.append(f"{', '.join(beyond)} {verb} the compute-optimal loss, whose run needs more than the "
                        f"data's {max_tokens:.3g} training tokens; this target cannot reach it: left out")  # fmt: skip
        predictions = [p for p in predictions if p.approach not in beyond]
    warnings += disagreements(predictions)
    if "budget" in runs and runs["budget"].nunique() < MIN_BUDGETS:
        warnings.append(f"only {runs['budget'].nunique()} budgets: the extrapolation to C = {compute:.3g} rests on "
                        f"too few to trust (train {MIN_BUDGETS}+)")  # fmt: skip
    tuned = target_hparams(
        hparams if hparams is not None else fit.hparams, shape.N, compute / shape.flops_per_token, config.train
    )
    if not tuned.lr_from.startswith("assumed") or not tuned.batch_from.startswith("assumed"):
        warnings.append("the target's LR or batch come from the fitted LR/batch laws, the proxies' from the rules: "
                        "the predicted losses assume the rules trained the proxies near their optimum")  # fmt: skip
    if aspect_from:
        warnings.append("the target's aspect ratio comes from the width/depth fit, the IsoFLOP proxies' from "
                        "model.aspect_ratio: Approach 3 predicts its loss from N and D alone")  # fmt: skip
    spec = run_spec(shape, compute, config.train.seed, config, batch=tuned.batch_size, lr=tuned.lr)
    proposal = Proposal(
        proposal_id=f"target-C{compute:.3g}".replace("+", ""),
        compute=compute,
        shape=asdict(shape),
        tokens=spec.tokens,
        steps=spec.steps,
        batch_size=spec.batch_size,
        lr=spec.lr,
        predictions=predictions,
        warnings=warnings,
        next_wave=next_wave(runs, config),
        shape_from=shape_from,
        lr_from=tuned.lr_from,
        batch_from=tuned.batch_from,
        lr_interval=tuned.lr_interval,
        batch_interval=tuned.batch_interval,
        aspect_from=aspect_from,
        recommendation=recommend([p.approach for p in predictions], runs, config.fit, curves),
    )
    return replace(proposal, run_id=single_run_spec(target_config(proposal, config)).run_id)


@dataclass(frozen=True)
class TargetCheck:
    """A trained target run beside what its proposal predicted."""

    run_id: str
    compute: float
    loss: float  # the run's final held-out loss
    proposal_id: str | None  # None: no proposal recorded this run
    predictions: list[Prediction]

    def errors(self) -> dict[str, float]:
        """Approach -> predicted / actual - 1."""
        return {p.approach: p.loss / self.loss - 1 for p in self.predictions}

    def covered(self) -> dict[str, bool | None]:
        """Approach -> whether the actual loss lies in its 95% interval (None: no interval)."""
        return {p.approach: None if p.loss_interval is None else p.loss_interval[0] <= self.loss <= p.loss_interval[1]
                for p in self.predictions}  # fmt: skip

    def to_dict(self) -> dict:
        return {**asdict(self), "errors": self.errors(), "covered": self.covered()}


def check_target(run_id: str, compute: float, loss: float, recorded: dict | None) -> TargetCheck:
    """recorded: the proposal's JSON (Proposal.to_dict) that proposed this run, if one was kept."""
    try:
        predictions = [Prediction.from_dict(p) for p in recorded["predictions"]]
        return TargetCheck(run_id, compute, loss, recorded["proposal_id"], predictions)
    except (KeyError, TypeError, ValueError):  # none kept, or a record that is not a proposal's
        return TargetCheck(run_id, compute, loss, None, [])


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
        role="target",
    )
    return replace(config, run=run)


def target_yaml(proposal: Proposal, config: Config) -> str:
    lines = [f"# {proposal.proposal_id} (shape from {proposal.shape_from}): predicted loss"]
    if not proposal.predictions:
        lines.append("#   none: no approach could be fitted (see the proposal's warnings)")
    for p in proposal.predictions:
        band = f" (95% {p.loss_interval[0]:.4f}-{p.loss_interval[1]:.4f})" if p.loss_interval else ""
        lines.append(f"#   {p.approach}: {p.loss:.4f}{band}")
    if proposal.recommendation and proposal.recommendation.approach:
        lines.append(f"# recommended: {proposal.recommendation.approach}, {proposal.recommendation.why}")
    return "\n".join(lines) + "\n" + to_yaml(target_config(proposal, config))


def wave_specs(proposal: Proposal, config: Config, trunks: list[RunSpec] | None = None) -> list[RunSpec]:
    """The next wave's runs; in a sweep of shared trunks (`trunks`), decay branches off them."""
    rules = shape_rules(config)
    if config.sweep.share_trunks:
        from sweep.plan.trunks import branch_off

        specs: list[RunSpec] = []
        for s in proposal.next_wave:
            for seed in config.sweep.seeds:
                added = branch_off([*(trunks or []), *specs], rules.make(s["d_model"], s["n_layers"]), s["budget"],
                                   seed, config)  # fmt: skip
                specs += added
        return specs
    return [
        run_spec(rules.make(s["d_model"], s["n_layers"]), s["budget"], seed, config)
        for s in proposal.next_wave
        for seed in config.sweep.seeds
    ]
