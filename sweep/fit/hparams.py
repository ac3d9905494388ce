"""The LR and batch size that minimise the loss, measured on an LR x batch grid ("Predictable Scale:
Part I", Li et al. 2025), and their power laws eta*(N, D) = a N^b D^c and B*(D) = k D^m.

A group is one size trained at one budget (so one N and one D) over several LRs and batches. Its
optimum is the vertex of a quadratic of the loss in (log LR, log B); in a coordinate with fewer than
3 values trained, the optimum is not measured. An optimum is trusted only inside its grid: where the
vertex lies beyond the smallest or largest value trained (or the quadratic has no minimum), the
group is flagged and left out of that law. The laws are least squares
in logs over the trusted groups, with bootstrap intervals over runs (resampled within each group).
A law with too few groups, or eta*(N, D) where N and D move together, is unidentified and says what
it needs; the proposal then keeps the rules. N is the non-embedding count; B counts sequences.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sweep.config import FitConfig, TrainConfig
from sweep.fit.bootstrap import Refits, bootstrap, interval
from sweep.fit.errors import FitError
from sweep.fit.forms import PowerLaw
from sweep.fit.isoflop import robust_parabola

MIN_VALUES = 3  # distinct LRs (or batches) a parabola needs
LR_LAW_GROUPS = 3  # eta*(N, D) has 3 parameters
BATCH_LAW_GROUPS = 2  # B*(D) has 2
MAX_LOG_CORRELATION = 0.98  # |corr(log N, log D)| over the groups beyond which eta* cannot tell N from D
RULE = "assumed: rule"


def grid_runs(runs: pd.DataFrame) -> np.ndarray:
    """Which runs belong to an LR x batch grid: those of a (budget, N) trained at 2+ (LR, batch)
    pairs. Every other grid trains each size once per seed, at the rules' LR and batch."""
    if not {"budget", "N", "lr", "batch_size"} <= set(runs.columns) or runs.empty:
        return np.zeros(len(runs), dtype=bool)
    setting = runs["lr"].astype(str) + "/" + runs["batch_size"].astype(str)
    pairs = setting.groupby([runs["budget"], runs["N"]]).transform("nunique")
    return (pairs >= 2).to_numpy()


@dataclass(frozen=True)
class GroupOptimum:
    budget: float
    N: float
    D: float
    n_runs: int
    loss: float  # the lowest loss trained
    lr: float | None  # the optimum (the vertex, else the best run's); None when fewer than 3 LRs were trained
    batch: float | None
    lr_edge: str  # "" when the optimum is inside the LRs trained, else why it is not trusted
    batch_edge: str

    @property
    def key(self) -> tuple[float, float]:
        return self.budget, self.N


def vertex(x: np.ndarray, y: np.ndarray, loss: np.ndarray) -> tuple[float | None, float | None]:
    """The (x, y) of the minimum of the quadratic fitted in the coordinates with 3+ distinct values
    (None in the others, and in both where it has no minimum). With one such coordinate, the
    parabola is fitted along it at the best run's value of the other."""
    vary_x, vary_y = (len(np.unique(v)) >= MIN_VALUES for v in (x, y))
    if vary_x and vary_y:
        design = np.column_stack([np.ones_like(x), x, y, x**2, y**2, x * y])
        c = np.linalg.lstsq(design, loss, rcond=None)[0]
        hessian = np.array([[2 * c[3], c[5]], [c[5], 2 * c[4]]])
        if not np.all(np.linalg.eigvalsh(hessian) > 0):
            return None, None
        vx, vy = np.linalg.solve(hessian, -c[1:3])
        return float(vx), float(vy)
    best = int(np.argmin(loss))
    if vary_x:
        line = y == y[best]
        return parabola_vertex(x[line], loss[line]), None
    if vary_y:
        line = x == x[best]
        return None, parabola_vertex(y[line], loss[line])
    return None, None


def parabola_vertex(x: np.ndarray, loss: np.ndarray) -> float | None:
    c2, c1, _ = robust_parabola(x, loss)
    return float(-c1 / (2 * c2)) if c2 > 0 else None


def edge(values: np.ndarray, found: float | None, name: str) -> str:
    """Why an optimum along one coordinate is not trusted, or "" when it is. The vertex decides, not
    the single best run: over a 2-D grid the best run moves with the noise of one run."""
    if len(np.unique(values)) < MIN_VALUES:
        return f"fewer than {MIN_VALUES} {name}s trained"
    if found is None:
        return f"the loss has no minimum in log {name}"
    if found < values.min() or found > values.max():
        return (
            f"the optimum lies {'below the smallest' if found < values.min() else 'above the largest'} {name} trained"
        )
    return ""


def group_optimum(group: pd.DataFrame) -> GroupOptimum:
    x, y = np.log(group["lr"].to_numpy(float)), np.log(group["batch_size"].to_numpy(float))
    loss = group["loss"].to_numpy(float)
    best = int(np.argmin(loss))
    vx, vy = vertex(x, y, loss)
    lr_edge, batch_edge = edge(x, vx, "LR"), edge(y, vy, "batch size")

    def optimum(found: float | None, values: np.ndarray) -> float | None:
        """The vertex, else (no minimum) the best run's value; None where too few values were trained."""
        if len(np.unique(values)) < MIN_VALUES:
            return None
        return float(np.exp(found if found is not None else values[best]))

    return GroupOptimum(
        budget=float(group["budget"].iloc[0]), N=float(group["N"].iloc[0]), D=float(group["D"].mean()),
        n_runs=len(group), loss=float(loss[best]), lr=optimum(vx, x), batch=optimum(vy, y),
        lr_edge=lr_edge, batch_edge=batch_edge,
    )  # fmt: skip


def group_optima(runs: pd.DataFrame) -> list[GroupOptimum]:
    return [group_optimum(group) for _, group in runs.groupby(["budget", "N"], sort=True)]


def trusted(group: GroupOptimum, key: str) -> float | None:
    """The group's optimum LR (key="lr") or batch where it is inside its grid, else None."""
    return None if getattr(group, f"{key}_edge") else getattr(group, key)


@dataclass(frozen=True)
class LrLaw:
    """eta*(N, D) = a N^b D^c, fitted in logs."""

    a: float
    b: float
    c: float

    def __call__(self, N, D):
        return self.a * np.power(N, self.b) * np.power(D, self.c)

    @classmethod
    def fit(cls, N, D, lr) -> LrLaw:
        design = np.column_stack([np.ones(len(N)), np.log(N), np.log(D)])
        log_a, b, c = np.linalg.lstsq(design, np.log(lr), rcond=None)[0]
        return cls(float(np.exp(log_a)), float(b), float(c))


def lr_law(groups: list[GroupOptimum]) -> tuple[LrLaw | None, str]:
    """The law over the groups with a trusted LR optimum, or None and why it is unidentified."""
    used = [g for g in groups if g.lr is not None and not g.lr_edge]
    if len(used) < LR_LAW_GROUPS:
        return None, (
            f"needs {LR_LAW_GROUPS}+ sizes or budgets with an interior LR optimum; {len(used)} of "
            f"{len(groups)} have one (add budgets or sweep.sizes_per_budget, widen sweep.lr_multipliers)"
        )
    log_n, log_d = np.log([g.N for g in used]), np.log([g.D for g in used])
    spread = np.std(log_n) > 0 and np.std(log_d) > 0
    correlation = float(np.corrcoef(log_n, log_d)[0, 1]) if spread else 1.0
    if not abs(correlation) < MAX_LOG_CORRELATION:
        return None, (f"N and D move together over its groups (correlation of their logs {correlation:.3f}): "
                      "train 2+ sizes per budget (sweep.sizes_per_budget)")  # fmt: skip
    return LrLaw.fit([g.N for g in used], [g.D for g in used], [g.lr for g in used]), ""


def batch_law(groups: list[GroupOptimum]) -> tuple[PowerLaw | None, str]:
    used = [g for g in groups if g.batch is not None and not g.batch_edge]
    if len({g.D for g in used}) < BATCH_LAW_GROUPS:
        return None, (
            f"needs {BATCH_LAW_GROUPS}+ sizes or budgets with different D and an interior batch "
            f"optimum; {len(used)} of {len(groups)} have one (add budgets, widen sweep.batch_multipliers)"
        )
    return PowerLaw.fit([g.D for g in used], [g.batch for g in used]), ""


@dataclass(frozen=True)
class Refit:
    """One bootstrap refit: each group's optimum, and the laws over the groups the full fit used."""

    groups: dict[tuple[float, float], GroupOptimum]
    lr: LrLaw | None
    batch: PowerLaw | None


@dataclass(frozen=True)
class HparamFit:
    groups: list[GroupOptimum]
    lr_law: LrLaw | None
    batch_law: PowerLaw | None
    lr_why: str  # why lr_law is None ("" when it was fitted)
    batch_why: str
    samples: Refits[Refit] = field(default_factory=Refits)

    def lr_at(self, N: float, D: float) -> tuple[float, tuple[float, float] | None]:
        return float(self.lr_law(N, D)), interval(float(s.lr(N, D)) for s in self.samples if s.lr)

    def batch_at(self, D: float) -> tuple[float, tuple[float, float] | None]:
        return float(self.batch_law(D)), interval(float(s.batch(D)) for s in self.samples if s.batch)

    def notes(self) -> list[str]:
        laws = (("eta*(N, D)", self.lr_law, self.lr_why, lambda s: s.lr),
                ("B*(D)", self.batch_law, self.batch_why, lambda s: s.batch))  # fmt: skip
        notes = [f"{name} unidentified: {why}" for name, law, why, _ in laws if law is None]
        for name, law, _, of in laws:
            dropped = sum(1 for s in self.samples if of(s) is None) + self.samples.dropped
            if law is not None and dropped:
                notes.append(f"{name}: {dropped} of {self.samples.attempted} bootstrap refits dropped (no optimum)")
        return notes

    def to_dict(self) -> dict:
        groups = []
        for g in self.groups:
            refits = {
                k: [v for s in self.samples if (v := trusted(s.groups[g.key], k)) is not None] for k in ("lr", "batch")
            }
            # the interval is over the refits whose optimum stayed inside the grid; *_refits counts them
            bands = {f"{k}_interval": interval(values) for k, values in refits.items()}
            counts = {f"{k}_refits": len(values) for k, values in refits.items()}
            groups.append({**vars(g), **bands, **counts})
        out: dict = {"groups": groups, "bootstrap": len(self.samples), "notes": self.notes()}
        laws = {
            "lr_law": ("eta*(N, D) = a N^b D^c", self.lr_law, ("a", "b", "c"), lambda s: s.lr),
            "batch_law": ("B*(D) = k D^m", self.batch_law, ("coefficient", "exponent"), lambda s: s.batch),
        }
        for key, (form, law, names, of) in laws.items():
            if law is None:
                out[key] = {"form": form, "unidentified": self.lr_why if key == "lr_law" else self.batch_why}
                continue
            refits = [of(s) for s in self.samples if of(s) is not None]
            out[key] = {"form": form, **{k: getattr(law, k) for k in names},
                        "intervals": {k: interval(getattr(r, k) for r in refits) for k in names}}  # fmt: skip
        return out


def fit_hparams(runs: pd.DataFrame, config: FitConfig) -> HparamFit:
    """runs: an LR x batch grid (see grid_runs), columns budget, N, D, lr, batch_size, loss."""
    table = runs[["budget", "N", "D", "lr", "batch_size", "loss"]].astype(float).reset_index(drop=True)
    if table.empty:
        raise FitError("no runs of an LR x batch grid to fit; plan one with sweep=lrbatch")
    groups = group_optima(table)
    single = "one size at one budget: its optimum only, no law (train 3+ sizes or budgets)"
    lr, lr_why = lr_law(groups) if len(groups) > 1 else (None, single)
    batch, batch_why = batch_law(groups) if len(groups) > 1 else (None, single)
    lr_keys = [g.key for g in groups if g.lr is not None and not g.lr_edge]
    batch_keys = [g.key for g in groups if g.batch is not None and not g.batch_edge]

    def refit(sample: pd.DataFrame) -> Refit:
        """A law is refitted where every group it used has a trusted optimum in the resample (one can
        draw fewer than 3 distinct LRs of a group, or move its vertex out of the grid); else it is
        None, counted as dropped."""
        optima = {g.key: g for g in group_optima(sample)}
        lrs = [trusted(optima[k], "lr") for k in lr_keys]
        batches = [trusted(optima[k], "batch") for k in batch_keys]
        n, d = [optima[k].N for k in lr_keys], [optima[k].D for k in lr_keys]
        lr_refit = LrLaw.fit(n, d, lrs) if lr and None not in lrs else None
        batch_refit = (
            PowerLaw.fit([optima[k].D for k in batch_keys], batches) if batch and None not in batches else None
        )
        return Refit(optima, lr_refit, batch_refit)

    table["group"] = table.groupby(["budget", "N"]).ngroup()
    samples = bootstrap(table, refit, config.bootstrap, config.seed, by="group", seed_noise=config.seed_noise)
    return HparamFit(groups, lr, batch, lr_why, batch_why, samples)


@dataclass(frozen=True)
class TargetHparams:
    """The target's LR and batch: from the fitted laws where identified (0: the rules' value)."""

    lr: float = 0.0
    batch_size: int = 0
    lr_interval: tuple[float, float] | None = None
    batch_interval: tuple[float, float] | None = None
    lr_from: str = RULE
    batch_from: str = RULE


def target_hparams(fit: HparamFit | None, N: float, D: float, train: TrainConfig) -> TargetHparams:
    """The laws at the target's N and D; the batch rounded and clipped to the rules' range."""
    if fit is None:
        return TargetHparams(lr_from=f"{RULE} (no LR x batch grid)", batch_from=f"{RULE} (no LR x batch grid)")
    lr, lr_band, lr_from = 0.0, None, f"{RULE} (eta*(N, D) unidentified: {fit.lr_why})"
    if fit.lr_law is not None:
        lr, lr_band = fit.lr_at(N, D)
        law = fit.lr_law
        lr_from = f"fit: eta*(N, D) = {law.a:.3g} N^{law.b:.3f} D^{law.c:.3f}"
    batch, batch_band, batch_from = 0, None, f"{RULE} (B*(D) unidentified: {fit.batch_why})"
    if fit.batch_law is not None:
        fitted, batch_band = fit.batch_at(D)
        batch = int(min(train.max_batch_size, max(train.min_batch_size, round(fitted))))
        law = fit.batch_law
        batch_from = f"fit: B*(D) = {law.coefficient:.3g} D^{law.exponent:.3f}"
        if batch != round(fitted):
            batch_from += f" = {fitted:.3g}, clipped to train.min/max_batch_size"
    return TargetHparams(lr, batch, lr_band, batch_band, lr_from, batch_from)
