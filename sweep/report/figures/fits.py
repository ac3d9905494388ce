"""The figures of the fits: IsoFLOP valleys, the compute-optimal frontier, Approach 3's loss
surface and the residuals of each approach."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sweep.fit.bootstrap import interval
from sweep.fit.envelope import envelope_points, on_grid
from sweep.fit.forms import Chinchilla
from sweep.fit.isoflop import robust_parabola
from sweep.fit.report import curve_table
from sweep.report.data import ReportData
from sweep.report.figures.style import (
    APPROACHES,
    COMPUTE,
    LOSS,
    TOKENS,
    Drawing,
    Skipped,
    band,
    budget_colours,
    colour_of,
    error_bars,
    fitted_table,
    log_limits,
    nats,
    not_fitted,
    num,
    panels,
    parameters_label,
    valley_runs,
    with_interval,
)


def isoflop(data: ReportData) -> Drawing:
    """Loss vs N per budget, each budget's parabola in log N and its vertex with the refits' interval."""
    if data.fit.isoflop is None:
        raise Skipped(not_fitted(data, "approach2"))
    valleys, colours = valley_runs(data), budget_colours(data)
    figure, (axes,) = panels()
    vertices = data.fit.budget_vertices()
    shown = valleys["N"].min() / 1.5, valleys["N"].max() * 1.5  # a vertex's interval may reach far beyond
    for vertex in vertices:
        runs = valleys[valleys["budget"] == vertex["budget"]]
        colour = colour_of(colours, vertex["budget"])
        axes.scatter(runs["N"], runs["loss"], color=colour, s=14, label=f"C = {num(vertex['budget'])}")
        log_n = np.log(runs["N"].to_numpy(float))
        c2, c1, c0 = robust_parabola(log_n, runs["loss"].to_numpy(float))
        x = np.linspace(log_n.min() - 0.15, log_n.max() + 0.15, 100)
        axes.plot(np.exp(x), (c2 * x + c1) * x + c0, color=colour, linewidth=0.9)
        if vertex["centred"]:
            n = vertex["N_star"]
            marker, _, _ = axes.errorbar([n], [vertex["L_star"]], xerr=error_bars(n, [vertex["N_star_interval"]]),
                                         fmt="D", color=colour, markeredgecolor="black", capsize=2)  # fmt: skip
            marker.set_gid("vertex")
        elif shown[0] <= vertex["N_star"] <= shown[1] and np.isfinite(vertex["L_star"]):
            axes.plot([vertex["N_star"]], [vertex["L_star"]], "D", markerfacecolor="none", color=colour,
                      gid="off-centre vertex")  # fmt: skip
    axes.set(xscale="log", xlim=shown, xlabel=parameters_label(data), ylabel=LOSS, title="IsoFLOP valleys (Approach 2)")
    axes.legend(title="budget (FLOPs)")
    return Drawing(figure, "IsoFLOP valleys", isoflop_caption(vertices))


def isoflop_caption(vertices: list[dict]) -> str:
    centred = [v for v in vertices if v["centred"]]
    off = [f"{num(v['budget'])} (lowest loss {'at the smallest' if v['edge'] == 'below' else 'at the largest'} "
           f"size)" if v["edge"] else num(v["budget"]) for v in vertices if not v["centred"]]  # fmt: skip
    parts = []
    if centred:
        top = centred[-1]
        n_star, l_star = (
            with_interval(top["N_star"], top["N_star_interval"]),
            nats(top["L_star"], top["L_star_interval"]),
        )
        parts.append(f"Approach 2 puts N* at C = {num(top['budget'])} at {n_star} with L* = {l_star} nats/token.")
    parts.append(f"{len(centred)} of {len(vertices)} budgets have their minimum inside the sizes trained (diamonds, "
                 "with the 95% bootstrap interval of N*).")  # fmt: skip
    if off:
        parts.append(f"Off-centre, left out of the power laws: {', '.join(off)}.")
    return " ".join(parts)


@dataclass(frozen=True)
class Allocation:
    """One approach's compute-optimal N and D over a range of C, with its refits' values."""

    approach: str
    N: np.ndarray  # (points,)
    D: np.ndarray
    N_refits: np.ndarray  # (refits, points)
    D_refits: np.ndarray
    exponents: dict[str, float]  # "N", "D" -> the exponent of N*(C), D*(C)
    N_exponent_interval: tuple[float, float] | None


def chinchilla_allocation(law: Chinchilla, C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    N = law.optimal_params(C)
    with np.errstate(all="ignore"):
        return N, C / (6 * N)


def allocating(data: ReportData) -> list[str]:
    """The approaches fitted with an identified optimum, which give N*(C) and D*(C)."""
    fits = {"approach1": data.fit.envelope, "approach2": data.fit.isoflop, "approach3": data.fit.parametric}
    unidentified = data.fit.unidentified()
    return [name for name, fit in fits.items() if fit is not None and name not in unidentified]


def allocations(data: ReportData, C: np.ndarray) -> list[Allocation]:
    """Each fitted and identified approach's N*(C), D*(C) (Approach 3 under C = 6ND)."""
    out, fit, approaches = [], data.fit, allocating(data)
    for approach, power_fit, samples in (("approach1", fit.envelope, fit.envelope_samples),
                                         ("approach2", fit.isoflop, fit.isoflop_samples)):  # fmt: skip
        if approach not in approaches:
            continue
        with np.errstate(all="ignore"):
            refits = [np.array([getattr(s, k)(C) for s in samples]).reshape(-1, len(C)) for k in ("N_star", "D_star")]
        exponents = {"N": power_fit.N_star.exponent, "D": power_fit.D_star.exponent}
        out.append(Allocation(approach, power_fit.N_star(C), power_fit.D_star(C), *refits, exponents,
                              interval(s.N_star.exponent for s in samples)))  # fmt: skip
    if "approach3" in approaches:
        law = fit.parametric.law
        pairs = [chinchilla_allocation(s, C) for s in fit.parametric_samples]
        refits = [np.array([p[k] for p in pairs]).reshape(-1, len(C)) for k in (0, 1)]
        a = law.beta / (law.alpha + law.beta)
        out.append(Allocation("approach3", *chinchilla_allocation(law, C), *refits, {"N": a, "D": 1 - a},
                              interval(s.beta / (s.alpha + s.beta) for s in fit.parametric_samples)))  # fmt: skip
    return out


def compute_range(data: ReportData) -> np.ndarray:
    budgets = fitted_table(data)["budget"].to_numpy(float)
    high = max(budgets.max(), (data.proposal or {}).get("compute", 0.0))
    return np.logspace(np.log10(budgets.min() / 2), np.log10(high * 2), 120)


def frontier(data: ReportData) -> Drawing:
    """N*(C) and D*(C) of each approach with bootstrap bands, the IsoFLOP vertices and the target."""
    if not allocating(data):
        why = "; ".join(f"{k}: {v}" for k, v in {**data.fit.errors, **data.fit.unidentified()}.items())
        raise Skipped(f"no approach gives a compute-optimal allocation ({why or 'nothing fitted'})")
    C = compute_range(data)
    laws = allocations(data, C)
    figure, axes = panels(2)
    vertices = [v for v in (data.fit.budget_vertices() if data.fit.isoflop else []) if v["centred"]]
    for ax, key in zip(axes, ("N", "D"), strict=True):
        shown = []
        for law in laws:
            label, colour = APPROACHES[law.approach]
            values = getattr(law, key)
            ax.plot(
                C,
                values,
                color=colour,
                label=f"{label}: {key}* ∝ $C^{{{law.exponents[key]:.3f}}}$",
            )
            if (spread := band(getattr(law, f"{key}_refits"))) is not None:
                ax.fill_between(C, *spread, color=colour, alpha=0.15, linewidth=0)
            shown.append(values)
        if vertices:
            x = [v["budget"] for v in vertices]
            y = np.array([v[f"{key}_star"] for v in vertices])
            bars = error_bars(y, [v[f"{key}_star_interval"] for v in vertices])
            ax.errorbar(x, y, yerr=bars, fmt="D", color="black", markersize=3, capsize=2,
                        label="IsoFLOP vertices (95%)")  # fmt: skip
            shown.append(y)
        shown.append(mark_target(ax, data.proposal, key))
        ax.set(xscale="log", yscale="log", xlabel=COMPUTE, title=f"Compute-optimal {key}*(C)",
               ylabel=parameters_label(data) if key == "N" else TOKENS)  # fmt: skip
        log_limits(ax, np.concatenate([np.ravel(v) for v in shown]))
        ax.legend(loc="upper left")
    return Drawing(figure, "Compute-optimal frontier", frontier_caption(data))


def mark_target(ax, proposal: dict | None, key: str) -> np.ndarray:
    """The proposal's compute as a vertical line and each approach's N (or D) there; returns the values."""
    if not proposal:
        return np.array([])
    compute = proposal["compute"]
    ax.axvline(compute, color="grey", linestyle="--", linewidth=0.8, label=f"target C = {num(compute)}")
    values = []
    for p in proposal["predictions"]:
        value, bounds = p.get(key), p.get(f"{key}_interval")
        if value is None or p["approach"] not in APPROACHES:
            continue
        ax.errorbar(
            [compute],
            [value],
            yerr=error_bars(value, [bounds]),
            fmt="*",
            markersize=8,
            color=APPROACHES[p["approach"]][1],
            capsize=2,
        )
        values.append(value)
    return np.array(values, dtype=float)


def frontier_caption(data: ReportData) -> str:
    at = data.proposal["compute"] if data.proposal else float(fitted_table(data)["budget"].max())
    where = f"the target C = {num(at)}" if data.proposal else f"the largest budget C = {num(at)}"
    parts = []
    for law in allocations(data, np.array([at])):
        spread = band(law.N_refits)
        n_band = (float(spread[0][0]), float(spread[1][0])) if spread else None
        parts.append(f"{APPROACHES[law.approach][0]} N* = {with_interval(float(law.N[0]), n_band)} "
                     f"(N* ∝ C^{with_interval(law.exponents['N'], law.N_exponent_interval)})")  # fmt: skip
    stars = " Stars: the proposal's predictions at its target (its shape, where its warnings say so, limited by data)."
    counted = (" Approach 3's allocation assumes C = 6ND; the runs also spend attention FLOPs, so their D at a"
               " budget lies below its D*(C) line at small N." if "approach3" in allocating(data) else "")  # fmt: skip
    return (f"At {where}: " + "; ".join(parts) + f". Bands: 95% bootstrap over runs.{counted}"
            f"{stars if data.proposal else ''}")  # fmt: skip


def contours(data: ReportData) -> Drawing:
    """Approach 3's L(N, D) over (N, D): contours, the runs, iso-FLOP lines and N_opt(C)."""
    if data.fit.parametric is None:
        raise Skipped(not_fitted(data, "approach3"))
    law, table, colours = data.fit.parametric.law, fitted_table(data), budget_colours(data)
    target = target_point(data)
    n_span = np.r_[table["N"], [target[0]] if target[0] else []]
    d_span = np.r_[table["D"], [target[1]] if target[1] else []]
    N = np.logspace(np.log10(n_span.min() / 3), np.log10(n_span.max() * 3), 150)
    D = np.logspace(np.log10(d_span.min() / 3), np.log10(d_span.max() * 3), 150)
    with np.errstate(all="ignore"):
        L = law.loss(N[None, :], D[:, None])
    figure, (axes,) = panels()
    if np.isfinite(L).any():
        levels = np.unique(np.round(np.nanquantile(L[np.isfinite(L)], np.linspace(0.03, 0.97, 12)), 3))
        lines = axes.contour(N, D, L, levels=levels, colors="0.45", linewidths=0.6)
        axes.clabel(lines, fmt="%.2f", fontsize=6)
    for budget, runs in table.sort_values("N").groupby("budget"):
        colour = colour_of(colours, budget)
        axes.plot(runs["N"], runs["D"], "o-", color=colour, markersize=3.5, linewidth=0.6, label=f"C = {num(budget)}")
    C = compute_range(data)
    n_opt, d_opt = chinchilla_allocation(law, C)
    axes.plot(n_opt, d_opt, color=APPROACHES["approach3"][1], linewidth=1.5, label="compute-optimal N_opt(C), C = 6ND")
    if target[0]:
        axes.plot([target[0]], [target[1]], "*", color="crimson", markersize=11, label="proposed target")
    axes.set(xscale="log", yscale="log", xlim=(N[0], N[-1]), ylim=(D[0], D[-1]), xlabel=parameters_label(data),
             ylabel=TOKENS, title="Approach 3: loss contours L(N, D) (nats/token)")  # fmt: skip
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return Drawing(figure, "Approach 3 loss surface", contours_caption(data, law))


def target_point(data: ReportData) -> tuple[float | None, float | None]:
    """The proposed target's (N, D), N counted as the fit counts it (the axes' N)."""
    proposal = data.proposal or {}
    shape = proposal.get("shape", {})
    return shape.get("N_total" if str(data.fit.counting) == "total" else "N"), proposal.get("tokens")


def contours_caption(data: ReportData, law: Chinchilla) -> str:
    bands = data.fit.parameter_intervals()
    terms = ", ".join(f"{k} = {with_interval(getattr(law, k), bands[k])}" for k in ("E", "A", "B", "alpha", "beta"))
    text = f"L(N, D) = E + A/N^alpha + B/D^beta with {terms}."
    if why := law.unidentified():
        return text + f" No compute-optimal line: {why}."
    text += f" Along the line N_opt ∝ C^{num(law.beta / (law.alpha + law.beta))}."
    predicted = [p for p in (data.proposal or {}).get("predictions", []) if p["approach"] == "approach3"]
    if predicted:
        p, (n, d) = predicted[0], target_point(data)
        text += (f" The proposed target (star; N = {num(n)}, D = {num(d)}) is predicted at "
                 f"{nats(p['loss'], p['loss_interval'])} nats/token.")  # fmt: skip
    return text


RESIDUAL_MARKERS = {"approach3": "o", "approach2": "D", "approach1": "s"}


@dataclass(frozen=True)
class Residuals:
    approach: str
    what: str  # what was compared, for the panel's title
    C: np.ndarray
    percent: np.ndarray  # 100 (observed / predicted - 1)
    budget: np.ndarray  # the colour of each point (NaN: grey)


def residuals_of(data: ReportData) -> list[Residuals]:
    fit, out = data.fit, []
    if fit.parametric is not None:
        table = fitted_table(data)
        with np.errstate(all="ignore"):
            predicted = fit.parametric.law.loss(table["N"].to_numpy(float), table["D"].to_numpy(float))
        misses = 100 * (table["loss"].to_numpy(float) / predicted - 1)
        out.append(Residuals("approach3", "final loss of each run", table["C"].to_numpy(float), misses,
                             table["budget"].to_numpy(float)))  # fmt: skip
    if fit.isoflop is not None:
        vertices = [b for b in fit.isoflop.budgets if b.centred]
        C = np.array([b.budget for b in vertices])
        observed = np.array([b.L_star for b in vertices])
        out.append(Residuals("approach2", "L* of each centred budget vs L*(C)", C,
                             100 * (observed / fit.isoflop.L_star(C) - 1), C))  # fmt: skip
    if fit.envelope is not None:
        table = fitted_table(data)
        grid = on_grid(curve_table(table, data.curves))
        points = envelope_points(grid, np.ones((1, len(grid.N)), dtype=bool))
        on = points.on[0]
        C = grid.C[on]
        misses = 100 * (points.loss[0, on] / fit.envelope.L_star(C) - 1)
        out.append(Residuals("approach1", "envelope's loss vs L*(C)", C, misses, np.full(len(C), np.nan)))
    return out


def residuals(data: ReportData) -> Drawing:
    found = residuals_of(data)
    if not found:
        raise Skipped("no approach could be fitted: " + "; ".join(f"{k}: {v}" for k, v in data.fit.errors.items()))
    colours = budget_colours(data)
    figure, axes = panels(len(found))
    spanned = np.concatenate([r.C for r in found])
    for ax, r in zip(axes, found, strict=True):
        label, colour = APPROACHES[r.approach]
        point_colours = [colour if np.isnan(b) else colour_of(colours, b) for b in r.budget]
        ax.axhline(0, color="black", linewidth=0.6)
        ax.scatter(r.C, r.percent, c=point_colours, s=16, marker=RESIDUAL_MARKERS[r.approach])
        ax.set(
            xscale="log",
            xlim=(spanned.min() / 1.3, spanned.max() * 1.3),
            xlabel=COMPUTE,
            ylabel="observed / predicted - 1 (%)",
            title=f"{label}\n{r.what}",
        )
    caption = "; ".join(f"{APPROACHES[r.approach][0]}: RMS {num(rms(r.percent))}% over {np.isfinite(r.percent).sum()} "
                        f"points (largest {num(largest(r.percent))}%)" for r in found)  # fmt: skip
    return Drawing(figure, "Residuals", f"Observed minus fitted, in percent of the fit. {caption}.")


def rms(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(np.sqrt(np.mean(finite**2))) if len(finite) else float("nan")


def largest(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite[np.argmax(np.abs(finite))]) if len(finite) else float("nan")
