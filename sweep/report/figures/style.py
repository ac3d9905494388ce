"""What every figure shares: one small style, the budget and approach colours, number formats, the
runs as the fits saw them, and bootstrap bands."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import matplotlib
import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure as MplFigure

from sweep.fit.aspect import without_widthdepth
from sweep.fit.hparams import grid_runs
from sweep.fit.report import prepare, proxies
from sweep.report.data import ReportData

STYLE = {
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "legend.fontsize": 7,
    "legend.frameon": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.2,
    "lines.markersize": 4,
    "svg.hashsalt": "sweep-report",  # stable element ids: the same sweep gives the same SVG
}
APPROACHES = {  # approach -> (label, colour)
    "approach1": ("Approach 1 (envelope)", "tab:green"),
    "approach2": ("Approach 2 (IsoFLOP)", "tab:orange"),
    "approach3": ("Approach 3 (L(N, D))", "tab:blue"),
}
LOSS = "eval loss (nats/token)"
COMPUTE = "compute C (FLOPs)"
TOKENS = "tokens D"
SINGLE, DOUBLE = (6.4, 4.2), (11.0, 4.2)


class Skipped(Exception):
    """A figure that does not apply to this sweep; the message says why, in one line."""


@dataclass(frozen=True)
class Drawing:
    """A figure drawn but not yet rendered: what a test inspects."""

    figure: MplFigure
    title: str
    caption: str


@contextmanager
def style() -> Iterator[None]:
    with matplotlib.rc_context(STYLE):
        yield


def panels(count: int = 1) -> tuple[MplFigure, list[Axes]]:
    figure = MplFigure(figsize=SINGLE if count == 1 else DOUBLE, layout="constrained")
    axes = figure.subplots(1, count, squeeze=False)[0]
    return figure, list(axes)


def parameters_label(data: ReportData) -> str:
    return "non-embedding parameters N" if data.fit.counting == "non_embedding" else "parameters N (total)"


def budget_colours(data: ReportData) -> dict[float, tuple]:
    """One colour per budget of the sweep, the same in every figure (smallest dark, largest light)."""
    budgets = sorted(b for b in pd.to_numeric(data.runs.get("budget"), errors="coerce").dropna().unique())
    cmap = colormaps["viridis"]
    return {float(b): cmap(0.85 * i / max(len(budgets) - 1, 1)) for i, b in enumerate(budgets)}


def colour_of(colours: dict[float, tuple], budget: float) -> tuple | str:
    return colours.get(float(budget), "grey")


def num(x: float | None) -> str:
    """3 significant digits; powers of ten written as 3.1e5 (no plus sign, no leading zero)."""
    if x is None or not np.isfinite(x):
        return "n/a"
    if 1e3 <= abs(x) < 1e4:
        return f"{x:.0f}"
    if x == 0 or 1e-3 <= abs(x) < 1e3:
        return f"{x:.3g}"
    mantissa, exponent = f"{x:.2e}".split("e")
    return f"{float(mantissa):.3g}e{int(exponent)}"


def with_interval(x: float | None, band: tuple[float, float] | list | None) -> str:
    return f"{num(x)} [{num(band[0])}, {num(band[1])}]" if band else num(x)


def change(predicted: float, actual: float) -> str:
    """predicted / actual - 1, in percent with its sign."""
    return f"{100 * (predicted / actual - 1):+.1f}%"


def nats(loss: float | None, band: tuple[float, float] | list | None = None) -> str:
    """A loss to 3 decimals (its differences matter at 0.1%), with its interval."""
    if loss is None or not np.isfinite(loss):
        return "n/a"
    return f"{loss:.3f} [{band[0]:.3f}, {band[1]:.3f}]" if band else f"{loss:.3f}"


def not_fitted(data: ReportData, approach: str) -> str:
    return f"{approach} could not be fitted: {data.fit.errors.get(approach, 'no fit')}"


def fitted_table(data: ReportData) -> pd.DataFrame:
    """The runs Approaches 1-3 were fitted to (prepared: N under the fit's counting): proxies but
    the runs of an LR x batch grid."""
    runs, _ = proxies(data.runs, data.config.fit.include_targets)
    return prepare(runs[~grid_runs(runs)], data.fit.counting)


def valley_runs(data: ReportData) -> pd.DataFrame:
    """The runs of Approach 2's IsoFLOP valleys (width/depth groups but one size left out)."""
    return without_widthdepth(fitted_table(data))


def band(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The 95% band of (refits, points) values, point by point over the finite refits; None with
    fewer than 2 refits."""
    if len(samples) < 2:
        return None
    values = np.where(np.isfinite(samples), samples, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a point no refit reaches: NaN, drawn as a gap
        low, high = np.nanpercentile(values, [2.5, 97.5], axis=0)
    return low, high


def error_bars(values, intervals) -> np.ndarray:
    """(2, n) distances from each value down to its interval's low end and up to its high end, as
    errorbar() takes them; 0 where an interval is None, NaN, or does not reach past the value (a
    percentile of the refits need not hold the point fit)."""
    values = np.atleast_1d(np.asarray(values, dtype=float))
    bounds = np.array([b if b is not None else (v, v) for v, b in zip(values, intervals, strict=True)], dtype=float)
    bounds = bounds.reshape(-1, 2).T
    with np.errstate(invalid="ignore"):
        return np.nan_to_num(np.clip([values - bounds[0], bounds[1] - values], 0, None))


def log_limits(axes: Axes, values: np.ndarray, axis: str = "y", pad: float = 2.0) -> None:
    """Limits around the finite positive values (a band of wild refits must not squash the fit)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values) & (values > 0)]
    if len(values):
        limits = (values.min() / pad, values.max() * pad)
        axes.set_ylim(*limits) if axis == "y" else axes.set_xlim(*limits)
