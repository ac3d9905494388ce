"""The figures of the runs themselves: loss curves, predictions against what was trained, LR
sweeps and width/depth groups."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from sweep.fit.aspect import aspects, size_corrected, widthdepth_groups
from sweep.fit.hparams import grid_runs
from sweep.fit.report import proxies
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
    change,
    colour_of,
    error_bars,
    fitted_table,
    nats,
    num,
    panels,
    with_interval,
)

ROLE_NAMES = {"proxy": "proxies", "trunk": "trunks", "target": "targets"}  # plurals
ROLE_LINES = {"proxy": ("-", 0.9), "trunk": ("--", 0.9), "target": ("-", 2.0)}  # role -> (linestyle, width)


def curves(data: ReportData) -> Drawing:
    """Every run's eval loss against tokens and against FLOPs, coloured by budget, styled by role."""
    if data.curves.empty:
        raise Skipped("no stored training curves (imported runs, or runs not collected yet)")
    colours = budget_colours(data)
    runs = data.runs.drop_duplicates("run_id").set_index("run_id")
    figure, axes = panels(2)
    roles = set()
    for run_id, curve in data.curves.sort_values(["run_id", "step"]).groupby("run_id"):
        budget = runs["budget"].get(run_id, np.nan)
        role = str(runs["role"].get(run_id, "proxy")) if "role" in runs else "proxy"
        roles.add(role)
        linestyle, width = ROLE_LINES.get(role, ("-", 0.9))
        for ax, x in zip(axes, ("tokens", "flops"), strict=True):
            ax.plot(
                curve[x], curve["eval_loss"], color=colour_of(colours, budget), linestyle=linestyle, linewidth=width
            )
    handles = [Line2D([], [], color=c, label=f"C = {num(b)}") for b, c in colours.items()]
    if len(roles) > 1:
        handles += [Line2D([], [], color="black", linestyle=ROLE_LINES.get(r, ("-", 0.9))[0],
                           linewidth=ROLE_LINES.get(r, ("-", 0.9))[1], label=r) for r in sorted(roles)]  # fmt: skip
    for ax, xlabel, name in zip(axes, (TOKENS, COMPUTE), ("tokens", "FLOPs"), strict=True):
        ax.set(xscale="log", xlabel=xlabel, ylabel=LOSS, title=f"Loss curves vs {name}")
    axes[1].legend(handles=handles, title="budget (FLOPs)")
    return Drawing(figure, "Loss curves", curves_caption(data))


def curves_caption(data: ReportData) -> str:
    counts = data.runs.drop_duplicates("run_id")["role"].value_counts() if "role" in data.runs else pd.Series()
    kinds = ", ".join(f"{n} {ROLE_NAMES.get(role, role) if n > 1 else role}" for role, n in counts.items())
    last = data.curves.sort_values("step").groupby("run_id").tail(1)
    best = last.loc[last["eval_loss"].idxmin()]
    return (f"Eval loss of the {data.curves['run_id'].nunique()} runs with curves ({kinds}) against the tokens and "
            f"the FLOPs they had spent; colour: budget. Lowest final loss {nats(best['eval_loss'])} nats/token "
            f"after {num(best['flops'])} FLOPs.")  # fmt: skip


def backtest(data: ReportData) -> Drawing:
    """Predicted vs actual loss: held-out budgets' runs (fit on the others) and trained targets."""
    targets = [t for t in data.targets if t.predictions]
    if data.backtest is None and not targets:
        raise Skipped("no backtest (it needs 3+ budgets) and no trained target with a recorded prediction")
    figure, (axes,) = panels()
    points: list[float] = []
    parts = []
    if data.backtest is not None:
        parts += held_out(data, axes, points)
    labelled = set()
    for check in targets:
        predicted = []
        for p in check.predictions:
            if p.approach not in APPROACHES:
                continue
            label, colour = APPROACHES[p.approach]
            axes.errorbar([check.loss], [p.loss], yerr=error_bars(p.loss, [p.loss_interval]), fmt="*", markersize=9,
                          capsize=2, color=colour, label=None if label in labelled else f"target, {label}")  # fmt: skip
            labelled.add(label)
            points += [check.loss, p.loss]
            predicted.append(f"{p.approach} predicted {nats(p.loss, p.loss_interval)} ({change(p.loss, check.loss)})")
        parts.append(
            f"target {check.run_id} (C = {num(check.compute)}, loss {nats(check.loss)}): {', '.join(predicted)}"
        )
    finite = [v for v in points if np.isfinite(v)]
    if not finite:
        raise Skipped("the backtest's fit on the lower budgets predicts none of the held-out runs or vertices")
    low, high = min(finite), max(finite)
    pad = 0.05 * (high - low) + 0.01
    axes.plot([low - pad, high + pad], [low - pad, high + pad], color="black", linewidth=0.7, label="y = x")
    axes.set(xlabel=f"actual {LOSS}", ylabel=f"predicted {LOSS}", title="Backtest: predicted vs actual loss")
    axes.legend(loc="upper left")
    return Drawing(figure, "Backtest", "; ".join(parts) + ".")


def held_out(data: ReportData, axes, points: list[float]) -> list[str]:
    """The held-out budgets' runs as Approach 3 fitted on the other budgets predicts them, and each
    held-out budget's vertex as Approach 2 predicts it. Adds to points; returns caption parts."""
    test = data.backtest
    fitted = ", ".join(num(b) for b in test.fitted_budgets)
    parts = []
    table = fitted_table(data)
    runs = table[~table["budget"].isin(test.fitted_budgets)]
    if test.report.parametric is not None and len(runs):
        N, D = runs["N"].to_numpy(float), runs["D"].to_numpy(float)
        with np.errstate(all="ignore"):
            predicted = test.report.parametric.law.loss(N, D)
            refits = np.array([s.loss(N, D) for s in test.report.parametric_samples]).reshape(-1, len(N))
        spread = band(refits)
        bars = error_bars(predicted, list(zip(*spread, strict=True)) if spread else [None] * len(predicted))
        axes.errorbar(runs["loss"], predicted, yerr=bars, fmt="o", markersize=4, capsize=2,
                      color=APPROACHES["approach3"][1], label="held-out runs, Approach 3")  # fmt: skip
        points += [*runs["loss"], *predicted]
        parts.append(f"Fitted on budgets {fitted}, Approach 3 predicts the {len(runs)} runs of the held-out budget(s) "
                     f"{', '.join(num(b) for b in sorted(runs['budget'].unique()))} with mean error "
                     f"{num(test.loss_mean_ape)}% (max {num(test.loss_max_ape)}%)")  # fmt: skip
    for b in test.held_out:
        if b.observed_L_star is None or b.approach2_L_star is None:
            continue
        axes.plot([b.observed_L_star], [b.approach2_L_star], "s", color=APPROACHES["approach2"][1], markersize=6,
                  label=f"held-out vertex L*, Approach 2 (C = {num(b.budget)})")  # fmt: skip
        points += [b.observed_L_star, b.approach2_L_star]
        parts.append(f"Approach 2's L* at {num(b.budget)} is {nats(b.approach2_L_star)} vs the vertex "
                     f"{nats(b.observed_L_star)} ({change(b.approach2_L_star, b.observed_L_star)})")  # fmt: skip
    return parts


def lr(data: ReportData) -> Drawing:
    """Loss vs LR per size (best batch at each LR), each size's fitted optimum marked."""
    hparams = data.fit.hparams
    if hparams is None:
        raise Skipped("no LR sweep: plan one with sweep=lrbatch")
    runs, _ = proxies(data.runs, data.config.fit.include_targets)
    runs = runs[grid_runs(runs)]
    colours = budget_colours(data)
    figure, (axes,) = panels()
    markers = "osv^<>"
    lines = []
    for i, g in enumerate(hparams.groups):
        group = runs[(runs["budget"] == g.budget) & (runs["N"] == g.N)]
        colour, marker = colour_of(colours, g.budget), markers[i % len(markers)]
        axes.scatter(group["lr"], group["loss"], color=colour, marker=marker, s=8, alpha=0.35)
        best = group.groupby("lr")["loss"].min()
        axes.plot(
            best.index, best.to_numpy(), marker=marker, color=colour, label=f"N = {num(g.N)}, C = {num(g.budget)}"
        )
        if g.lr is not None:
            axes.plot([g.lr], [g.loss], "D", markersize=7, color=colour, markeredgecolor="black",
                      markerfacecolor="none" if g.lr_edge else colour, gid="lr optimum")  # fmt: skip
        lines.append(f"N = {num(g.N)} at C = {num(g.budget)}: {num(g.lr) if g.lr else 'n/a'}"
                     f"{f' ({g.lr_edge})' if g.lr_edge else ''}")  # fmt: skip
    axes.set(xscale="log", xlabel="peak learning rate", ylabel=LOSS, title="LR sweeps (best batch size at each LR)")
    axes.legend(fontsize=6)
    law = hparams.lr_law
    fitted = (f"eta*(N, D) = {num(law.a)} N^{law.b:.3f} D^{law.c:.3f}" if law
              else f"eta*(N, D) unidentified: {hparams.lr_why}")  # fmt: skip
    caption = f"Optimal LR (diamonds; hollow: at the edge of the grid) per size: {'; '.join(lines)}. {fitted}."
    return Drawing(figure, "Learning-rate sweeps", caption)


def aspect(data: ReportData) -> Drawing:
    """Loss vs aspect ratio d_model / n_layers per width/depth group, the preferred aspect marked."""
    if not data.fit.aspects:
        raise Skipped("no width/depth group (one size at 3+ aspect ratios): plan one with sweep=widthdepth")
    table, colours = fitted_table(data), budget_colours(data)
    figure, (axes,) = panels()
    parts = []
    groups = sorted(widthdepth_groups(table), key=lambda rows: np.log(table["N"].iloc[rows]).mean())  # as the fits
    for rows, fit in zip(groups, data.fit.aspects, strict=True):
        group, colour = table.iloc[rows], colour_of(colours, fit.budget)
        ratio, order = aspects(group), np.argsort(aspects(group))
        loss = size_corrected(group, data.fit.parametric.law if fit.corrected else None)
        if fit.corrected:
            axes.scatter(
                ratio,
                group["loss"],
                s=14,
                facecolors="none",
                edgecolors=colour,
                label="as trained, before the size correction",
            )
        axes.plot(ratio[order], loss[order], "o-", color=colour, label=f"N ~ {num(fit.N)}, C = {num(fit.budget)}")
        if fit.identified:
            axes.axvline(fit.aspect_ratio, color=colour, linestyle="--", linewidth=0.8, gid="aspect optimum")
            if fit.interval:
                axes.axvspan(*fit.interval, color=colour, alpha=0.12, linewidth=0)
            parts.append(f"at C = {num(fit.budget)} (N ~ {num(fit.N)}) the loss is lowest at aspect "
                         f"{with_interval(fit.aspect_ratio, fit.interval)}"
                         f"{' (losses moved to one size by Approach 3)' if fit.corrected else ''}")  # fmt: skip
        else:
            parts.append(f"at C = {num(fit.budget)} (N ~ {num(fit.N)}) unidentified: {fit.unidentified}")
    corrected = any(fit.corrected for fit in data.fit.aspects)
    ylabel = f"{LOSS}{', at the group mean size' if corrected else ''}"
    axes.set(xscale="log", xlabel="aspect ratio d_model / n_layers", ylabel=ylabel, title="Width vs depth")
    axes.legend()
    return Drawing(figure, "Width vs depth", "Preferred aspect (dashed, 95% band): " + "; ".join(parts) + ".")
