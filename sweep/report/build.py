"""`sweep report DIR`: gather the sweep, draw the figures, write DIR/report/ (index.html, figures, provenance)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sweep import api
from sweep.errors import UserError
from sweep.fit.report import Progress
from sweep.report.data import gather
from sweep.report.figures import DRAWERS, Figure, make_figures, rendered
from sweep.report.figures.compare import draw
from sweep.report.figures.style import style
from sweep.report.html import page
from sweep.report.provenance import provenance
from sweep.rundir import atomic_write_bytes, atomic_write_json, atomic_write_text
from sweep.sweepdir import SweepDir

FIGURE_SUFFIXES = (".png", ".svg")


@dataclass(frozen=True)
class ReportResult:
    index: Path  # DIR/report/index.html
    figures: list[Path]  # each drawn figure's PNG and SVG, beside the page
    skipped: dict[str, str]  # figure name -> why it was not drawn
    provenance: Path  # DIR/report/provenance.json

    def to_dict(self) -> dict:
        return {"index": str(self.index), "figures": [str(p) for p in self.figures], "skipped": self.skipped,
                "provenance": str(self.provenance)}  # fmt: skip


def report_dir(path: Path) -> Path:
    """DIR/report, once DIR is a sweep with finished runs and nothing but a directory stands there."""
    sweep = SweepDir.open(path)
    if not sweep.db_file.exists() or api.finished_runs(path).empty:
        raise UserError(f"{path}: no finished runs to report; launch and collect first "
                        f"(sweep launch {path}, then sweep collect {path})")  # fmt: skip
    out = sweep.path / "report"
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} is a file, not a directory; move it aside and run `sweep report {path}` again")
    return out


def write_report(path: Path, progress: Progress | None = None) -> ReportResult:
    """Write DIR/report/: index.html (self-contained), each figure as PNG and SVG, provenance.json.
    Each file is replaced atomically; figures of an earlier report that no longer apply are removed.
    progress(stage, done, total) hears the fit (when it is not cached) and the figures."""
    out = report_dir(Path(path))
    data = gather(Path(path), progress)
    drawn = (lambda done, total: progress("figures", done, total)) if progress else None
    figures, skipped = make_figures(data, drawn)
    record = provenance(SweepDir.open(path).config_file, list(data.fitted["run_id"]))
    written = write_figures(out, figures)
    atomic_write_json(out / "provenance.json", record.to_dict())
    index = out / "index.html"
    atomic_write_text(index, page(data, figures, skipped, record))  # last: every file it links to is in place
    remove_stale_figures(out, written)
    return ReportResult(index, written, skipped, out / "provenance.json")


def write_figures(out: Path, figures: list[Figure]) -> list[Path]:
    written = []
    for figure in figures:
        png, svg = out / f"{figure.name}.png", out / f"{figure.name}.svg"
        atomic_write_bytes(png, figure.png)
        atomic_write_text(svg, figure.svg)
        written += [png, svg]
    return written


def write_comparison(report_dir: Path, payload: dict) -> Path:
    """Draw a comparison (Comparison.to_dict()) as report_dir/compare.png and .svg, each replaced
    atomically, as `sweep report` writes it; returns the PNG. The page shows it once made again."""
    with style():
        drawing = draw(payload)
    figure = rendered("compare", drawing.title, drawing.caption, drawing.figure)
    png, _ = write_figures(Path(report_dir), [figure])
    return png


def remove_stale_figures(out: Path, written: list[Path]) -> None:
    """Remove the PNG and SVG files of an earlier report's figures that this report did not draw; a
    user's own images there, named otherwise, stay."""
    for file in out.iterdir():
        if file.suffix in FIGURE_SUFFIXES and file.stem in DRAWERS and file not in written:
            file.unlink()
