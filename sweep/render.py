"""How the CLI shows results: rich tables and lines for people, one JSON document for machines."""

from __future__ import annotations

import json
import math
import shlex
import shutil
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sweep.api import PlanCost, PlannedRun, TargetLaunch
from sweep.fit.curvelaw import CurveBacktest
from sweep.fit.report import FitReport

if TYPE_CHECKING:  # not imported at run time: they would slow every command's start
    from rich.progress import Progress, TaskID

    from sweep.compare import CompareResult
    from sweep.export import ExportedTable, ExportFormat
    from sweep.fit.compare import Crossover, Estimate
    from sweep.launch.executors import LaunchReport
    from sweep.nextwave import NextWave
    from sweep.propose import Proposal, TargetCheck
    from sweep.report.build import ReportResult

# Outside a terminal rich would wrap tables at 80 columns; logs and pipes get a wider page.
WIDTH = shutil.get_terminal_size((140, 40)).columns
console = Console(width=WIDTH)


def emit_json(payload) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=_jsonable) + "\n")


def _jsonable(value):
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def num(x: float | None, digits: int = 3) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}g}"


def with_interval(x: float, band: tuple[float, float] | None, digits: int = 4) -> str:
    return f"{num(x, digits)} [{num(band[0], digits)}, {num(band[1], digits)}]" if band else num(x, digits)


def aspect_line(aspect: dict) -> str:
    """A width/depth fit (AspectFit's fields) in one line: the aspect, its interval and its evidence."""
    size = "size-corrected by Approach 3" if aspect["corrected"] else "not size-corrected (no Approach 3)"
    return (
        f"{with_interval(aspect['aspect_ratio'], aspect['interval'], 3)} from {aspect['n_runs']} runs at "
        f"C = {num(aspect['budget'])}, N ~ {num(aspect['N'])}, aspects {', '.join(num(a) for a in aspect['aspects'])} "
        f"({size})"
    )


# --- printing ------------------------------------------------------------------------------------


def print_plan(runs: list[PlannedRun], title: str) -> None:
    shared = any(r.spec.role == "trunk" for r in runs)
    table = Table(title=title)
    columns = ("run id", "budget C", "N", "D", "d_model", "layers", "heads", "batch", "steps", "tokens/param")
    for column in (*columns, *(["branch of", "from step"] if shared else [])):
        table.add_column(column, justify="right")
    for r in runs:
        row = r.row()
        trunk = r.spec.role == "trunk"
        cells = [
            row["run_id"], "trunk" if trunk else num(row["budget"]), num(row["N"]), num(row["D"]),
            str(row["d_model"]), str(row["n_layers"]), str(row["n_heads"]), str(row["batch_size"]),
            str(row["steps"]), "" if trunk else f"{row['tokens_per_param']:.0f}",
        ]  # fmt: skip
        if shared:
            cells += [row["parent"], str(row["branch_step"]) if row["parent"] else ""]
        table.add_row(*cells)
    console.print(table)


def print_plan_cost(cost: PlanCost) -> None:
    console.print(
        f"planned FLOPs: {num(cost.planned_flops)} as {cost.trunks} trunks and {cost.branches} decay branches; "
        f"{num(cost.independent_flops)} as {cost.branches} independent runs "
        f"({cost.independent_flops / cost.planned_flops:.2f}x)"
    )


def print_fit(report: FitReport) -> None:
    if report.parametric:
        law = report.parametric.law
        bands = report.parameter_intervals()
        table = Table(
            title="Approach 3: L = E + A/N^alpha + B/D^beta",
            caption=f"{report.n_runs} runs, N counted {report.counting}",
        )
        table.add_column("parameter")
        table.add_column("value [95% bootstrap interval]", justify="right")
        for name in ("E", "A", "B", "alpha", "beta"):
            table.add_row(name, with_interval(getattr(law, name), bands[name]))
        console.print(table)
    payload = report.to_dict()  # every interval, computed once
    for key, name in (("approach1", "Approach 1 (envelope)"), ("approach2", "Approach 2 (IsoFLOP)")):
        if key in payload:
            laws = []
            for symbol in ("N", "D", "L"):
                law = payload[key][f"{symbol}_star"]
                exponent = with_interval(law["exponent"], law["exponent_interval"], 3)
                laws.append(f"{symbol}*(C) = {law['coefficient']:.3g} C^{exponent}")
            console.print(f"{name}: " + ",  ".join(laws))
    if report.isoflop:
        table = Table(title="Approach 2: per-budget parabolas in log N")
        for column in ("budget C", "runs", "N*", "D*", "L*", "used"):
            table.add_column(column, justify="right")
        for b in payload["approach2"]["budgets"]:
            table.add_row(
                num(b["budget"]), str(b["n_runs"]), with_interval(b["N_star"], b["N_star_interval"], 3),
                with_interval(b["D_star"], b["D_star_interval"], 3), with_interval(b["L_star"], b["L_star_interval"]),
                vertex_used(b),
            )  # fmt: skip
        console.print(table)
    for name, form in payload.get("forms", {}).items():
        terms = [with_interval(form[k], form["intervals"][k]) for k in ("E", "A", "alpha")]
        console.print(f"{name}: {form['form']} with E = {terms[0]}, A = {terms[1]}, alpha = {terms[2]}")
    other = report.other_counting
    if "approach3" in other or "approach2" in other:
        a3, a2 = other.get("approach3"), other.get("approach2")
        parts = [f"Approach 3 E={a3['E']:.4g}, alpha={a3['alpha']:.4g}, beta={a3['beta']:.4g}"] if a3 else []
        parts += [f"Approach 2 N*(C) ~ C^{a2['N_star_exponent']:.3f}"] if a2 else []
        console.print(f"with N counted {other['counting']} (point estimates; fit.counting={other['counting']} "
                      f"for intervals): " + "; ".join(parts))  # fmt: skip
    if "hparams" in payload:
        print_hparams(payload["hparams"])
    if (aspect := report.preferred_aspect()) and aspect.identified:
        console.print(f"width/depth: preferred aspect ratio d_model/n_layers = {aspect_line(vars(aspect))}")
    for approach, why in report.errors.items():
        console.print(f"[yellow]{approach} not fitted:[/] {why}")
    for note in report.notes():
        console.print(f"[yellow]note:[/] {note}")


def vertex_used(budget: dict) -> str:
    """Whether Approach 2's power laws used a budget's vertex (a row of FitReport.budget_vertices), and why not."""
    if budget["centred"]:
        return "yes"
    if not budget["edge"]:
        return "no: vertex outside the sizes"
    return f"no: minimum at the {'smallest' if budget['edge'] == 'below' else 'largest'} size"


def print_hparams(payload: dict) -> None:
    """The LR x batch grid: each size's optimal LR and batch, and their laws."""
    table = Table(
        title=f"LR x batch: optimum per size [95% interval of those of the {payload['bootstrap']} bootstrap refits "
        "that stay in the grid]"
    )
    for column in ("budget C", "N", "D", "runs", "best loss", "LR*", "batch*"):
        table.add_column(column, justify="right")
    for g in payload["groups"]:
        table.add_row(num(g["budget"]), num(g["N"]), num(g["D"]), str(g["n_runs"]), num(g["loss"], 4),
                      optimum_cell(g, "lr"), optimum_cell(g, "batch"))  # fmt: skip
    console.print(table)
    for key, names in (("lr_law", ("a", "b", "c")), ("batch_law", ("coefficient", "exponent"))):
        law = payload[key]
        if "unidentified" in law:
            console.print(f"{law['form']}: [yellow]unidentified[/] ({law['unidentified']})")
            continue
        terms = ", ".join(f"{k} = {with_interval(law[k], law['intervals'][k], 3)}" for k in names)
        console.print(f"{law['form']} with {terms}")
    for note in payload["notes"]:
        if "refits dropped" in note:
            console.print(f"[yellow]note:[/] {note}")


def optimum_cell(group: dict, key: str) -> str:
    """A group's optimum LR or batch with its interval, and why it is not trusted where it is not."""
    why = group[f"{key}_edge"]
    if group[key] is None:
        return f"- ({why})"
    if why:
        return f"{num(group[key])} (untrusted: {why})"
    return with_interval(group[key], group[f"{key}_interval"], 3) + f" ({group[f'{key}_refits']} in grid)"


def print_backtest(result) -> None:
    console.print(
        f"fitted on {result.n_fitted_runs} runs in {len(result.fitted_budgets)} budgets "
        f"(up to C = {num(max(result.fitted_budgets))}); held out {result.n_held_out_runs} runs in "
        f"{len(result.held_out)} budgets"
    )
    if result.loss_mean_ape is not None:
        console.print(
            f"Approach 3, loss of the held-out runs: mean abs error {result.loss_mean_ape:.2f}%, "
            f"max {result.loss_max_ape:.2f}%"
        )
    table = Table(title="held-out budgets: predicted vs observed (the budget's own vertex)")
    for column in ("budget C", "runs", "observed N*", "A2 N*", "A3 N*", "observed L*", "A2 L*", "A3 L*"):
        table.add_column(column, justify="right")
    for b in result.held_out:
        e = b.errors()

        def cell(value, error):
            return num(value, 4) + (f" ({100 * error:+.1f}%)" if error is not None else "")

        table.add_row(
            num(b.budget), str(b.n_runs), num(b.observed_N_star), cell(b.approach2_N_star, e["approach2_N_star"]),
            cell(b.approach3_N_star, e["approach3_N_star"]), num(b.observed_L_star, 4),
            cell(b.approach2_L_star, e["approach2_L_star"]), cell(b.approach3_L_star, e["approach3_L_star"]),
        )  # fmt: skip
    console.print(table)
    if any(b.observed_N_star is None for b in result.held_out):
        console.print("observed '-': the budget has fewer than 3 sizes or its minimum is at an edge (no vertex)")
    for approach, why in result.report.errors.items():
        console.print(f"[yellow]{approach} not fitted:[/] {why}")


def print_curve_backtest(result: CurveBacktest) -> None:
    table = Table(title="curve law: each run's final loss from the curves of the other runs of its shape")
    for column in ("shape", "run id", "tokens", "schedule", "observed", "predicted", "baseline"):
        table.add_column(column, justify="right")

    def cell(value: float | None, error: float | None) -> str:
        return num(value, 4) + (f" ({100 * error:+.2f}%)" if error is not None else "")

    for c in result.checks:
        table.add_row(f"{c.d_model}x{c.n_layers}", c.run_id, num(c.tokens), c.schedule, num(c.observed, 4),
                      cell(c.predicted, c.error), cell(c.baseline, c.baseline_error))  # fmt: skip
    console.print(table)
    (mean, top), (base_mean, base_top) = result.ape(), result.ape(baseline=True)
    if mean is not None:
        console.print(f"curve law: mean abs error {mean:.2f}%, max {top:.2f}%; baseline (the other run of the "
                      f"shape nearest in tokens): mean {base_mean:.2f}%, max {base_top:.2f}%")  # fmt: skip
    for c in result.checks:
        if c.why:
            console.print(f"[yellow]{c.run_id} not predicted:[/] {c.why}")
    for why in result.unchecked:
        console.print(f"[yellow]not backtested:[/] {why}")


def print_proposal(proposal: Proposal, yaml_path: Path, out: Path) -> None:
    s = proposal.shape
    console.print(
        f"[bold]Proposed target run at C = {proposal.compute:.3g} FLOPs[/]: d_model={s['d_model']}, "
        f"n_layers={s['n_layers']}, n_heads={s['n_heads']} (N = {s['N']:,}, N_total = {s['N_total']:,}), "
        f"D = {proposal.tokens:,} tokens in {proposal.steps:,} steps; shape from {proposal.shape_from}"
    )
    console.print(
        f"LR {with_interval(proposal.lr, proposal.lr_interval, 3)} from {proposal.lr_from}; "
        f"batch {with_interval(proposal.batch_size, proposal.batch_interval, 3)} from {proposal.batch_from}"
    )
    if proposal.aspect_from:
        console.print(
            f"aspect ratio from the width/depth runs, not model.aspect_ratio: {aspect_line(proposal.aspect_from)}"
        )
    recommendation = proposal.recommendation
    recommended = recommendation.approach if recommendation else None
    if proposal.predictions:
        table = Table(title="predictions [95% bootstrap interval]", caption="* recommended" if recommended else None)
        for column in ("approach", "N*", "D*", "loss"):
            table.add_column(column, justify="right")
        for p in proposal.predictions:
            table.add_row(
                f"* {p.approach}" if p.approach == recommended else p.approach, with_interval(p.N, p.N_interval, 3),
                with_interval(p.D, p.D_interval, 3), with_interval(p.loss, p.loss_interval, 4),
            )  # fmt: skip
        console.print(table)
    else:
        console.print("[yellow]no predicted loss:[/] no approach could be fitted (see the warnings)")
    if recommended:
        console.print(f"recommended: {recommended}, {recommendation.why}", markup=False)
    for warning in proposal.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    if proposal.next_wave:
        budgets = sorted({w["budget"] for w in proposal.next_wave})
        console.print(f"next wave: {len(proposal.next_wave)} runs extending budgets {', '.join(map(num, budgets))}")
    console.print(f"config: {yaml_path}")
    console.print(f"launch it: sweep launch {out} --proposal {yaml_path}")
    console.print(f"  run {proposal.run_id}, role target: never fitted, checked against this prediction")
    console.print(f"  or in the foreground: sweep train --config {yaml_path} --out {out}")


def print_comparison(result: CompareResult) -> None:
    c = result.comparison
    label = dict(zip(c.sweeps, short_names(c.sweeps), strict=True))
    floor = "one E shared by all" if c.shared_floor else "each its own E"
    table = Table(
        title=escape(f"Effective compute over {c.baseline}: Approach 3, {floor}"),
        caption=escape(f"C counted as 6ND, N {c.counting}; losses are compute-optimal L*(C); x compute = the compute "
                       f"{label[c.baseline]} needs for the sweep's loss at C, over C; [95% intervals of {c.refits} "
                       "paired bootstrap refits]"),
    )  # fmt: skip
    table.add_column("C = 6ND", justify="right")
    for name in c.sweeps:
        table.add_column(escape(f"{label[name]} loss"), justify="right")
    for name in c.sweeps[1:]:
        table.add_column(escape(f"{label[name]} x compute"), justify="right")
        table.add_column("differs", justify="right")
    for target in c.targets:
        losses = [with_interval(v.loss.value, v.loss.interval) for v in target.variants]
        gains = [cell for v in target.variants[1:] for cell in (estimate(v.multiplier), differs(v.multiplier))]
        table.add_row(num(target.compute), *losses, *gains)
    console.print(table)
    for crossing in c.crossovers:
        console.print(crossover_line(crossing, c.baseline, c.searched), markup=False)
    for name, runs, law in zip(c.sweeps, c.n_runs, c.laws, strict=True):
        terms = f"{law.E:.4g} + {law.A:.4g}/N^{law.alpha:.3g} + {law.B:.4g}/D^{law.beta:.3g}"
        console.print(f"{name}: {runs} runs, L = {terms}", markup=False)
    for note in c.notes:
        console.print(f"[yellow]note:[/] {escape(note)}")
    console.print(f"recorded in the store of {', '.join(c.sweeps)} (fits table, approach compare)", markup=False)
    if result.figure:
        console.print(f"figure: {result.figure}; `sweep report {shlex.quote(c.baseline)}` puts it on the page",
                      markup=False)  # fmt: skip
    else:
        print_report_pointer(Path(c.baseline))


def short_names(paths: list[str]) -> list[str]:
    """Each sweep by its directory's name where those are distinct (the table's columns stay narrow)."""
    names = [Path(p).name or p for p in paths]
    return names if len(set(names)) == len(names) else list(paths)


def estimate(e: Estimate) -> str:
    """A multiplier and its interval; inf where the baseline never reaches the loss."""
    return with_interval(e.value, e.interval, 3)


def differs(m: Estimate) -> str:
    """Whether the multiplier's interval excludes 1, and which way."""
    if m.interval is None:
        return "-"
    return "better" if m.interval[0] > 1 else "worse" if m.interval[1] < 1 else "no"


def crossover_line(crossing: Crossover, baseline: str, searched: tuple[float, float]) -> str:
    share = f"{crossing.share:.0%} of refits cross"
    if crossing.compute is not None:
        return (f"{crossing.sweep} crosses {baseline} at C = {estimate(crossing.compute)} ({share}); "
                f"above it {crossing.better_above} is better")  # fmt: skip
    line = f"{crossing.sweep} and {baseline} do not cross between C = {num(searched[0])} and {num(searched[1])}"
    if not crossing.undecided:
        return f"{line}; they are told apart at every compute there ({share})"
    if crossing.undecided == [(0.0, math.inf)]:
        return f"{line}, nor are they told apart anywhere there ({share})"
    return f"{line}; they are not told apart at C {' and '.join(map(compute_range, crossing.undecided))} ({share})"


def compute_range(bounds: tuple[float, float]) -> str:
    low, high = bounds
    if high == math.inf:
        return f"above {num(low)}"
    return f"below {num(high)}" if low == 0 else f"{num(low)} to {num(high)}"


def print_report_pointer(sweep_dir: Path) -> None:
    console.print(f"report: sweep report {shlex.quote(str(sweep_dir))}", markup=False)


def print_report(result: ReportResult) -> None:
    """Where the page is, the figures drawn, and why each of the others was not."""
    names = sorted({path.stem for path in result.figures})
    console.print(f"report: {result.index}", markup=False)
    console.print(f"figures: {len(names)} written beside it as PNG and SVG ({', '.join(names) or 'none'})")
    for name, why in result.skipped.items():
        console.print(f"[yellow]figure {name} skipped:[/] {escape(why)}")


def print_next_wave(wave: NextWave, sweep_dir: Path) -> None:
    """The interval now and expected after the wave, its cost, and its runs in the order chosen."""
    low, high = wave.interval
    console.print(
        f"[bold]Next wave for {wave.proposal_id}[/] (C = {wave.compute:.3g}): Approach 3 predicts "
        f"{wave.loss:.4f}, 95% interval [{low:.4f}, {high:.4f}], width {wave.width:.4f} now"
    )
    if not wave.picks:
        console.print(f"no run added (of {wave.candidates} candidates): {wave.stopped}")
        return
    narrower = f" ({wave.width / wave.expected_width:.2f}x narrower)" if wave.expected_width > 0 else ""
    console.print(
        f"expected width after the wave: {wave.expected_width:.4f}{narrower}; "
        f"cost {wave.cost:.3g} of {wave.allowance:.3g} FLOPs allowed, {len(wave.specs)} runs from "
        f"{wave.candidates} candidates; stopped: {wave.stopped}"
    )
    table = Table(title="next wave, in the order chosen")
    for column in ("run id", "budget C", "kind", "N", "D", "d_model", "layers", "FLOPs", "expected width"):
        table.add_column(column, justify="right")
    for pick in wave.picks:
        row = pick.candidate.row()
        table.add_row(
            ", ".join(row["run_ids"]), num(row["budget"]), row["kind"], num(row["N"]), num(row["D"]),
            str(row["d_model"]), str(row["n_layers"]), num(row["flops"]), f"{pick.expected_width:.4f}",
        )  # fmt: skip
    console.print(table)
    console.print(f"planned; train them: sweep launch {sweep_dir}")


def print_launch(report: LaunchReport, sweep_dir: Path) -> None:
    where = (
        f"to this machine's queue ({len(report.job_ids)} new workers)"
        if report.executor == "local"
        else f"in {len(report.job_ids)} {report.executor} jobs"
    )
    console.print(
        f"submitted {len(report.submitted)} runs {where}; skipped {len(report.skipped)} already done, queued or running"
    )
    if report.submitted:
        console.print(f"follow them: sweep status {sweep_dir}  |  sweep wait {sweep_dir}")


def print_target_launch(launched: TargetLaunch, sweep_dir: Path) -> None:
    """Which target runs of the proposal were submitted, and what became of the others."""
    report = launched.report
    for seed, run_id in launched.run_ids.items():
        state = "submitted" if run_id in report.submitted else f"not submitted: {report.skipped.get(run_id, '-')}"
        console.print(f"target run {run_id} (seed {seed}) of {launched.proposal_id}: {state}")
    print_launch(report, sweep_dir)
    if report.submitted:
        console.print(f"once trained: sweep collect {sweep_dir} && sweep propose {sweep_dir} (predicted vs actual)")


def print_targets(checks: list[TargetCheck]) -> None:
    """Each trained target's loss beside what its proposal predicted."""
    if not checks:
        return
    table = Table(title="trained targets: predicted vs actual loss")
    for column in ("run id", "C", "actual", "approach", "predicted [95%]", "error", "in interval"):
        table.add_column(column, justify="right")
    for check in checks:
        if not check.predictions:
            table.add_row(check.run_id, num(check.compute), num(check.loss, 4), "-", "no proposal recorded", "-", "-")
        errors, covered = check.errors(), check.covered()
        for p in check.predictions:
            inside = {None: "-", True: "yes", False: "no"}[covered[p.approach]]
            table.add_row(
                check.run_id, num(check.compute), num(check.loss, 4), p.approach,
                with_interval(p.loss, p.loss_interval, 4), f"{100 * errors[p.approach]:+.2f}%", inside,
            )  # fmt: skip
    console.print(table)


# --- commands ------------------------------------------------------------------------------------


def print_status(states) -> None:
    counts = {}
    for s in states:
        counts[s.state] = counts.get(s.state, 0) + 1
    console.print("  ".join(f"{state}: {n}" for state, n in sorted(counts.items())) or "no runs")
    table = Table()
    for column in ("run id", "budget C", "state", "reason"):
        table.add_column(column)
    for s in states:
        table.add_row(s.run_id, num(s.budget), s.state, s.reason)
    console.print(table)


def print_import(report) -> None:
    table = Table(title=f"{report.rows} runs grouped into {len(report.budgets)} budgets")
    for column in ("budget C", "runs", "C from", "C to"):
        table.add_column(column, justify="right")
    for row in report.budgets.itertuples():
        table.add_row(num(row.budget), str(row.runs), num(row.C_min), num(row.C_max))
    console.print(table)
    console.print(
        f"imported {report.new} new runs into {report.sweep_dir} ({report.rows - report.new} were already there); "
        f"next: sweep fit {report.sweep_dir}",
        markup=False,
    )
    for run_id, why in report.skipped.items():
        console.print(f"[yellow]skipped {escape(run_id)}:[/] {escape(why)}")


def print_export(tables: list[ExportedTable], out: Path, fmt: ExportFormat) -> None:
    written = ", ".join(f"{t.path.name} ({t.rows} row{'' if t.rows == 1 else 's'})" for t in tables)
    console.print(f"exported {written} to {out} as {fmt}")


# --- progress --------------------------------------------------------------------------------------

PROGRESS_DELAY_S = 1.0  # a fit that ends sooner shows no bar


class FitProgress:
    """A fit's progress (sweep/fit/report.py fit_all's reports: stage, done, total) as a bar on
    stderr: the stage, the bar, done/total and the time the stage has left. The bar appears once a
    fit has run for PROGRESS_DELAY_S (counted from its first report) and is erased by `stop`; a
    report after that starts the next fit's."""

    def __init__(self, terminal: Console | None = None) -> None:
        self.terminal = terminal or Console(stderr=True)
        self.bar: Progress | None = None  # from the first report
        self.task: TaskID | None = None
        self.stage = ""
        self.timer: threading.Timer | None = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.bar is None:  # a fit's first report: its bar appears if the fit still runs after the delay
            self.bar = self._new_bar()
            self.task = self.bar.add_task(stage)
            self.timer = threading.Timer(PROGRESS_DELAY_S, self.bar.start)
            self.timer.daemon = True
            self.timer.start()
        if stage != self.stage:
            self.bar.reset(self.task, description=stage, total=total, completed=done)  # time left: the stage's
            self.stage = stage
        else:
            self.bar.update(self.task, total=total, completed=done)

    def _new_bar(self) -> Progress:
        # Imported here: a fit read from the cache reports nothing, and rich.progress takes a while to import.
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        return Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            console=self.terminal, transient=True,
        )  # fmt: skip

    def stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer.join()  # a bar the timer is starting now is started before it is stopped
        if self.bar is not None:
            self.bar.stop()
        self.bar, self.task, self.timer, self.stage = None, None, None, ""


class TrainProgress:
    """A run's training (TrainOptions.on_step's reports) as a bar on stderr: steps done/total, the loss
    of the last evaluation, tokens/s and the time left. Erased by `stop`."""

    def __init__(self, terminal: Console | None = None) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn("training"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[speed]} tokens/s"), TimeRemainingColumn(),
            console=terminal or Console(stderr=True), transient=True,
        )  # fmt: skip
        self.task = self.bar.add_task("training", total=None, loss="-", speed="-")
        self.bar.start()

    def __call__(self, step: int, total: int, loss: float | None, tokens_per_s: float) -> None:
        shown = {"loss": f"{loss:.4f}"} if loss is not None else {}  # the last one stays until the next eval
        self.bar.update(self.task, completed=step, total=total, speed=f"{tokens_per_s:,.0f}", **shown)

    def stop(self) -> None:
        self.bar.stop()


def fit_progress(show: bool) -> AbstractContextManager[FitProgress | None]:
    """A FitProgress for the fits in the block, stopped at its end; None (nothing is shown) unless
    `show` and stderr is a terminal, so that pipes, logs and captured output never hold a bar."""
    return _terminal_bar(show, FitProgress)


def train_progress(show: bool) -> AbstractContextManager[TrainProgress | None]:
    """A TrainProgress for `sweep train`, shown like fit_progress's bar (on a terminal only)."""
    return _terminal_bar(show, TrainProgress)


@contextmanager
def _terminal_bar(show: bool, make: Callable[[], FitProgress | TrainProgress]) -> Iterator:
    if not (show and sys.stderr.isatty()):
        yield None
        return
    progress = make()
    try:
        yield progress
    finally:
        progress.stop()
