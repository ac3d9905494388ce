"""Fit Approaches 1, 2 and 3 to a table of runs (and their curves), with bootstrap refits, as one
JSON-able report."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from sweep.config import FitConfig
from sweep.errors import UserError
from sweep.fit.aspect import AspectFit, fit_aspects, without_widthdepth, without_widthdepth_budgets
from sweep.fit.bootstrap import Refits, Resamples, draw, finite, interval, refit_batches
from sweep.fit.curvelaw import predicted_points
from sweep.fit.envelope import EnvelopeFit, envelope_fit, envelope_refits, on_grid
from sweep.fit.errors import FitError
from sweep.fit.forms import Chinchilla, FloorPowerLaw
from sweep.fit.hparams import HparamFit, fit_hparams, grid_runs
from sweep.fit.isoflop import IsoflopFit, fit_isoflop, isoflop_refits
from sweep.fit.parametric import (
    ParametricFit,
    chinchilla,
    fit_floor_power_law,
    fit_parametric,
    floor_power_law,
    refit_terms,
    searched_edges,
)

CHINCHILLA_PARAMS = ("E", "A", "B", "alpha", "beta")
Progress = Callable[[str, int, int], None]  # (stage, done, total): what a progress bar is told
# What the fitting modules raise when the points cannot be fitted (UserError: from before FitError).
UNFITTABLE = (FitError, UserError)


@dataclass(frozen=True)
class FitReport:
    counting: str
    n_runs: int
    parametric: ParametricFit | None
    isoflop: IsoflopFit | None
    parametric_samples: Refits[Chinchilla]  # bootstrap refits of Approach 3
    isoflop_samples: Refits[IsoflopFit]  # bootstrap refits of Approach 2
    errors: dict[str, str]  # approach -> why it could not be fitted
    envelope: EnvelopeFit | None = None
    envelope_samples: Refits[EnvelopeFit] = field(default_factory=Refits)  # bootstrap refits of Approach 1
    forms: dict[str, FloorPowerLaw] = field(default_factory=dict)  # fit.forms besides chinchilla
    form_samples: dict[str, Refits[FloorPowerLaw]] = field(default_factory=dict)
    other_counting: dict = field(default_factory=dict)  # point estimates with N counted the other way
    targets_left_out: int = 0  # target runs not fitted (fit.include_targets=false)
    hparams: HparamFit | None = None  # the optimal LR and batch, from the runs of an LR x batch grid
    grid_left_out: int = 0  # runs of an LR x batch grid, left out of Approaches 1-3
    aspects: list[AspectFit] = field(default_factory=list)  # width/depth groups, smallest size first
    edges: list[str] = field(default_factory=list)  # fitted values at the edge of the search (searched_edges)
    curve_law_points: int = 0  # points of Approach 3 predicted by the curve law (fit.curve_law_points)

    def preferred_aspect(self) -> AspectFit | None:
        """The width/depth fit at the largest size (the nearest to a target), identified or not."""
        return self.aspects[-1] if self.aspects else None

    def unidentified(self) -> dict[str, str]:
        """Approach -> why its fit gives no trustworthy optimum (an exponent <= 0 or non-finite)."""
        out = {}
        if self.parametric and (why := self.parametric.law.unidentified()):
            out["approach3"] = why
        for name, f in (("approach2", self.isoflop), ("approach1", self.envelope)):
            if f and (why := power_law_unidentified(f)):
                out[name] = why
        return out

    def notes(self) -> list[str]:
        """What a reader of the numbers must know: unidentified fits, dropped refits, left-out targets."""
        notes = [f"{name} unidentified: {why}" for name, why in self.unidentified().items()]
        notes += self.edges
        refits = {"approach3": self.parametric_samples, "approach2": self.isoflop_samples,
                  "approach1": self.envelope_samples, **self.form_samples}  # fmt: skip
        notes += [note for name, samples in refits.items() if (note := samples.note(name))]
        if (aspect := self.preferred_aspect()) and not aspect.identified:
            notes.append(f"aspect ratio unidentified by the width/depth runs at C = {aspect.budget:.3g} "
                         f"(N ~ {aspect.N:.3g}): {aspect.unidentified}; shapes keep model.aspect_ratio")  # fmt: skip
        if self.curve_law_points:
            notes.append(f"approach3 also fitted {self.curve_law_points} final losses predicted by the curve law "
                         "of their shape's curves (fit.curve_law_points), not trained")  # fmt: skip
        if self.targets_left_out:
            notes.append(f"{self.targets_left_out} target runs not fitted (fit.include_targets=true fits them)")
        if self.grid_left_out:
            notes.append(
                f"{self.grid_left_out} runs of an LR x batch grid left out of Approaches 1-3 (they vary LR "
                "and batch at one size, not the size at one compute); they give the LR/batch optima"
            )
        return notes

    def parameter_intervals(self) -> dict[str, tuple[float, float] | None]:
        return {k: interval(getattr(s, k) for s in self.parametric_samples) for k in CHINCHILLA_PARAMS}

    def to_dict(self) -> dict:
        out: dict = {"counting": self.counting, "n_runs": self.n_runs, "errors": self.errors, "notes": self.notes()}
        if self.other_counting:
            out["other_counting"] = self.other_counting
        if self.parametric:
            out["approach3"] = {
                **self.parametric.law.as_dict(),
                "objective": self.parametric.objective,
                "intervals": self.parameter_intervals(),
                "bootstrap": len(self.parametric_samples),
                "dropped": self.parametric_samples.dropped,
            }
        for name, law in self.forms.items():
            samples = self.form_samples[name]
            out.setdefault("forms", {})[name] = {
                "form": f"L({law.variable}) = E + A / {law.variable}^alpha",
                **law.as_dict(),
                "intervals": {k: interval(getattr(s, k) for s in samples) for k in ("E", "A", "alpha")},
                "bootstrap": len(samples),
                "dropped": samples.dropped,
            }
        if self.envelope:
            out["approach1"] = {**power_laws(self.envelope, self.envelope_samples), "points": self.envelope.n_points}
        if self.isoflop:
            out["approach2"] = {**power_laws(self.isoflop, self.isoflop_samples), "budgets": self.budget_vertices()}
        if self.hparams is not None:
            out["hparams"] = self.hparams.to_dict()
        if aspect := self.preferred_aspect():
            out["aspect"] = {"aspect_ratio": aspect.aspect_ratio if aspect.identified else None,
                             "interval": aspect.interval if aspect.identified else None,
                             "groups": [asdict(a) for a in self.aspects]}  # fmt: skip
        return out

    def budget_vertices(self) -> list[dict]:
        """Approach 2's per-budget vertices, each with the interval of its refits of that budget."""
        rows = []
        for b in self.isoflop.budgets:
            refits = [r for s in self.isoflop_samples for r in s.budgets if r.budget == b.budget]
            bands = {f"{k}_interval": interval(getattr(r, k) for r in refits) for k in ("N_star", "D_star", "L_star")}
            rows.append({**vars(b), **bands})
        return rows


def power_laws(fit: EnvelopeFit | IsoflopFit, samples: Refits) -> dict:
    """N*(C), D*(C), L*(C) of Approach 1 or 2 with the bootstrap interval of each exponent."""
    laws = {
        name: {
            "coefficient": getattr(fit, name).coefficient,
            "exponent": getattr(fit, name).exponent,
            "coefficient_interval": interval(getattr(s, name).coefficient for s in samples),
            "exponent_interval": interval(getattr(s, name).exponent for s in samples),
        }
        for name in ("N_star", "D_star", "L_star")
    }
    return {**laws, "bootstrap": len(samples), "dropped": samples.dropped}


def power_law_unidentified(fit: EnvelopeFit | IsoflopFit) -> str | None:
    """N* and D* must grow with C; an exponent <= 0 means the budgets do not pin the optimum down."""
    bad = [f"{name} exponent {getattr(fit, name).exponent:.3g} <= 0" for name in ("N_star", "D_star")
           if not getattr(fit, name).exponent > 0]  # fmt: skip
    return ", ".join(bad) or None


def power_laws_finite(fit: EnvelopeFit | IsoflopFit) -> bool:
    return finite(*(v for name in ("N_star", "D_star", "L_star") for v in vars(getattr(fit, name)).values()))


def law_finite(law: Chinchilla | FloorPowerLaw) -> bool:
    return finite(*law.as_dict().values())


def proxies(runs: pd.DataFrame, include_targets: bool = False) -> tuple[pd.DataFrame, int]:
    """The runs to fit: proxies only, unless include_targets (a target's loss is what a fit predicts,
    so fitting it would make "predicted vs trained" circular). Trunks, stable phases that were never
    annealed, are never fitted. Returns the runs and how many targets were left out."""
    if "role" not in runs:
        return runs, 0
    runs = runs[(runs["role"] != "trunk").to_numpy()]
    if include_targets:
        return runs, 0
    targets = (runs["role"] == "target").to_numpy()
    return runs[~targets], int(targets.sum())


def prepare(runs: pd.DataFrame, counting: str = "non_embedding") -> pd.DataFrame:
    """Columns N, D, C, loss, budget (and run_id, d_model, n_layers where given) from a store or CSV
    table; N per the chosen counting."""
    table = runs.copy()
    if counting == "total":
        if "N_total" not in table or table["N_total"].isna().any():
            raise FitError("fit.counting=total needs N_total for every run; use fit.counting=non_embedding")
        table["N"] = table["N_total"]
    validate(table, ("N", "D", "C", "loss"))
    if "budget" not in table or table["budget"].isna().any():
        table["budget"] = table["C"].map(lambda c: float(f"{c:.2g}"))
    columns = ["N", "D", "C", "loss", "budget"] + [k for k in ("run_id", "d_model", "n_layers") if k in table]
    return table[columns].reset_index(drop=True)


def curve_table(table: pd.DataFrame, curves: pd.DataFrame) -> pd.DataFrame:
    """The evaluations of the table's runs as Approach 1 reads them: run_id, N, tokens, flops, loss."""
    sizes = table.drop_duplicates("run_id").set_index("run_id")["N"]
    kept = curves[curves["run_id"].isin(sizes.index)]
    return pd.DataFrame({"run_id": kept["run_id"], "N": kept["run_id"].map(sizes), "tokens": kept["tokens"],
                         "flops": kept["flops"], "loss": kept["eval_loss"]})  # fmt: skip


def validate(table: pd.DataFrame, columns: tuple[str, ...]) -> None:
    for column in columns:
        if column not in table:
            raise FitError(f"column {column!r} is missing")
        values = pd.to_numeric(table[column], errors="coerce")
        bad = table.index[~(np.isfinite(values) & (values > 0))]
        if len(bad):
            rows = ", ".join(str(i) for i in bad[:5]) + (" ..." if len(bad) > 5 else "")
            raise FitError(f"column {column!r} has non-positive or non-finite values in rows {rows}; fix or drop them")
        table[column] = values


def frontier(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each budget's lowest loss: the points L(C) is fitted to (budgets of width/depth runs alone left out)."""
    lowest = without_widthdepth_budgets(table).groupby("budget")["loss"].min()
    return lowest.index.to_numpy(dtype=float), lowest.to_numpy()


FORM_POINTS = {  # form -> the variable, and whether its points are each budget's lowest loss
    "kaplan_n": ("N", False),
    "kaplan_d": ("D", False),
    "compute": ("C", True),
}


def overflowed(name: str, errors: dict[str, str]) -> tuple[None, Refits]:
    errors[name] = "the fit overflowed (a parameter is infinite or NaN): these runs do not identify it"
    return None, Refits()


def fit_forms(table: pd.DataFrame, config: FitConfig, errors: dict[str, str]):
    """The one-variable forms of fit.forms, each with bootstrap refits; failures go to errors.
    L(C) is fitted to each budget's lowest loss, and its refits resample runs within budgets."""
    forms, samples = {}, {}
    for name in config.forms:
        if name not in FORM_POINTS:
            continue
        variable, per_budget = FORM_POINTS[name]
        points = without_widthdepth_budgets(table) if per_budget else table
        try:
            x, loss = frontier(points) if per_budget else (points[variable].to_numpy(), points["loss"].to_numpy())
            law, theta = fit_floor_power_law(variable, x, loss, config.huber_delta)
        except UNFITTABLE as exc:
            errors[name] = str(exc)
            continue
        if not law_finite(law):
            overflowed(name, errors)
            continue
        forms[name], samples[name] = law, form_refits(theta, variable, points, x if per_budget else None, config)
    return forms, samples


def form_refits(
    theta: np.ndarray, variable: str, points: pd.DataFrame, budgets: np.ndarray | None, config: FitConfig
) -> Refits[FloorPowerLaw]:
    """Bootstrap refits of L(x) = E + A / x^alpha from theta. With budgets (the frontier's, sorted),
    runs are resampled within budgets and each resample's points are its lowest loss per budget."""
    per_budget = budgets is not None
    draws = draw(points, config.bootstrap, config.seed, "budget" if per_budget else None, config.seed_noise)
    logs = np.log(np.array([budgets if per_budget else points[variable].to_numpy(dtype=float)]))
    loss = points["loss"].to_numpy()

    def refit(batch: Resamples) -> list[FloorPowerLaw]:
        drawn = batch.loss(loss)
        thetas = refit_terms(theta, logs, batch.lowest_per_group(drawn) if per_budget else drawn, config.huber_delta,
                             rows=None if per_budget else batch.rows)  # fmt: skip
        return [floor_power_law(variable, t) for t in thetas]

    return refit_batches(draws, refit, law_finite)


def approach3(table: pd.DataFrame, config: FitConfig, errors: dict[str, str], progress: Progress | None = None):
    try:
        fit = fit_parametric(table["N"], table["D"], table["loss"], config.huber_delta)
    except UNFITTABLE as exc:
        errors["approach3"] = str(exc)
        return None, Refits()
    if not law_finite(fit.law):
        return overflowed("approach3", errors)
    draws = draw(table, config.bootstrap, config.seed, seed_noise=config.seed_noise)
    logs, loss = np.log(table[["N", "D"]].to_numpy(dtype=float).T), table["loss"].to_numpy()

    def refit(batch: Resamples) -> list[Chinchilla]:
        return [chinchilla(t) for t in refit_terms(fit.theta, logs, batch.loss(loss), config.huber_delta, batch.rows)]

    tell = (lambda done, total: progress("Approach 3 bootstrap", done, total)) if progress else None
    return fit, refit_batches(draws, refit, law_finite, tell)


def approach2(table: pd.DataFrame, config: FitConfig, errors: dict[str, str]):
    valleys = without_widthdepth(table)  # a width/depth budget is not an IsoFLOP valley
    try:
        fit = fit_isoflop(valleys, config.exclude_edge_budgets)
    except UNFITTABLE as exc:
        errors["approach2"] = str(exc)
        return None, Refits()
    if not power_laws_finite(fit):
        return overflowed("approach2", errors)

    draws = draw(valleys, config.bootstrap, config.seed, by="budget", seed_noise=config.seed_noise)
    return fit, refit_batches(
        draws, lambda b: isoflop_refits(valleys, b, config.exclude_edge_budgets), power_laws_finite
    )


def approach1(table: pd.DataFrame, curves: pd.DataFrame | None, config: FitConfig, errors: dict[str, str]):
    if curves is None or "run_id" not in table:
        return None, Refits()
    try:
        grid = on_grid(curve_table(table, curves))
        fit = envelope_fit(grid)
    except UNFITTABLE as exc:
        errors["approach1"] = str(exc)
        return None, Refits()
    if not power_laws_finite(fit):
        return overflowed("approach1", errors)

    draws = draw(table, config.bootstrap, config.seed)  # no seed noise: the envelope reads curves, not final losses
    run_ids = table["run_id"].to_numpy()
    return fit, refit_batches(draws, lambda batch: envelope_refits(grid, run_ids[batch.rows]), power_laws_finite)


def other_counting(runs: pd.DataFrame, config: FitConfig) -> dict:
    """Point estimates of Approaches 2 and 3 with N counted the other way (DESIGN.md: embeddings
    are as large as N at small widths, and the counting moves the exponents). No bootstrap: for
    intervals, fit again with that fit.counting."""
    counting = "total" if config.counting == "non_embedding" else "non_embedding"
    try:
        table = prepare(runs, counting)
    except FitError:
        return {}  # e.g. a CSV without N_total
    out: dict = {"counting": counting}
    with suppress(*UNFITTABLE):
        out["approach3"] = fit_parametric(table["N"], table["D"], table["loss"], config.huber_delta).law.as_dict()
    with suppress(*UNFITTABLE):
        out["approach2"] = {
            "N_star_exponent": fit_isoflop(without_widthdepth(table), config.exclude_edge_budgets).N_star.exponent
        }
    return out


def fit_all(
    runs: pd.DataFrame,
    config: FitConfig,
    curves: pd.DataFrame | None = None,
    allow_unfitted: bool = False,
    progress: Progress | None = None,
) -> FitReport:
    """runs: a store or CSV table; curves (the store's curves table) enables Approach 1. Target runs
    are left out unless config.include_targets. The runs of an LR x batch grid (sweep=lrbatch) are
    fitted on their own (sweep/fit/hparams.py) and left out of Approaches 1-3: one size at one budget
    is no IsoFLOP valley. When neither Approach 2 nor 3 nor the LR/batch optima can be fitted this
    raises, unless allow_unfitted (a proposal still shows the best run it has, saying why).
    progress(stage, done, total), when given, hears of each stage as it starts and of Approach 3's
    bootstrap batch by batch."""
    step = progress or (lambda stage, done, total: None)
    runs, targets_left_out = proxies(runs, config.include_targets)
    in_grid = grid_runs(runs)
    hparams = fit_hparams(runs[in_grid], config) if in_grid.any() else None
    runs = runs[~in_grid]
    errors: dict[str, str] = {}
    if hparams is not None and runs.empty:
        errors = dict.fromkeys(("approach3", "approach2"), "every run is in an LR x batch grid (no IsoFLOP sizes)")
        return FitReport(config.counting, 0, None, None, Refits(), Refits(), errors, targets_left_out=targets_left_out,
                         hparams=hparams, grid_left_out=int(in_grid.sum()))  # fmt: skip
    table = prepare(runs, config.counting)
    if len(table) == 0:
        raise FitError("no finished runs to fit; wait for runs to finish and `sweep collect`")
    step("Approach 3", 0, 1)
    with_predicted = with_curve_law_points(table, runs, curves, config)
    parametric, parametric_samples = approach3(with_predicted, config, errors, progress)
    step("Approach 2", 0, 1)
    isoflop, isoflop_samples = approach2(table, config, errors)
    if parametric is None and isoflop is None and hparams is None and not allow_unfitted:
        raise FitError(f"too few points to fit: {errors['approach3']}")
    step("Approach 1", 0, 1)
    envelope, envelope_samples = approach1(table, curves, config, errors)
    step("L(C) and other forms", 0, 1)
    forms, form_samples = fit_forms(table, config, errors)
    step("the other counting, aspect ratios", 0, 1)
    identified = parametric.law if parametric and not parametric.law.unidentified() else None
    return FitReport(config.counting, len(table), parametric, isoflop, parametric_samples, isoflop_samples, errors,
                     envelope, envelope_samples, forms, form_samples, other_counting(runs, config),
                     targets_left_out, hparams, int(in_grid.sum()), fit_aspects(table, identified, config),
                     edges(parametric, forms, table["loss"].min()), len(with_predicted) - len(table))  # fmt: skip


def sized_proxies(runs: pd.DataFrame, config: FitConfig) -> pd.DataFrame:
    """The runs fit_all fits Approaches 1-3 to: the proxies (see `proxies`) outside an LR x batch grid."""
    runs = proxies(runs, config.include_targets)[0]
    return runs[~grid_runs(runs)]


def approach3_points(runs: pd.DataFrame, config: FitConfig, curves: pd.DataFrame | None = None) -> pd.DataFrame:
    """The points fit_all fits Approach 3 to: sized_proxies, and with fit.curve_law_points the curve
    law's predictions."""
    runs = sized_proxies(runs, config)
    return with_curve_law_points(prepare(runs, config.counting), runs, curves, config)


def with_curve_law_points(
    table: pd.DataFrame, runs: pd.DataFrame, curves: pd.DataFrame | None, config: FitConfig
) -> pd.DataFrame:
    """Approach 3's points: the runs', and with fit.curve_law_points the final losses the curve law of
    each shape predicts at the budgets it was not run at (sweep/fit/curvelaw.py), marked predicted."""
    if not config.curve_law_points or curves is None or "spec_json" not in runs:
        return table
    extra = predicted_points(runs, curves, config.huber_delta)
    if extra.empty:
        return table
    predicted = prepare(extra, config.counting).assign(predicted=True)
    return pd.concat([table.assign(predicted=False), predicted], ignore_index=True)


def edges(parametric: ParametricFit | None, forms: dict[str, FloorPowerLaw], lowest_loss: float) -> list[str]:
    laws = {name: (law.E, {"alpha": law.alpha}) for name, law in forms.items()}
    if parametric is not None:
        laws = {"approach3": (parametric.law.E, {"alpha": parametric.law.alpha, "beta": parametric.law.beta}), **laws}
    return [note for name, (E, exponents) in laws.items() for note in searched_edges(name, E, exponents, lowest_loss)]
