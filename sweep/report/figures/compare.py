"""The figure of a comparison (`sweep compare`, sweep.fit.compare): each sweep's compute-optimal loss
L*(C) with its band, and each variant's effective-compute multiplier over the baseline against C.

It draws from the comparison's payload (Comparison.to_dict(), as stored in the fits table), where
an infinite multiplier or bound (the baseline never reaches the variant's loss) is null."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import LogFormatterSciNotation

from sweep.report.data import ReportData
from sweep.report.figures.style import COMPUTE, LOSS, Drawing, Skipped, error_bars, log_limits, nats, num, panels

SWEEP_COLOURS = ("black", "tab:blue", "tab:red", "tab:purple", "tab:brown", "tab:olive", "tab:cyan")
INFINITE = "∞"
BAND = ("value", "low", "high")  # a curve's keys in the payload


class Plain(LogFormatterSciNotation):
    """Log-axis ticks where matplotlib would label them, written as the report writes numbers (2, 0.5, 1e4)."""

    def __call__(self, x, pos=None) -> str:
        return num(x) if super().__call__(x, pos) else ""


def compare(data: ReportData) -> Drawing:
    if data.comparison is None:
        raise Skipped(f"no comparison recorded: `sweep compare {data.path} OTHER_SWEEP` makes one")
    return draw(data.comparison)


def draw(payload: dict) -> Drawing:
    """Left: each sweep's L*(C) with its 95% band, its loss at each target compute; right: each
    variant's multiplier over the baseline with its band, the line at 1 and the crossovers."""
    compute = series(payload["curves"]["compute"])
    colours = dict(zip(payload["sweeps"], colour_cycle(len(payload["sweeps"])), strict=True))
    figure, (left, right) = panels(2)
    losses(left, payload, compute, colours)
    gains(right, payload, compute, colours)
    crossed = [c["compute"]["value"] for c in payload["crossovers"] if c["compute"]]
    shown = np.r_[compute[np.isfinite(compute)], crossed]
    for ax in (left, right):
        for target in payload["targets"]:
            ax.axvline(target["compute"], color="grey", linestyle=":", linewidth=0.8)
        ax.set_xlim(shown.min() / 1.3, shown.max() * 1.3)
        ax.legend(loc="best")
    return Drawing(figure, "Comparison of sweeps", caption(payload))


def colour_cycle(count: int) -> list[str]:
    return [SWEEP_COLOURS[i % len(SWEEP_COLOURS)] for i in range(count)]


def series(values: Sequence[float | None]) -> np.ndarray:
    """A list from the payload as floats, null as NaN."""
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def losses(ax: Axes, payload: dict, compute: np.ndarray, colours: dict[str, str]) -> None:
    """L*(C) of each sweep (a NaN point is a gap) and each sweep's loss at the targets."""
    shown = []
    for sweep in payload["sweeps"]:  # not the curves' keys: JSON stored with sorted keys loses their order
        curve = payload["curves"]["loss"][sweep]
        value, low, high = (np.where(np.isfinite(v), v, np.nan) for v in (series(curve[k]) for k in BAND))
        label = f"{sweep} (baseline)" if sweep == payload["baseline"] else sweep
        ax.plot(compute, value, color=colours[sweep], label=label)
        ax.fill_between(compute, low, high, color=colours[sweep], alpha=0.15, linewidth=0)
        shown.append(value)
    for target in payload["targets"]:
        for variant in target["variants"]:
            value, bounds = variant["loss"]["value"], variant["loss"]["interval"]
            if value is not None:
                ax.errorbar([target["compute"]], [value], yerr=error_bars(value, [bounds]), fmt="o",
                            color=colours[variant["sweep"]], markersize=3, capsize=2)  # fmt: skip
                shown.append([value])
    finite = np.concatenate(shown)
    finite = finite[np.isfinite(finite)]
    if len(finite):
        margin = 0.08 * (finite.max() - finite.min()) or 0.05  # wild refits' bands are clipped, not shown whole
        ax.set_ylim(finite.min() - margin, finite.max() + margin)
    ax.set(xscale="log", xlabel=COMPUTE, ylabel=f"compute-optimal {LOSS}", title="Compute-optimal loss L*(C)")


SHOWN_RANGE = 1e3  # multipliers beyond 1/1000 to 1000x run off the axis: an extrapolation that far says little


def gains(ax: Axes, payload: dict, compute: np.ndarray, colours: dict[str, str]) -> None:
    """Each variant's multiplier and band (infinite: a gap in the line, the band's top at the axis
    edge), its multiplier at the targets, the line at 1 and the crossovers at it."""
    curves = {sweep: payload["curves"]["multiplier"][sweep] for sweep in payload["sweeps"][1:]}
    at_targets = {sweep: [(t["compute"], *bounded(v["multiplier"])) for t in payload["targets"]
                          for v in t["variants"] if v["sweep"] == sweep] for sweep in curves}  # fmt: skip
    points = [series(curve["value"]) for curve in curves.values()]
    shown = np.concatenate([*points, [1.0], *(np.array(p)[:, 1] for p in at_targets.values() if p)])
    log_limits(ax, np.clip(shown, 1 / SHOWN_RANGE, SHOWN_RANGE))  # beyond: off the axis (the caption has the numbers)
    top = ax.get_ylim()[1] * 10  # an infinite bound is drawn past the top edge
    ax.axhline(1, color=colours[payload["baseline"]], linewidth=0.8, label=f"{payload['baseline']} (baseline)")
    for (sweep, curve), value in zip(curves.items(), points, strict=True):
        low, high = series(curve["low"]), series(curve["high"])
        high = np.where(np.isfinite(low) & ~np.isfinite(high), top, high)  # a null high bound: infinite
        ax.plot(compute, np.where(np.isfinite(value), value, np.nan), color=colours[sweep], label=sweep)
        ax.fill_between(compute, low, high, color=colours[sweep], alpha=0.15, linewidth=0)
        for c, value_at, low_at, high_at in at_targets[sweep]:
            if np.isfinite(value_at):
                bars = error_bars(value_at, [(low_at, min(high_at, top))])
                ax.errorbar([c], [value_at], yerr=bars, fmt="o", color=colours[sweep], markersize=3, capsize=2)
    for crossover in payload["crossovers"]:
        if crossover["compute"]:
            where = crossover["compute"]["value"]
            marker, _, _ = ax.errorbar([where], [1.0], xerr=error_bars(where, [crossover["compute"]["interval"]]),
                                       fmt="X", color=colours[crossover["sweep"]], markeredgecolor="white",
                                       markersize=8, capsize=3, label=f"crossover, C = {num(where)}")  # fmt: skip
            marker.set_gid("crossover")
    ax.set(xscale="log", yscale="log", xlabel=COMPUTE, ylabel="effective-compute multiplier (C needed / C)",
           title=f"Effective compute over {payload['baseline']}")  # fmt: skip
    ax.yaxis.set_major_formatter(Plain())  # after the scale, which sets its own
    ax.yaxis.set_minor_formatter(Plain(labelOnlyBase=False))


def bounded(multiplier: dict) -> tuple[float, float, float]:
    """A multiplier's value and interval as floats, null (the baseline never gets there) as inf; a
    missing interval as the value itself."""
    value = np.inf if multiplier["value"] is None else multiplier["value"]
    low, high = multiplier["interval"] or (value, value)
    return value, np.inf if low is None else low, np.inf if high is None else high


def times(x: float | None) -> str:
    """A multiplier: null or inf is ∞ (the baseline never reaches the variant's loss)."""
    return INFINITE if x is None or np.isposinf(x) else num(x)


def multiplier_text(multiplier: dict) -> str:
    """A multiplier with its 95% interval, as 1.38 [0.612, ∞]."""
    interval = multiplier["interval"]
    return times(multiplier["value"]) + (f" [{times(interval[0])}, {times(interval[1])}]" if interval else "")


def loss_text(loss: dict) -> str:
    return nats(loss["value"], loss["interval"])


def significance(variant: dict) -> str:
    return {True: "yes", False: "no"}.get(variant.get("significant"), "-")


def crossover_text(crossover: dict, payload: dict) -> str:
    """Where a variant's frontier crosses the baseline's, and how many refits cross."""
    share = f"{100 * crossover['share_of_refits_crossing']:.0f}% of refits cross"
    if crossover["compute"] is None:
        low, high = payload["crossover_searched"]
        return f"no crossing between C = {num(low)} and {num(high)} ({share})"
    where = crossover["compute"]
    interval = where["interval"]
    bounds = f" [{num(interval[0])}, {num(interval[1])}]" if interval else ""
    return f"C = {num(where['value'])}{bounds}, {crossover['better_above']} better above ({share})"


def floor_text(payload: dict) -> str:
    return "one floor E shared by all sweeps (joint fit)" if payload["shared_e"] else "each sweep's own floor E"


def caption(payload: dict) -> str:
    largest = max(payload["targets"], key=lambda t: t["compute"])
    baseline = payload["baseline"]
    losses = ", ".join(f"{v['sweep']} {loss_text(v['loss'])}" for v in largest["variants"])
    gains = [f"{v['sweep']} {multiplier_text(v['multiplier'])} (significant: {significance(v)})"
             for v in largest["variants"] if "multiplier" in v]  # fmt: skip
    never = f" (∞: {baseline} never reaches that loss)" if any(INFINITE in g for g in gains) else ""
    crossings = "; ".join(f"{c['sweep']}: {crossover_text(c, payload)}" for c in payload["crossovers"])
    return (
        f"At the largest target C = {num(largest['compute'])}: L* = {losses} nats/token; effective-compute "
        f"multiplier over {baseline} (the compute {baseline} needs for the variant's loss, over C): "
        f"{'; '.join(gains)}{never}. Frontiers crossing {baseline}'s: {crossings}. Bands and bars: 95% over "
        f"{payload['refits']} paired bootstrap refits; {floor_text(payload)}; compute counted as "
        f"{payload['compute_counted_as']}; dotted lines: the target computes."
    )
