"""The next wave of proxies that buys the most certainty per FLOP (`sweep propose DIR --next-wave`).

Candidates are runs not yet planned: the untrained shapes of each budget's grid, one shape beyond
each edge of every budget, and the grid's shapes at the next budgets (the largest budget times the
grid's ratio, its square, ...), each costing its FLOPs (once per seed). WSD sweeps get the same
candidates as independent runs; in a sweep of shared trunks (sweep.share_trunks) a candidate is a
decay branch off its shape's trunk, from a checkpoint the trunk keeps or from a continuation trunk
that trains the stable phase on to its branch point (sweep.plan.trunks.branch_off), and costs only
what it trains itself.

A set of runs is scored by the expected width of the 95% interval of the target's predicted loss
(Approach 3 at the proposal's compute, the best of the shapes it chooses among) once they are
trained. This is simulated, not linearised:
- truths: TRUTHS of the fit's bootstrap refits, taken at evenly spaced quantiles of their predicted
  target loss, stand for what the runs may find. Under a truth a new run's loss is that refit's
  L(N, D) times exp(sigma z): sigma is the fit's robust residual spread, z is fixed per run and truth;
- for each truth, RESAMPLES bootstrap refits of the fitted runs and the simulated ones, drawn whole
  and with replacement as `sweep fit` draws them (so a lone new run is missing from a third of them,
  as it will be in the real fit), and independently of the resample that gave the truth: refitted
  with that one, the simulated outcome would only pull the fit back to itself;
- the expected width: the 95% span of all refits' predicted losses, each centred on the median of
  its truth's refits (a wave moves the interval as well as narrowing it; only the width is known
  in advance).
Every candidate of a step is scored on the same resamples and the same outcomes (common random
numbers), and the resamples of a set one run larger grow from the smaller set's (each draw becomes
the new run with the probability that keeps draws uniform), so that gains are compared, not noise.
The width reported after is the proposal's interval width times the simulated ratio after / now.
(Scoring with the new runs in every refit instead, a stratified bootstrap, chose waves that did
worse on bench/next_wave.py: 1.4x the grid's shrink per FLOP against 1.6x.)

Greedy: add the candidate that narrows the expected interval most per FLOP among those that fit
the allowance, until none fits or the best narrows it by less than MIN_GAIN.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sweep.config import Config, FitConfig
from sweep.errors import UserError
from sweep.fit.aspect import without_widthdepth
from sweep.fit.hparams import grid_runs
from sweep.fit.parametric import refit_terms
from sweep.fit.report import FitReport, prepare, proxies
from sweep.plan.grids import extension_shapes, isoflop_shapes, run_spec, shape_rules
from sweep.plan.shapes import Shape
from sweep.plan.trunks import branch_off
from sweep.propose import Proposal, run_shape, target_shapes
from sweep.spec import RunSpec

TRUTHS = 8  # simulated outcomes of each candidate: refits spread over the current interval
RESAMPLES = 32  # bootstrap refits per truth
NEXT_BUDGETS = 3  # budgets past the largest offered: ratio, ratio^2, ratio^3 times it
LONE_BUDGET_RATIO = 3.0  # the ratio between budgets when the sweep has one
LAZY_BATCH = 4  # candidates rescored together in a greedy step
MIN_GAIN = 0.01  # a run narrowing the expected interval by less than this share is within the simulation's noise
Progress = Callable[[str, int, int], None]
Addition = tuple[np.ndarray, np.ndarray]  # simulated runs: their log N, log D (2, r) and losses under each truth (T, r)


@dataclass(frozen=True)
class Candidate:
    budget: float
    shape: Shape
    specs: tuple[RunSpec, ...]  # its run at each of sweep.seeds
    kind: str  # grid: an untrained shape of a budget's grid; edge: beyond a budget's sizes; next budget

    @property
    def runs(self) -> list[RunSpec]:
        """The runs that will be fitted: its specs but a continuation trunk that a branch needs."""
        return [spec for spec in self.specs if spec.role != "trunk"]

    @property
    def cost(self) -> float:
        """What it trains itself: a decay branch its decay (and the stable steps its trunk adds)."""
        return sum(spec.trained_tokens for spec in self.specs) * self.shape.flops_per_token

    def counted_n(self, counting: str) -> float:
        return float(self.shape.N if counting == "non_embedding" else self.shape.N_total)

    def row(self) -> dict:
        s = self.shape
        return {"budget": self.budget, "kind": self.kind, "run_ids": [spec.run_id for spec in self.specs],
                "d_model": s.d_model, "n_layers": s.n_layers, "n_heads": s.n_heads, "N": s.N, "N_total": s.N_total,
                "D": self.runs[0].tokens, "flops": self.cost}  # fmt: skip


@dataclass(frozen=True)
class Pick:
    candidate: Candidate
    expected_width: float  # of the interval once this run and the picks before it are trained


@dataclass(frozen=True)
class NextWave:
    proposal_id: str
    compute: float  # the target's
    loss: float  # Approach 3's predicted loss at the target
    interval: tuple[float, float]  # its 95% interval now
    allowance: float  # FLOPs
    picks: list[Pick]
    candidates: int  # how many were scored
    stopped: str  # why no more runs were added

    @property
    def cost(self) -> float:
        return sum(p.candidate.cost for p in self.picks)

    @property
    def width(self) -> float:
        return self.interval[1] - self.interval[0]

    @property
    def expected_width(self) -> float:
        return self.picks[-1].expected_width if self.picks else self.width

    @property
    def specs(self) -> list[RunSpec]:
        return [spec for p in self.picks for spec in p.candidate.specs]

    def to_dict(self) -> dict:
        return {
            "proposal_id": self.proposal_id, "compute": self.compute, "loss": self.loss,
            "interval": list(self.interval), "width": self.width, "expected_width": self.expected_width,
            "cost": self.cost, "allowance": self.allowance, "candidates": self.candidates, "stopped": self.stopped,
            "runs": [{**p.candidate.row(), "expected_width": p.expected_width} for p in self.picks],
        }  # fmt: skip


# --- candidates ----------------------------------------------------------------------------------


def fitted_table(runs: pd.DataFrame, config: FitConfig) -> pd.DataFrame:
    """The runs Approach 3 fits, as it reads them (sweep.fit.report.fit_all): proxies outside LR x batch grids."""
    runs = proxies(runs, config.include_targets)[0]
    return prepare(runs[~grid_runs(runs)], config.counting)


def budget_ratio(budgets: list[float]) -> float:
    """The grid's ratio between neighbouring budgets (their geometric mean)."""
    budgets = sorted(set(budgets))
    if len(budgets) < 2:
        return LONE_BUDGET_RATIO
    return (budgets[-1] / budgets[0]) ** (1 / (len(budgets) - 1))


def next_budgets(budgets: list[float], count: int = NEXT_BUDGETS) -> list[float]:
    """The budgets past the largest, continuing the grid's ratio (two significant digits)."""
    ratio = budget_ratio(budgets)
    return [float(f"{max(budgets) * ratio**k:.2g}") for k in range(1, count + 1)]


def candidates(
    table: pd.DataFrame, planned: set[str], config: Config, trunks: list[RunSpec] | None = None
) -> list[Candidate]:
    """Runs the wave may add (see the module's docstring), none of them planned already. table: the
    fitted runs, with budget and, where trained here, d_model and n_layers; trunks: a shared sweep's."""
    rules = shape_rules(config)
    valleys = without_widthdepth(table)
    budgets = sorted(valleys["budget"].unique())
    offered: list[tuple[float, Shape, str]] = []
    for budget in budgets:
        trained = [run_shape(r, rules) for r in valleys[valleys["budget"] == budget].itertuples()]
        known = {(s.d_model, s.n_layers) for s in trained}
        offered += [(budget, s, "grid") for s in isoflop_shapes(budget, config) if (s.d_model, s.n_layers) not in known]
        for side in ("below", "above"):
            offered += [(budget, s, "edge") for s in extension_shapes(budget, trained, side, config, count=1)]
    for budget in next_budgets([*budgets, *config.sweep.budgets]):
        offered += [(budget, s, "next budget") for s in isoflop_shapes(budget, config)]
    seen, out = set(planned), []
    for budget, shape, kind in offered:
        specs = tuple(candidate_specs(shape, budget, config, trunks or []))
        if not seen.intersection(s.run_id for s in specs):
            seen.update(s.run_id for s in specs)
            out.append(Candidate(budget, shape, specs, kind))
    return out


def candidate_specs(shape: Shape, budget: float, config: Config, trunks: list[RunSpec]) -> list[RunSpec]:
    """A candidate's run at each seed; in a shared sweep a decay branch off the shape's trunk."""
    if config.sweep.share_trunks:
        return [spec for seed in config.sweep.seeds for spec in branch_off(trunks, shape, budget, seed, config)]
    return [run_spec(shape, budget, seed, config) for seed in config.sweep.seeds]


# --- the simulation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """The shapes Approach 3 chooses the target among, as (log N counted as fitted, log D) at its compute."""

    log_n: np.ndarray
    log_d: np.ndarray

    @classmethod
    def of(cls, shapes: list[Shape], compute: float, counting: str) -> Target:
        n = [s.N if counting == "non_embedding" else s.N_total for s in shapes]
        return cls(np.log(np.array(n, dtype=float)), np.log([compute / s.flops_per_token for s in shapes]))

    def losses(self, thetas: np.ndarray) -> np.ndarray:
        """The predicted target loss of each theta (e, a, b, alpha, beta): its best shape's (NaN: none finite)."""
        losses = law_losses(thetas, self.log_n, self.log_d)
        best = np.where(np.isfinite(losses), losses, np.inf).min(axis=1)
        return np.where(np.isfinite(best), best, np.nan)


def law_losses(thetas: np.ndarray, log_n: np.ndarray, log_d: np.ndarray) -> np.ndarray:
    """L(N, D) of each theta (rows) at each point (columns)."""
    e, a, b, alpha, beta = (thetas[:, i : i + 1] for i in range(5))
    with np.errstate(over="ignore", invalid="ignore"):
        return np.exp(e) + np.exp(a - alpha * log_n) + np.exp(b - beta * log_d)


def law_thetas(laws) -> np.ndarray:
    """(e, a, b, alpha, beta) of Chinchilla laws (a coefficient of 0 gives -inf)."""
    with np.errstate(divide="ignore"):
        return np.array([[np.log(law.E), np.log(law.A), np.log(law.B), law.alpha, law.beta] for law in laws])


def spread_truths(samples: np.ndarray, target: Target, count: int = TRUTHS) -> np.ndarray:
    """count of the bootstrap thetas, at evenly spaced quantiles of their predicted target loss."""
    predicted = target.losses(samples)
    finite = np.flatnonzero(np.isfinite(predicted))
    ordered = finite[np.argsort(predicted[finite], kind="stable")]
    return samples[ordered[((np.arange(count) + 0.5) / count * len(ordered)).astype(int)]]


def residual_spread(theta: np.ndarray, logs: np.ndarray, loss: np.ndarray) -> float:
    """The robust spread (MAD) of the fit's log residuals, corrected for its 5 fitted parameters."""
    r = np.log(law_losses(theta[None], logs[0], logs[1])[0]) - np.log(loss)
    mad = 1.4826 * np.median(np.abs(r - np.median(r)))
    return float(mad * np.sqrt(len(r) / max(1, len(r) - 5)))


def expected_width(predicted: np.ndarray, truths: int) -> float:
    """The 95% span of refits' predicted losses (truth-major), each centred on its truth's median."""
    groups = predicted.reshape(truths, -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a truth whose refits all failed: its median is NaN
        centred = groups - np.nanmedian(groups, axis=1, keepdims=True)
    centred = centred[np.isfinite(centred)]
    if len(centred) < 2:
        return float("inf")
    low, high = np.percentile(centred, [2.5, 97.5])
    return float(high - low)


@dataclass
class Simulation:
    """The fitted runs and the runs chosen so far, and what stays fixed while candidates are scored."""

    theta: np.ndarray  # the fit's, where every refit starts
    delta: float
    seed: int
    seed_noise: float  # fit.seed_noise: the fit's bootstrap multiplies each drawn loss by exp(N(0, it))
    sigma: float  # a new run's outcome noise (log)
    truths: np.ndarray  # (T, 5)
    target: Target
    logs: np.ndarray  # (2, K) log N, log D of the runs so far
    losses: np.ndarray  # (T, K): the fitted runs' losses, and the chosen runs' outcomes under each truth
    picks: np.ndarray  # (T * RESAMPLES, K): each resample's draws
    factor: np.ndarray | None  # (T * RESAMPLES, K) seed noise of each draw, or None

    @classmethod
    def start(cls, report: FitReport, table: pd.DataFrame, target: Target, config: FitConfig) -> Simulation:
        logs = np.log(table[["N", "D"]].to_numpy(dtype=float).T)
        loss = table["loss"].to_numpy(dtype=float)
        theta = report.parametric.theta
        truths = spread_truths(law_thetas(report.parametric_samples), target)
        rng = np.random.default_rng([config.seed, len(loss)])
        resamples = len(truths) * RESAMPLES
        picks = rng.integers(0, len(loss), (resamples, len(loss)))
        factor = np.exp(rng.normal(0, config.seed_noise, picks.shape)) if config.seed_noise > 0 else None
        sigma = residual_spread(theta, logs, loss)
        return cls(theta, config.huber_delta, config.seed, config.seed_noise, sigma, truths, target, logs,
                   np.tile(loss, (len(truths), 1)), picks, factor)  # fmt: skip

    def outcomes(self, candidate: Candidate, index: int, counting: str) -> Addition:
        """The candidate's rows (2, r) of log N, log D, and its losses under each truth (T, r); its
        noise is the same wherever it is scored (index: its place in the candidate list)."""
        log_n = np.log(candidate.counted_n(counting))
        logs = np.array([[log_n] * len(candidate.runs), [np.log(s.tokens) for s in candidate.runs]])
        mean = law_losses(self.truths, logs[0], logs[1])
        z = np.random.default_rng([self.seed, 1, index]).standard_normal(mean.shape)
        return logs, mean * np.exp(self.sigma * z)

    def grown(self, rows: int) -> tuple[np.ndarray, np.ndarray | None]:
        """The resamples with `rows` more runs: each draw becomes the next new run with probability
        1 / (size + 1), and one draw of the new size is added, which keeps every draw uniform."""
        picks, factor = self.picks, self.factor
        for _ in range(rows):
            size = picks.shape[1]
            rng = np.random.default_rng([self.seed, 2, size])
            picks = np.where(rng.random(picks.shape) < 1 / (size + 1), size, picks)
            picks = np.c_[picks, rng.integers(0, size + 1, len(picks))]
            if factor is not None:
                factor = np.c_[factor, np.exp(rng.normal(0, self.seed_noise, len(picks)))]
        return picks, factor

    def widths(self, additions: list[Addition]) -> np.ndarray:
        """The expected width with each addition (all of r runs) added to the runs so far, from one
        batch of refits."""
        rows = additions[0][0].shape[1]
        picks, factor = self.grown(rows)
        size = self.logs.shape[1]
        logs = np.concatenate([self.logs, *(a[0] for a in additions)], axis=1)
        losses = np.concatenate([self.losses, *(a[1] for a in additions)], axis=1)
        new = picks >= size
        all_rows = np.concatenate([np.where(new, picks + i * rows, picks) for i in range(len(additions))])
        truth = np.tile(np.repeat(np.arange(len(self.truths)), RESAMPLES), len(additions))
        drawn = losses[truth[:, None], all_rows]
        if factor is not None:
            drawn = drawn * np.tile(factor, (len(additions), 1))
        thetas = refit_terms(self.theta, logs, drawn, self.delta, all_rows)
        predicted = self.target.losses(thetas).reshape(len(additions), -1)
        return np.array([expected_width(p, len(self.truths)) for p in predicted])

    def add(self, addition: Addition) -> None:
        self.picks, self.factor = self.grown(addition[0].shape[1])
        self.logs = np.concatenate([self.logs, addition[0]], axis=1)
        self.losses = np.concatenate([self.losses, addition[1]], axis=1)


def empty(truths: int) -> Addition:
    return np.empty((2, 0)), np.empty((truths, 0))


def choose(
    simulation: Simulation,
    additions: list[Addition],
    costs: list[float],
    allowance: float,
    progress: Progress | None = None,
) -> tuple[list[tuple[int, float]], str]:
    """Greedy picks (see the module's docstring): each pick's index into additions and the expected
    width once it is added, relative to the width now; and why it stopped. Lazily: a candidate's gain
    per FLOP from an earlier step bounds its gain now (a run adds less to more runs), so each step
    rescores candidates LAZY_BATCH at a time, best bound first, until the best fresh gain beats
    every bound left."""
    (now,) = simulation.widths([empty(len(simulation.truths))])
    width = now
    bound = dict.fromkeys(range(len(additions)), np.inf)  # gain per FLOP, at the step it was scored
    picks, spent = [], 0.0
    while affordable := sorted((i for i in bound if spent + costs[i] <= allowance), key=lambda i: -bound[i]):
        if progress:
            progress("next wave", len(picks), len(picks) + len(affordable))
        fresh: dict[int, float] = {}
        for start in range(0, len(affordable), LAZY_BATCH):
            batch = affordable[start : start + LAZY_BATCH]
            fresh.update(zip(batch, simulation.widths([additions[i] for i in batch]), strict=True))
            bound.update({i: (width - fresh[i]) / costs[i] for i in batch})
            best = max(fresh, key=bound.__getitem__)
            if all(bound[best] >= bound[i] for i in affordable[start + LAZY_BATCH :]):
                break
        if not width - fresh[best] >= MIN_GAIN * width:
            return picks, f"no affordable candidate narrows the expected interval by {MIN_GAIN:.0%} or more"
        width = fresh[best]
        picks.append((best, width / now))
        spent += costs[best]
        simulation.add(additions[best])
        del bound[best]
    return picks, "no candidate left fits the allowance" if picks else "no candidate fits the allowance"


# --- the wave ------------------------------------------------------------------------------------


def check_affordable(offered: list[Candidate], allowance: float) -> None:
    """UserError when the allowance buys none of the candidates."""
    if not offered:
        raise UserError("--next-wave has no run to offer: every candidate is planned already; launch them first")
    cheapest = min(offered, key=lambda c: c.cost)
    if cheapest.cost > allowance:
        raise UserError(f"an allowance of {allowance:.3g} FLOPs buys no run: the cheapest candidate costs "
                        f"{cheapest.cost:.3g} FLOPs (budget {cheapest.budget:.3g}); raise it")  # fmt: skip


def next_wave(
    report: FitReport,
    runs: pd.DataFrame,
    offered: list[Candidate],
    config: Config,
    proposal: Proposal,
    max_tokens: float | None,
    allowance: float,
    progress: Progress | None = None,
) -> NextWave:
    """The runs of `offered` within `allowance` FLOPs that most narrow the interval of the proposal's
    Approach 3 prediction (see the module's docstring). runs: the finished runs the fit saw;
    max_tokens: the proposal's (the target sees its data at most once). UserError when there is no
    interval to narrow or the allowance buys nothing."""
    a3 = next((p for p in proposal.predictions if p.approach == "approach3"), None)
    if a3 is None or a3.loss_interval is None or report.parametric is None:
        why = (
            "fit.bootstrap=0 gives it none"
            if a3
            else f"Approach 3 gives no target (the shape is {proposal.shape_from}'s)"
        )
        raise UserError(f"--next-wave narrows the 95% interval of Approach 3's predicted loss, but {why}; "
                        "train more sizes per budget and more budgets, or fit with fit.bootstrap > 0")  # fmt: skip
    check_affordable(offered, allowance)
    table = fitted_table(runs, config.fit)
    aspect = proposal.aspect_from.get("aspect_ratio")
    shapes = target_shapes(report.parametric.law, config, proposal.compute, aspect, max_tokens)
    target = Target.of(shapes, proposal.compute, report.counting)
    simulation = Simulation.start(report, table, target, config.fit)
    additions = [simulation.outcomes(c, i, report.counting) for i, c in enumerate(offered)]
    chosen, stopped = choose(simulation, additions, [c.cost for c in offered], allowance, progress)
    width = a3.loss_interval[1] - a3.loss_interval[0]
    picks = [Pick(offered[i], width * ratio) for i, ratio in chosen]
    return NextWave(proposal.proposal_id, proposal.compute, a3.loss, a3.loss_interval, allowance, picks, len(offered),
                    stopped)  # fmt: skip
