"""The `sweep` command: parse, call sweep.api (through sweep.Sweep for its stages), print. No logic of its own."""

from __future__ import annotations

import errno
import os
import sys
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Annotated

import typer

from models.config import DataError
from sweep import api
from sweep.config import Executor
from sweep.errors import UserError
from sweep.export import ExportFormat
from sweep.fit.errors import FitError
from sweep.handle import Sweep
from sweep.render import (
    console,
    emit_json,
    fit_progress,
    print_backtest,
    print_comparison,
    print_curve_backtest,
    print_export,
    print_fit,
    print_import,
    print_launch,
    print_next_wave,
    print_plan,
    print_plan_cost,
    print_proposal,
    print_report,
    print_report_pointer,
    print_status,
    print_target_launch,
    print_targets,
    train_progress,
)

app = typer.Typer(
    rich_markup_mode=None,
    help="Plan, launch, collect and fit scaling-law sweeps of small proxy models; propose the next run.",
)

OVERRIDES = typer.Argument(None, help="Hydra overrides, e.g. sweep=smoke sweep.budgets=[1e11,3e11] launcher=slurm")
SWEEP_DIR = typer.Argument(..., help="A sweep directory made by `sweep plan`.")
JSON = typer.Option(False, "--json", help="Print exactly one JSON document on stdout instead of tables.")
DEFAULT_OUT = Path("sweeps/default")
MAX_PATH_BYTES, MAX_NAME_BYTES = 4095, 255  # Linux's PATH_MAX (less the NUL) and NAME_MAX


def writable_dir(path: Path) -> Path:
    """Callback of --out and --into: refuse at once a path no directory can be made at."""
    length = len(os.fsencode(path.absolute()))
    if length > MAX_PATH_BYTES:
        raise typer.BadParameter(f"the path is {length} bytes long; the system allows {MAX_PATH_BYTES}")
    for name in path.parts:
        if len(os.fsencode(name)) > MAX_NAME_BYTES:
            raise typer.BadParameter(
                f"the name {name[:20]}... is {len(os.fsencode(name))} bytes long; the system allows {MAX_NAME_BYTES}"
            )
    for existing in (path, *path.parents):
        try:
            if existing.is_dir():
                return path
            if existing.exists():
                raise typer.BadParameter(f"{existing} is a file, not a directory; choose another path")
        except OSError as exc:
            raise typer.BadParameter(f"{existing}: {exc.strerror or exc}") from None
    return path


EXECUTOR = typer.Option(None, "--executor", help="Where runs go (default: launcher.executor of the config).")


@app.command()
def plan(
    overrides: list[str] = OVERRIDES,
    out: Path = typer.Option(DEFAULT_OUT, "--out", help="Sweep directory to write (or extend).", callback=writable_dir),
    as_json: bool = JSON,
) -> None:
    """Compose the config, expand the grid, write the sweep directory and print the plan.

    Example: sweep plan sweep=smoke --out sweeps/smoke
    """
    sweep = Sweep.plan(overrides or [], out)
    runs = sweep.planned
    cost = api.PlanCost.of(runs)
    if as_json:
        emit_json({"sweep": str(sweep.path), "runs": [r.row() for r in runs], **asdict(cost)})
        return
    print_plan(runs, f"plan: {len(runs)} runs in {sweep.path}")
    if cost.trunks:
        print_plan_cost(cost)
    console.print(f"next: sweep launch {sweep.path}")


SEEDS = typer.Option(None, "--seeds", help="Train the target once per seed, e.g. 0,1 (default: the proposal's own).")


def seed_list(text: str | None) -> list[int] | None:
    """--seeds "0,1" -> [0, 1]."""
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise UserError(f"--seeds {text!r} is not a comma-separated list of seeds, e.g. 0,1") from None


@app.command()
def launch(
    sweep_dir: Path = SWEEP_DIR,
    executor: Executor = EXECUTOR,
    retry_failed: bool = typer.Option(
        False, "--retry-failed", help="Also resubmit failed and diverged runs (up to launcher.max_attempts)."
    ),
    proposal: Path = typer.Option(
        None, "--proposal", help="Launch the target run of this proposal (a YAML written by `sweep propose`) only."
    ),
    seeds: str = SEEDS,
    as_json: bool = JSON,
) -> None:
    """Submit every planned run that is not done, queued or running, and return at once.

    With --proposal: add the proposal's target run to the plan, once per seed, and submit those runs
    only, the same way. A target is never fitted; once trained, `sweep propose` shows it beside the
    proposal's prediction.
    Examples: sweep launch sweeps/smoke --executor local  |  sweep launch sweeps/smoke --proposal
    sweeps/smoke/proposals/target-C1e12.yaml --seeds 0,1
    """
    if proposal is None:
        if seeds is not None:
            raise UserError("--seeds applies to a target's launch: give --proposal FILE too")
        report = api.launch(sweep_dir, executor, retry_failed)
        if as_json:
            emit_json(launch_json(report))
        else:
            print_launch(report, sweep_dir)
        return
    launched = api.launch_proposal(sweep_dir, proposal, seed_list(seeds), executor, retry_failed)
    if as_json:
        emit_json(target_launch_json(launched))
    else:
        print_target_launch(launched, sweep_dir)


def launch_json(report: api.LaunchReport) -> dict:
    return {"submitted": report.submitted, "skipped": report.skipped, "jobs": report.job_ids}


def target_launch_json(launched: api.TargetLaunch) -> dict:
    targets = [{"seed": seed, "run_id": run_id} for seed, run_id in launched.run_ids.items()]
    return {"proposal_id": launched.proposal_id, "targets": targets, **launch_json(launched.report)}


def show_states(states, as_json: bool, workers: list[int] | None = None) -> None:
    """`workers`: pids of the sweep's local-queue workers, shown when given."""
    if as_json:
        emit_json({"runs": [vars(s) for s in states], **({"local_workers": workers} if workers is not None else {})})
        return
    print_status(states)
    if workers:
        console.print(f"local queue: {len(workers)} workers running (pids {', '.join(map(str, workers))})")


@app.command()
def status(sweep_dir: Path = SWEEP_DIR, as_json: bool = JSON) -> None:
    """Count the sweep's runs by state and list them.

    Example: sweep status sweeps/smoke
    """
    sweep = Sweep.open(sweep_dir)
    show_states(sweep.run_states(), as_json, sweep.local_workers())


@app.command()
def wait(sweep_dir: Path = SWEEP_DIR, as_json: bool = JSON) -> None:
    """Wait, with a progress bar, until no run of the sweep is queued or running.

    Example: sweep wait sweeps/smoke
    """
    show_states(api.wait(sweep_dir, show_progress=not as_json), as_json)


@app.command()
def cancel(sweep_dir: Path = SWEEP_DIR, as_json: bool = JSON) -> None:
    """Cancel the jobs of every queued or running run (they are recorded as failed).

    Example: sweep cancel sweeps/smoke
    """
    cancelled = api.cancel(sweep_dir)
    if as_json:
        emit_json({"cancelled": cancelled})
        return
    console.print(f"cancelled {len(cancelled)} runs; `sweep launch --retry-failed {sweep_dir}` resubmits them")


@app.command()
def collect(
    sweep_dir: Path = SWEEP_DIR,
    rebuild: bool = typer.Option(
        False, "--rebuild", help="Move results.db aside and make it again from the run directories (if corrupt)."
    ),
    as_json: bool = JSON,
) -> None:
    """Ingest the run directories into results.db (idempotent; bad files are reported and skipped).

    Example: sweep collect sweeps/smoke  |  sweep collect --rebuild sweeps/smoke
    """
    report = Sweep.open(sweep_dir).collect(rebuild)
    if as_json:
        emit_json({"ingested": report.ingested, "skipped": report.skipped})
    else:
        done = sum(1 for state in report.ingested.values() if state == "done")
        console.print(f"ingested {len(report.ingested)} runs ({done} done) into {sweep_dir / 'results.db'}")
    if report.skipped:
        skipped = "; ".join(f"{run_id}: {why}" for run_id, why in report.skipped.items())
        raise UserError(f"skipped {len(report.skipped)} run directories, ingested the rest: {skipped}")


SOURCE = typer.Argument(
    ...,
    metavar="SOURCE",
    help="A collected sweep directory, or a CSV file of runs (N, loss, and D or C; see the CSV options).",
)
NCol = Annotated[str, typer.Option("--n-col", help="CSV column of parameters.")]
DCol = Annotated[str, typer.Option("--d-col", help="CSV column of training tokens ('' to read C only).")]
CCol = Annotated[str, typer.Option("--c-col", help="CSV column of training FLOPs ('' to read D only); C = 6 N D.")]
LossCol = Annotated[str, typer.Option("--loss-col", help="CSV column of final loss.")]
BudgetCol = Annotated[
    str, typer.Option("--budget-col", help="CSV column grouping runs into budgets (default: C to 2 digits).")
]
DropHighestLoss = Annotated[
    int, typer.Option("--drop-highest-loss", min=0, help="Leave out the CSV's K highest-loss rows (Epoch drop 5).")
]


def csv_columns(n_col: str, d_col: str, c_col: str, loss_col: str, budget_col: str, drop: int, name_col: str = ""):
    return api.CsvColumns(n_col, d_col, c_col, loss_col, budget_col, name_col, drop)


@app.command()
def fit(
    source: Path = SOURCE,
    overrides: list[str] = OVERRIDES,
    n_col: NCol = "N",
    d_col: DCol = "D",
    c_col: CCol = "C",
    loss_col: LossCol = "loss",
    budget_col: BudgetCol = "",
    drop_highest_loss: DropHighestLoss = 0,
    as_json: bool = JSON,
) -> None:
    """Fit Approaches 1-3 and the forms of fit.forms, with bootstrap intervals next to every number.

    A sweep directory's fit is also written to it (fits/fit.json, the store); a CSV file's is only
    printed. Approach 1 needs training curves, so it is fitted for sweep directories, not CSV files.
    Examples: sweep fit sweeps/smoke  |  sweep fit runs.csv --c-col flops fit.bootstrap=500
    """
    columns = csv_columns(n_col, d_col, c_col, loss_col, budget_col, drop_highest_loss)
    with fit_progress(show=not as_json) as progress:
        report = api.fit_source(source, columns, overrides, progress)
    if as_json:
        emit_json(report.to_dict())
        return
    print_fit(report)
    if not api.is_csv(source):
        print_report_pointer(source)


@app.command()
def compare(
    sweeps: list[str] = typer.Argument(
        ...,
        metavar="SWEEP_DIR",
        help="Sweep directories, the baseline first, then fit.* overrides for every sweep, e.g. fit.bootstrap=500",
    ),
    compute: list[float] = typer.Option(
        None,
        "--compute",
        help="A target compute in FLOPs counted as 6ND, as the frontiers count it; repeat for more (default: "
        "powers of ten from the smallest run's 6ND up to 1000x the largest's).",
    ),  # fmt: skip
    shared_e: bool = typer.Option(
        False, "--shared-e", help="Fit the sweeps jointly with one irreducible loss E (same data, same floor)."
    ),
    as_json: bool = JSON,
) -> None:
    """How much compute each sweep's change is worth over the first sweep's, with 95% intervals.

    Fits each sweep's Approach 3 and, per target compute: each sweep's compute-optimal loss; the
    effective-compute multiplier (the compute the baseline needs to reach the sweep's loss, over C;
    > 1: the change helps) and whether its interval excludes 1; and the compute where the two
    frontiers cross, if they do. Intervals pair bootstrap refits, runs resampled within each sweep.
    Recorded in every sweep's store; drawn into the baseline's report (`sweep report`).
    Examples: sweep compare sweeps/gelu sweeps/swiglu  |  sweep compare sweeps/a sweeps/b sweeps/c --shared-e
    --compute 1e15 --compute 1e17  |  sweep compare sweeps/a sweeps/b fit.bootstrap=1000
    """
    paths = [Path(s) for s in sweeps if not is_override(s)]
    overrides = [s for s in sweeps if is_override(s)]
    with fit_progress(show=not as_json) as progress:
        result = api.compare(paths, overrides, compute or None, shared_e, progress)
    figure = {"figure": str(result.figure) if result.figure else None}
    emit_json({**result.comparison.to_dict(), **figure}) if as_json else print_comparison(result)


def is_override(argument: str) -> bool:
    """A Hydra override (key=value), not a sweep directory (which may hold '=' in its name, if it exists)."""
    return "=" in argument and not Path(argument).exists()


@app.command()
def backtest(
    source: Path = SOURCE,
    overrides: list[str] = OVERRIDES,
    holdout_top: int = typer.Option(2, "--holdout-top", help="How many of the largest budgets to hold out."),
    n_col: NCol = "N",
    d_col: DCol = "D",
    c_col: CCol = "C",
    loss_col: LossCol = "loss",
    budget_col: BudgetCol = "",
    drop_highest_loss: DropHighestLoss = 0,
    curves: bool = typer.Option(
        False,
        "--curves",
        help="Backtest the curve law instead: each run's final loss from the curves of the "
        "other runs of its shape (--holdout-top does not apply).",
    ),  # fmt: skip
    as_json: bool = JSON,
) -> None:
    """Fit on all but the largest budgets; report how well that fit predicts the held-out runs.

    Errors: loss of every held-out run (Approach 3), and N*, L* at each held-out budget against that
    budget's own IsoFLOP vertex (Approaches 2 and 3). With --curves: the curve law's error per run.
    Examples: sweep backtest sweeps/demo --holdout-top 1  |  sweep backtest runs.csv --holdout-top 2  |
    sweep backtest sweeps/demo --curves
    """
    if curves:
        result = api.curve_backtest(source, overrides)
        emit_json(result.to_dict()) if as_json else print_curve_backtest(result)
        return
    columns = csv_columns(n_col, d_col, c_col, loss_col, budget_col, drop_highest_loss)
    with fit_progress(show=not as_json) as progress:
        result = api.backtest_source(source, columns, overrides, holdout_top, progress)
    targets = [] if api.is_csv(source) else api.trained_targets(source)
    if as_json:
        emit_json({**result.to_dict(), "trained_targets": [t.to_dict() for t in targets]})
        return
    print_backtest(result)
    print_targets(targets)


@app.command("import")
def import_(
    csv: Path = typer.Argument(
        None, help="A CSV of finished runs: N, loss, and D or C (renamed with the options). Or give --wandb."
    ),
    wandb: str = typer.Option(
        None,
        "--wandb",
        metavar="ENTITY/PROJECT",
        help="Import a W&B project's finished runs instead: summaries and curves (online only; the options name "
        "the summary's keys).",
    ),
    into: Path = typer.Option(
        ..., "--into", help="The sweep directory to add them to (made if it does not exist).", callback=writable_dir
    ),
    n_col: NCol = "N",
    d_col: DCol = "D",
    c_col: CCol = "C",
    loss_col: LossCol = "loss",
    budget_col: BudgetCol = "",
    drop_highest_loss: DropHighestLoss = 0,
    name_col: str = typer.Option("", "--name-col", help="CSV column naming each run (kept with it)."),
    as_json: bool = JSON,
) -> None:
    """Add results from elsewhere (public or old runs) to a sweep's store, to fit them or mix them in.

    Every row is checked before anything is written. Without --budget-col, runs are grouped into
    budgets by their FLOPs to two significant digits.
    Examples: sweep import chinchilla.csv --into sweeps/chinchilla --n-col "Model Size" --c-col "Training FLOP"  |
    sweep import --wandb my-team/scaling --into sweeps/from-wandb
    """
    if (csv is None) == (wandb is None):
        raise UserError("give either a CSV file or --wandb ENTITY/PROJECT to import from")
    columns = csv_columns(n_col, d_col, c_col, loss_col, budget_col, drop_highest_loss, name_col)
    report = api.import_csv(csv, into, columns) if wandb is None else api.import_wandb(wandb, into, columns)
    if as_json:
        emit_json({"sweep_dir": str(report.sweep_dir), "rows": report.rows, "new": report.new,
                   "budgets": report.budgets.to_dict("records"), "skipped": report.skipped})  # fmt: skip
        return
    print_import(report)


@app.command()
def propose(
    sweep_dir: Path = SWEEP_DIR,
    overrides: list[str] = OVERRIDES,
    compute: float = typer.Option(None, "--compute", help="Target FLOPs (default: target_multiplier x largest)."),
    hparams_from: Path = typer.Option(
        None, "--hparams-from", help="A sweep=lrbatch directory whose fitted LR/batch laws set the target's."
    ),
    and_launch: bool = typer.Option(
        False, "--launch", help="Then launch the proposed target (as `sweep launch --proposal`)."
    ),
    seeds: str = SEEDS,
    executor: Executor = EXECUTOR,
    next_wave: bool = typer.Option(
        False,
        "--next-wave",
        help="Plan and print the proxies that --budget-flops buy which most narrow the target's 95% interval "
        "(`sweep launch DIR` trains them); the target's proposal is written as without it.",
    ),
    budget_flops: float = typer.Option(None, "--budget-flops", help="FLOPs the --next-wave may spend, e.g. 1e13."),
    as_json: bool = JSON,
) -> None:
    """Fit, then propose the compute-optimal run at --compute: shape, tokens, LR, batch, predicted loss.

    Writes proposals/<id>.yaml; `sweep launch DIR --proposal` that file (or --launch here) submits
    the run it names, and `sweep train --config` trains it in the foreground. That run is a target
    (role=target): left out of later fits, and shown here beside this prediction once trained. The
    approach to trust is recommended from a backtest on the sweep's own top budget.
    A fit without a usable optimum falls back to Approach 2, else to the best run, and says why.
    With --next-wave --budget-flops F, plans the runs within F FLOPs that most narrow the 95% interval of
    the target's predicted loss instead, and prints the interval now, the expected one after, the cost.
    Examples: sweep propose sweeps/smoke --compute 1e13  |  sweep propose sweeps/smoke --launch --seeds 0,1
    """
    api.check_compute(compute)
    if next_wave or budget_flops is not None:
        if and_launch or seeds is not None or executor is not None or hparams_from is not None:
            raise UserError("--launch, --seeds, --executor and --hparams-from apply to the target; with --next-wave "
                            f"launch the wave with `sweep launch {sweep_dir}`")  # fmt: skip
        propose_wave(sweep_dir, overrides, compute, next_wave, budget_flops, as_json)
        return
    if not and_launch and (seeds is not None or executor is not None):
        raise UserError("--seeds and --executor apply to the target's launch: give --launch too")
    chosen_seeds = seed_list(seeds)
    api.check_launch_options(chosen_seeds, executor)
    with fit_progress(show=not as_json) as progress:
        sweep = Sweep.open(sweep_dir)
        proposal = sweep.propose(compute, overrides, hparams_from, progress)
    yaml_path = sweep.proposal_file(proposal)
    launched = api.launch_proposal(sweep_dir, yaml_path, chosen_seeds, executor) if and_launch else None
    targets = sweep.trained_targets()
    if as_json:
        launch_payload = {"launch": target_launch_json(launched)} if launched else {}
        emit_json({**proposal.to_dict(), "config": str(yaml_path), "trained_targets": [t.to_dict() for t in targets],
                   **launch_payload})  # fmt: skip
        return
    print_proposal(proposal, yaml_path, sweep_dir)
    print_targets(targets)
    print_report_pointer(sweep_dir)
    if launched:
        print_target_launch(launched, sweep_dir)


def propose_wave(
    sweep_dir: Path, overrides: list[str], compute: float | None, next_wave: bool, budget_flops: float | None,
    as_json: bool,
) -> None:  # fmt: skip
    if not next_wave:
        raise UserError("--budget-flops is the next wave's allowance: give --next-wave too")
    if budget_flops is None:
        raise UserError("--next-wave needs --budget-flops F, the FLOPs the wave may spend (e.g. 1e13)")
    with fit_progress(show=not as_json) as progress:
        wave = api.propose_next_wave(sweep_dir, budget_flops, compute, overrides, progress)
    if as_json:
        emit_json(wave.to_dict())
        return
    print_next_wave(wave, sweep_dir)


@app.command()
def train(
    overrides: list[str] = OVERRIDES,
    config: Path = typer.Option(None, "--config", help="A config YAML, e.g. one written by `sweep propose`."),
    out: Path = typer.Option(
        DEFAULT_OUT, "--out", help="Directory whose runs/<id>/ receives the run.", callback=writable_dir
    ),
    as_json: bool = JSON,
) -> None:
    """Train one run in the foreground (what a job executes).

    Example: sweep train run.d_model=64 run.n_layers=2 run.tokens=2e6 --out sweeps/manual
    """
    with train_progress(show=not as_json) as progress:
        spec, state, result = api.train(overrides or [], out, config, progress)
    if as_json:
        emit_json({"run_id": spec.run_id, "state": state, **result})
    elif state == "done":
        console.print(
            f"run {spec.run_id} done: loss {result['loss']:.4f}, N={result['N']:,}, D={result['D']:,}, "
            f"{result['wall_time_s']:.1f} s, {result['tokens_per_s']:,.0f} tokens/s"
            + (f" (MFU {result['mfu']:.1%})" if result.get("mfu") is not None else "")
            + f" on {result['device']}"
        )
    else:
        elsewhere = state in ("queued", "running")  # claimed by another process: it was not trained here
        why = "being trained by another process; `sweep status` follows it" if elsewhere else result.get("reason", "")
        console.print(f"run {spec.run_id} {state}: {why}")
    if state != "done":
        raise typer.Exit(1)


@app.command()
def report(sweep_dir: Path = SWEEP_DIR, as_json: bool = JSON) -> None:
    """Write DIR/report/index.html: figures, fit tables, the proposal and provenance on one page.

    The page is self-contained (any browser opens it, no network needed): the proposal and its
    warnings, the figures, the fit's tables with intervals, and provenance. Each figure is also
    written beside it as PNG and SVG.

    Example: sweep report sweeps/demo
    """
    with fit_progress(show=not as_json) as progress:
        result = Sweep.open(sweep_dir).report(progress)
    if as_json:
        emit_json(result.to_dict())
        return
    print_report(result)


@app.command()
def export(
    sweep_dir: Path = SWEEP_DIR,
    fmt: ExportFormat = typer.Option(ExportFormat.csv, "--format", help="The files' format."),
    out: Path = typer.Option(
        ..., "--out", help="Directory to write the files to (made if absent).", callback=writable_dir
    ),
    as_json: bool = JSON,
) -> None:
    """Write the store's runs, curves, fits and proposals as files (csv, parquet or json).

    OUT/runs.csv, curves.csv, fits.csv and proposals.csv (or .parquet, .json). Fits and proposals keep
    their JSON, and each scalar in it gets a column too (params.alpha, ...). A sweep with nothing
    collected gives the tables empty. json: a list of records per table.

    Example: sweep export sweeps/smoke --format parquet --out exports/smoke
    """
    tables = Sweep.open(sweep_dir).export(fmt, out)
    if as_json:
        emit_json({"format": fmt.value, "out": str(out),
                   "tables": [{"name": t.name, "path": str(t.path), "rows": t.rows} for t in tables]})  # fmt: skip
        return
    print_export(tables, out, fmt)


@app.command()
def run(
    overrides: list[str] = OVERRIDES,
    out: Path = typer.Option(DEFAULT_OUT, "--out", help="Sweep directory.", callback=writable_dir),
    executor: Executor = EXECUTOR,
    as_json: bool = JSON,
) -> None:
    """Plan, launch, wait, collect, fit and propose in one go; extend budgets whose minimum is at an edge.

    Example: sweep run sweep=smoke --out sweeps/smoke
    """

    def show_wave(wave: int, added: list[api.PlannedRun]) -> None:
        if progress is not None:
            progress.stop()  # the last wave's fit is over; its bar would share the terminal with training's
        if as_json:
            return
        if wave == 0:
            print_plan(added, f"plan: {len(added)} runs in {out}")
            return
        bought = (
            "bought with sweep.next_wave_flops"
            if api.sweep_config(out).sweep.next_wave_flops
            else "where a budget's minimum was at an edge"
        )
        console.print(f"wave {wave}: {len(added)} more runs {bought}")
        print_plan(added, f"wave {wave}")

    with fit_progress(show=not as_json) as progress:
        result = api.run(
            overrides or [], out, executor, show_progress=not as_json, on_wave=show_wave, progress=progress
        )
    if as_json:
        payload = {**result.proposal.to_dict(), "config": str(result.proposal_file)}
        emit_json({"fit": result.report.to_dict(), "proposal": payload, "stopped": result.stopped})
        return
    print_status(api.status(out))
    print_fit(result.report)
    print_proposal(result.proposal, result.proposal_file, out)
    if result.stopped:
        console.print(f"[yellow]note:[/] {result.stopped}")
    print_report_pointer(out)


# Errors of the file system that the user can fix, with what to do. Files already written stay
# whole whatever happens: each is written to a temporary name and renamed into place.
WHAT_TO_DO = {
    errno.ENOSPC: "free space and run the command again",
    errno.EDQUOT: "free space (a quota is full) and run the command again",
    errno.EROFS: "the file system is read-only: use a writable path",
    errno.EACCES: "fix the permissions or use another path",
    errno.EPERM: "fix the permissions or use another path",
    errno.ENAMETOOLONG: "use a shorter path",
    errno.ELOOP: "a symbolic link in the path loops: fix it",
    errno.ENOTDIR: "a part of the path is a file, not a directory",
    errno.EISDIR: "a directory stands where a file is needed",
}


def show_version(value: bool) -> None:
    if value:
        typer.echo(f"sweep {metadata.version('scaling-sweep')}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    version: bool = typer.Option(
        False, "--version", callback=show_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())


def fail(message: str) -> None:
    """The error contract: one line on stderr, exit code 2."""
    line = " ".join(part.strip() for part in message.splitlines() if part.strip())
    visible = "".join(c if c.isprintable() else repr(c)[1:-1] for c in line)  # no terminal escapes from input
    sys.stderr.write(f"error: {visible}\n")
    sys.exit(2)


def main() -> None:
    try:
        code = app(prog_name="sweep", standalone_mode=False)
    except (UserError, FitError, DataError) as exc:
        fail(str(exc))
    except OSError as exc:
        if exc.errno not in WHAT_TO_DO:
            raise
        name = str(exc.filename or "")
        where = f" ({name if len(name) <= 120 else name[:100] + '...'})" if name else ""
        fail(f"{exc.strerror}{where}: {WHAT_TO_DO[exc.errno]}; files already written are whole")
    # Usage errors (an unknown option, a missing argument, a bad value): Typer raises these from its
    # own copy of click, so they are Typer's exceptions, never click's.
    except typer.TyperException as exc:
        ctx = getattr(exc, "ctx", None)
        fail(exc.format_message() + (f" (see {ctx.command_path} --help)" if ctx is not None else ""))
    except typer.Abort:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)  # a command's typer.Exit(code) comes back as its return value


if __name__ == "__main__":
    main()
