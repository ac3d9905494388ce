"""A law of the whole training curve under a known LR schedule, per model shape ("Scaling Law with
Learning Rate Annealing", Tissue et al. 2024):

    L(s) = L0 + A * S1(s)^-alpha - C * S2(s)

S1 is the forward area, the LR multiplier summed over the steps so far; S2 the annealing area,
S2(s) = sum_{i<=s} m_i with m_i = lambda m_{i-1} + (eta_{i-1} - eta_i): LR drops, remembered with a
delay of about 1 / (1 - lambda) steps. The warmup's rises are not drops (its Delta eta counts as 0).

The runs of one shape may train at different batch sizes (a cosine sweep's batch grows with its
tokens). S1 counts tokens (each step's multiplier weighted by its tokens: progress is data seen at
an LR) and S2 counts steps (an LR drop pays off through the optimizer's steps); per="steps" counts
S1 in steps too. On the demo sweep's cosine curves (batches 4 to 18 within a shape) the backtest's
mean error is 1.6% this way, 5.1% with S1 in steps, 5.1% with S2 in tokens too (bench/curve_law.py).
lambda is chosen per group from DECAYS (the paper's 0.999 was for runs of ~10^4-10^5 steps; these
run 10^2-10^3), or fixed.

A group is the runs of one shape (d_model, n_layers) at one peak LR: eta is a multiple of the peak.
The law is fitted to the curves' evaluations after the warmup, by the project's objective: Huber on
the relative error of each point (the first-order form of the log residual). For fixed alpha and
lambda it is linear in (L0, A, C) >= 0, so a grid over (alpha, lambda) is profiled by reweighted
non-negative least squares and the best point polished. A WSD branch's curve repeats its trunk's rows
up to its branch point: they are fitted once.

The curves are evaluated on fewer held-out sequences than the final loss (eval_sequences vs
final_eval_sequences): the same model scores differently on the two sets, so a predicted final loss
is the law's last point times the group's median ratio of final loss to last evaluation.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from functools import lru_cache

import numpy as np
import pandas as pd

from models.schedules import spec_schedule
from sweep.fit.errors import FitError
from sweep.fit.forms import PowerLaw
from sweep.fit.parametric import huber, huber_weights, nonnegative_least_squares
from sweep.spec import RunSpec

ALPHAS = np.geomspace(0.02, 3.0, 60)
DECAYS = (0.9, 0.95, 0.98, 0.99, 0.995, 0.999)  # lambda: a delay of 10 to 1000 steps
PAPER_DECAY = 0.999  # lambda in Tissue et al.
IRLS_STEPS = 4
MIN_POINTS = 5  # four parameters and one to spare


@dataclass(frozen=True)
class CurveLaw:
    L0: float
    A: float
    alpha: float
    C: float
    decay: float  # lambda
    per: str = "tokens"  # S1's unit: tokens or steps (S2 is per step)

    def loss(self, forward: np.ndarray, annealing: np.ndarray) -> np.ndarray:
        return self.L0 + self.A * np.power(forward, -self.alpha) - self.C * annealing

    def final_loss(self, spec: RunSpec) -> float:
        """The loss at the end of the spec's schedule, on the curves' evaluation set."""
        forward, annealing = areas(spec, self.decay, self.per)
        return float(self.loss(forward[-1], annealing[-1]))


@dataclass(frozen=True)
class RunCurve:
    """One finished run: its spec, its curve's evaluations and its final loss."""

    run_id: str
    spec: RunSpec
    steps: np.ndarray
    losses: np.ndarray
    final_loss: float

    @property
    def group(self) -> tuple[int, int, float]:
        return self.spec.d_model, self.spec.n_layers, self.spec.lr

    def owners(self) -> np.ndarray:
        """Whose each evaluation is: a branch's rows up to its branch point are its parent's."""
        inherited = (self.steps <= self.spec.branch_step) if self.spec.parent else np.zeros(len(self.steps), bool)
        return np.where(inherited, self.spec.parent, self.run_id)


@lru_cache(maxsize=256)  # a backtest refits each group once per run, from the same runs' areas (each up to MBs)
def areas(spec: RunSpec, decay: float, per: str = "tokens") -> tuple[np.ndarray, np.ndarray]:
    """S1 (per tokens or steps) and S2 (per step) after each step of the spec's schedule (index s - 1
    is after step s)."""
    from scipy.signal import lfilter  # here: scipy takes 0.3 s to load

    eta = spec_schedule(spec).multipliers()
    drops = np.maximum(0.0, -np.diff(eta, prepend=eta[0]))
    momentum = lfilter([1.0], [1.0, -decay], drops)  # m_i = lambda m_{i-1} + drop_i
    unit = spec.batch_size * spec.seq_len if per == "tokens" else 1
    return unit * np.cumsum(eta), np.cumsum(momentum)


@dataclass(frozen=True)
class Points:
    """The evaluations a law is fitted to: S1 per point, S2 per point for each lambda of `decays`."""

    forward: np.ndarray  # (n,)
    annealing: np.ndarray  # (len(decays), n)
    loss: np.ndarray  # (n,)
    decays: tuple[float, ...]


def fit_points(curves: list[RunCurve], decays: tuple[float, ...], per: str) -> Points:
    """The runs' evaluations after the warmup, each step of a lineage once (a branch's copy of its
    trunk's rows dropped)."""
    seen: set[tuple[str, int]] = set()
    forward, annealing, loss = [], [], []
    for run in curves:
        warmup = spec_schedule(run.spec).warmup_steps
        rows = list(zip(run.owners(), run.steps, strict=True))
        keep = [i for i, row in enumerate(rows) if row[1] > warmup and row not in seen]
        seen.update(rows[i] for i in keep)
        index = run.steps[keep] - 1
        by_decay = [areas(run.spec, d, per) for d in decays]
        forward.append(by_decay[0][0][index])
        annealing.append(np.array([s2[index] for _, s2 in by_decay]))
        loss.append(run.losses[keep])
    return Points(np.concatenate(forward), np.concatenate(annealing, axis=1), np.concatenate(loss), decays)


def profile(points: Points, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """The objective minimised over (L0, A, C) >= 0 on the grid ALPHAS x decays, and the coefficients
    reaching it: (g,) and (g, 3), the grid in row-major order (alpha slowest). Curves without an LR
    drop (stable trunks alone) have no annealing column: C = 0."""
    shape = (len(ALPHAS), len(points.decays), len(points.loss))
    columns = [np.ones(shape), np.broadcast_to(np.power(points.forward, -ALPHAS[:, None])[:, None, :], shape)]
    if points.annealing.any():
        columns.append(np.broadcast_to(-points.annealing[None], shape))  # -S2, so that C >= 0
    columns = np.stack(columns, axis=2).reshape(-1, len(columns), shape[-1]) / points.loss
    weights = np.ones((len(columns), shape[-1]))
    for _ in range(IRLS_STEPS):
        weighted = columns * weights[:, None, :]
        coefficients = nonnegative_least_squares(weighted @ columns.transpose(0, 2, 1), weighted.sum(axis=2))
        r = np.einsum("gm,gmn->gn", coefficients, columns) - 1
        weights = huber_weights(r, delta)
    return huber(r, delta).sum(axis=1), np.pad(coefficients, ((0, 0), (0, 3 - coefficients.shape[1])))


def fit_curve_law(curves: list[RunCurve], delta: float = 1e-3, decay: float | None = None, per: str = "tokens"):
    """The law of one group's curves; decay fixes lambda, None chooses it from DECAYS."""
    decays = DECAYS if decay is None else (decay,)
    points = fit_points(curves, decays, per)
    if len(points.loss) < MIN_POINTS:
        raise FitError(f"{len(points.loss)} evaluations after the warmup; the curve law needs {MIN_POINTS}")
    objective, coefficients = profile(points, delta)
    best = int(np.argmin(objective))
    alpha, chosen = ALPHAS[best // len(decays)], best % len(decays)
    return polish(points, chosen, np.r_[coefficients[best], alpha], delta, per)


def polish(points: Points, chosen: int, start: np.ndarray, delta: float, per: str) -> CurveLaw:
    """Huber least squares from the grid's best (L0, A, C, alpha) at lambda = decays[chosen]."""
    from scipy.optimize import least_squares  # here: scipy takes 0.3 s to load

    annealing = points.annealing[chosen]

    def relative_error(theta: np.ndarray) -> np.ndarray:
        L0, A, C, alpha = theta
        return (L0 + A * np.power(points.forward, -alpha) - C * annealing) / points.loss - 1

    upper = [np.inf, np.inf, np.inf, ALPHAS[-1]]
    start = np.clip(start, 0, upper)
    solved = least_squares(relative_error, start, bounds=([0, 0, 0, ALPHAS[0]], upper), loss="huber",
                           f_scale=delta, x_scale="jac")  # fmt: skip
    L0, A, C, alpha = solved.x
    return CurveLaw(float(L0), float(A), float(alpha), float(C), points.decays[chosen], per)


@dataclass(frozen=True)
class GroupFit:
    """A group's law and the ratio that carries its curves' evaluations to the final evaluation."""

    law: CurveLaw
    eval_ratio: float  # final loss / last evaluation, the median over the group's runs

    def final_loss(self, spec: RunSpec) -> float:
        return self.law.final_loss(spec) * self.eval_ratio


def fit_group(curves: list[RunCurve], delta: float = 1e-3, decay: float | None = None, per: str = "tokens"):
    law = fit_curve_law(curves, delta, decay, per)
    ratio = float(np.median([run.final_loss / run.losses[-1] for run in curves]))
    return GroupFit(law, ratio)


def run_curves(runs: pd.DataFrame, curves: pd.DataFrame) -> list[RunCurve]:
    """The runs (a store's table, with spec_json) that have a curve; imported runs have none."""
    by_run = dict(tuple(curves.sort_values("step").groupby("run_id")))
    out = []
    for run in runs.itertuples():
        rows = by_run.get(run.run_id)
        if rows is None or rows.empty:
            continue
        spec = RunSpec.from_dict(json.loads(run.spec_json))
        out.append(RunCurve(run.run_id, spec, rows["step"].to_numpy(int), rows["eval_loss"].to_numpy(float),
                            float(run.loss)))  # fmt: skip
    return out


def groups(curves: list[RunCurve]) -> dict[tuple[int, int, float], list[RunCurve]]:
    out: dict[tuple[int, int, float], list[RunCurve]] = {}
    for run in curves:
        out.setdefault(run.group, []).append(run)
    return dict(sorted(out.items()))


def schedule_name(spec: RunSpec) -> str:
    if spec.role == "trunk":
        return "wsd trunk"
    return f"wsd {spec.decay_frac:.0%} {spec.decay_shape}" if spec.schedule == "wsd" else spec.schedule


@dataclass(frozen=True)
class RunCheck:
    """One run's final loss predicted by the law of the other runs of its group, and by the baseline:
    the final loss of the other run nearest in tokens."""

    run_id: str
    d_model: int
    n_layers: int
    lr: float
    tokens: int
    schedule: str
    observed: float
    predicted: float | None  # None: the other runs could not be fitted (see why)
    baseline: float
    why: str | None = None

    @property
    def error(self) -> float | None:
        return None if self.predicted is None else self.predicted / self.observed - 1

    @property
    def baseline_error(self) -> float:
        return self.baseline / self.observed - 1

    def to_dict(self) -> dict:
        return {**asdict(self), "error": self.error, "baseline_error": self.baseline_error}


@dataclass(frozen=True)
class CurveBacktest:
    checks: list[RunCheck]
    unchecked: list[str]  # groups that cannot be backtested, and why
    decay: float | None  # lambda fixed, or None (chosen per fit)
    per: str

    def ape(self, baseline: bool = False) -> tuple[float | None, float | None]:
        """Mean and max absolute percent error of the law's predictions (or the baseline's) on the runs
        the law predicted."""
        errors = [c.baseline_error if baseline else c.error for c in self.checks if c.error is not None]
        if not errors:
            return None, None
        percent = 100 * np.abs(errors)
        return float(percent.mean()), float(percent.max())

    def to_dict(self) -> dict:
        (mean, top), (base_mean, base_top) = self.ape(), self.ape(baseline=True)
        return {
            "law": "L = L0 + A * S1^-alpha - C * S2", "areas_per": self.per, "decay": self.decay,
            "mean_ape_percent": mean, "max_ape_percent": top,
            "baseline": "the final loss of the group's other run nearest in tokens",
            "baseline_mean_ape_percent": base_mean, "baseline_max_ape_percent": base_top,
            "runs": [c.to_dict() for c in self.checks], "unchecked": self.unchecked,
        }  # fmt: skip


def backtest_curves(
    curves: list[RunCurve], delta: float = 1e-3, decay: float | None = None, per: str = "tokens"
) -> CurveBacktest:
    """Each run's final loss from the curves of the other runs of its group (a trunk's among them; a
    trunk itself is never a fitted run, so it is not predicted)."""
    checks, unchecked = [], []
    for (d_model, n_layers, lr), members in groups(curves).items():
        if len(members) < 2:
            unchecked.append(f"{d_model}x{n_layers} (lr {lr:.3g}): 1 run, none other to fit its law from")
            continue
        for run in members:
            if run.spec.role == "trunk":
                continue
            others = [r for r in members if r is not run]
            nearest = min(others, key=lambda r: abs(np.log(r.spec.tokens / run.spec.tokens)))
            predicted, why = None, None
            try:
                predicted = fit_group(others, delta, decay, per).final_loss(run.spec)
            except FitError as exc:
                why = str(exc)
            checks.append(RunCheck(run.run_id, d_model, n_layers, lr, run.spec.tokens, schedule_name(run.spec),
                                   run.final_loss, predicted, nearest.final_loss, why))  # fmt: skip
    return CurveBacktest(checks, unchecked, decay, per)


REACH = 3.0  # predicted points lie within this factor of a group's own token counts


def predicted_points(runs: pd.DataFrame, curves: pd.DataFrame, delta: float = 1e-3) -> pd.DataFrame:
    """Final losses for Approach 3 that no run measured: per group of 2+ runs, the law's at each
    budget of the runs that the group was not trained at, and at twice its longest run's tokens, within
    REACH of its own token counts. A predicted run is the group's run nearest in tokens with those
    tokens, and the batch that the runs' batch-vs-tokens power law gives (a cosine sweep's batch grows
    with its tokens). Columns PREDICTED_COLUMNS of a store's runs (run ids predicted-<id>) and
    predicted=True."""
    trained = run_curves(runs, curves)
    table = runs.set_index("run_id")
    batch_at = batch_rule(trained)
    rows = []
    for members in groups(trained).values():
        fitted = [r for r in members if r.spec.role != "trunk"]
        if len(members) < 2 or not fitted:
            continue
        try:
            law = fit_group(members, delta)
        except FitError:
            continue  # too few evaluations: the group adds no points
        per_token = float(table.at[fitted[0].run_id, "flops_per_token"])
        trained_at = {table.at[r.run_id, "budget"] for r in fitted}
        longest = max(r.spec.tokens for r in fitted)
        for budget in [b for b in runs["budget"].dropna().unique() if b not in trained_at] + [2 * longest * per_token]:
            tokens = int(budget / per_token)
            if not min(r.spec.tokens for r in fitted) / REACH <= tokens <= longest * REACH:
                continue
            template = min(fitted, key=lambda r: abs(np.log(r.spec.tokens / tokens)))
            spec = replace(template.spec, tokens=tokens, batch_size=batch_at(tokens, template.spec.batch_size))
            source = table.loc[template.run_id]
            rows.append({"run_id": f"predicted-{spec.run_id}", "N": source["N"], "N_total": source["N_total"],
                         "D": float(tokens), "C": tokens * per_token, "loss": law.final_loss(spec), "budget": budget,
                         "d_model": spec.d_model, "n_layers": spec.n_layers, "predicted": True})  # fmt: skip
    return pd.DataFrame(rows, columns=[*PREDICTED_COLUMNS, "predicted"])


PREDICTED_COLUMNS = ("run_id", "N", "N_total", "D", "C", "loss", "budget", "d_model", "n_layers")


def batch_rule(trained: list[RunCurve]):
    """batch_at(tokens, fallback): the batch of a run of these tokens, by the power law of the runs'
    batches in their tokens; the fallback where all runs have one token count."""
    tokens = [r.spec.tokens for r in trained]
    if len(set(tokens)) == 1:
        return lambda _, fallback: fallback
    law = PowerLaw.fit(tokens, [r.spec.batch_size for r in trained])
    return lambda n, _: max(1, round(float(law(n))))
