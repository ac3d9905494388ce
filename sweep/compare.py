"""`sweep compare`: sweeps checked to have comparable losses, each fitted as `sweep fit` fits it (from its
saved fits when nothing changed), compared by sweep/fit/compare.py, and the comparison recorded in every
sweep's store (and drawn into the baseline's report when it has one)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from sweep.api import check_compute, finished_runs, fit_cache, is_csv, stored_curves, sweep_config
from sweep.config import Config, DataSource
from sweep.errors import UserError
from sweep.fit.cache import cached_fit_all
from sweep.fit.compare import Comparison, compare_fits
from sweep.fit.report import Progress, approach3_points
from sweep.provenance import origin
from sweep.store import Store
from sweep.sweepdir import SweepDir

MIN_BOOTSTRAP = 40  # below this the 2.5% tails are one or two refits: no interval to speak of


@dataclass(frozen=True)
class CompareResult:
    comparison: Comparison
    figure: Path | None  # the figure drawn into the baseline's report, when it has one


def check_sweeps(paths: list[Path]) -> None:
    if len(paths) < 2:
        raise UserError("compare needs two sweep directories or more, the baseline first: "
                        "sweep compare sweeps/a sweeps/b")  # fmt: skip
    for path in paths:
        if is_csv(path):
            made_by = (f": `sweep import {path} --into sweeps/{Path(path).stem}` makes one of it"
                       if Path(path).suffix.lower() == ".csv" else "")  # fmt: skip
            raise UserError(f"{path} is a file; compare takes sweep directories{made_by}")
    seen: dict[Path, Path] = {}
    for path in paths:
        if (same := seen.setdefault(Path(path).resolve(), path)) is not path:
            raise UserError(f"{same} is given twice (as {same} and {path}); name each sweep once")


def check_overrides(overrides: list[str]) -> None:
    """Only the fit section may change: any other override would describe sweeps that were not trained."""
    for override in overrides:
        key = override.lstrip("+~").split("=", 1)[0]
        if not key.startswith("fit."):
            raise UserError(f"{override}: compare takes fit.* overrides only (applied to every sweep's fit); "
                            "the rest of a sweep's config is how its runs were trained")  # fmt: skip


def tokenization(config: Config) -> str:
    """What one unit of a loss is: a loss per byte and a loss per token of a 50k vocabulary are not comparable."""
    data = config.data
    if data.source == DataSource.text:
        return "bytes (data.source=text)"
    return f"tokens of a {data.vocab_size}-token vocabulary (data.source={data.source.value})"


def check_comparable(names: list[str], configs: list[Config]) -> None:
    base, base_config = names[0], configs[0]
    for name, config in zip(names[1:], configs[1:], strict=True):
        if config.fit.counting != base_config.fit.counting:
            raise UserError(
                f"{name} is fitted with fit.counting={config.fit.counting.value} and {base} with "
                f"{base_config.fit.counting.value}: laws of N counted two ways are not comparable, and its own fits "
                f"count N otherwise than this comparison would; pass fit.counting={base_config.fit.counting.value} "
                "(or the other) to compare every sweep under one counting"
            )
        if tokenization(config) != tokenization(base_config):
            raise UserError(
                f"{name}'s losses are per {tokenization(config)}, {base}'s per {tokenization(base_config)}: "
                "losses over different vocabularies are not comparable; compare sweeps trained on the same one"
            )


def fitted_alike(names: list[str], configs: list[Config]) -> list[str]:
    """Notes for the sweeps whose own fit section differs from the baseline's, which fits them here."""
    base = asdict(configs[0].fit)
    notes = []
    for name, config in zip(names[1:], configs[1:], strict=True):
        if differ := [key for key, value in asdict(config.fit).items() if value != base[key]]:
            notes.append(f"{name}'s own fit section differs from {names[0]}'s ({', '.join(differ)}); every sweep "
                         f"is fitted here with {names[0]}'s")  # fmt: skip
    return notes


def unchecked_units(names: list[str], run_ids: list[list[str]]) -> list[str]:
    """Notes for sweeps holding imported runs, whose vocabulary no config records."""
    return [f"{name} holds imported runs: their loss unit (vocabulary) cannot be checked; compare them only with "
            "sweeps whose losses are per the same tokens" for name, ids in zip(names, run_ids, strict=True)
            if any(run.startswith("import-") for run in ids)]  # fmt: skip


def compare(
    paths: list[Path],
    overrides: list[str] | None = None,
    computes: list[float] | None = None,
    shared_floor: bool = False,
    progress: Progress | None = None,
) -> CompareResult:
    """Each sweep against the first (see sweep/fit/compare.py), every sweep fitted with the baseline's
    fit section (overrides apply to it), so that one fit config stands behind every number."""
    overrides = list(overrides or [])
    check_sweeps(paths)
    check_overrides(overrides)
    for compute in computes or []:
        check_compute(compute)
    sweeps = [SweepDir.open(p) for p in paths]
    names = [str(p) for p in paths]
    configs = [sweep_config(p, overrides) for p in paths]
    check_comparable(names, configs)
    fit_config = configs[0].fit
    if fit_config.bootstrap < MIN_BOOTSTRAP:
        raise UserError(f"fit.bootstrap={fit_config.bootstrap}: a comparison's 95% intervals need at least "
                        f"{MIN_BOOTSTRAP} refits per sweep (the default is 200)")  # fmt: skip
    for sweep in sweeps:  # every store is written at the end: refuse now, not after the first is written
        with Store(sweep.db_file, create=False) as store:
            store.check_writable()
    tables, reports, run_ids = [], [], []
    for sweep in sweeps:
        runs, curves = finished_runs(sweep.path), stored_curves(sweep)
        reports.append(cached_fit_all(runs, fit_config, curves, True, fit_cache(sweep), progress))
        tables.append(approach3_points(runs, fit_config, curves))
        run_ids.append(list(tables[-1]["run_id"]) if "run_id" in tables[-1] else [])
    notes = fitted_alike(names, configs) + unchecked_units(names, run_ids)
    comparison = compare_fits(names, tables, reports, fit_config, computes, shared_floor, notes)
    payload = comparison.to_dict()
    source = origin([f"{name}:{run}" for name, ids in zip(names, run_ids, strict=True) for run in ids], fit_config)
    for sweep in sweeps:
        with Store(sweep.db_file) as store:
            store.record_fit("compare", comparison.counting, sum(comparison.n_runs), payload, source)
    return CompareResult(comparison, draw_into_report(sweeps[0], payload))


def draw_into_report(sweep: SweepDir, payload: dict) -> Path | None:
    """The comparison's figure beside the baseline's report, once `sweep report` has made one."""
    report_dir = sweep.path / "report"
    if not report_dir.is_dir():
        return None
    from sweep.report.build import write_comparison  # matplotlib: only when there is a report to draw into

    return write_comparison(report_dir, payload)
