"""The report's figures, drawn with matplotlib's object API (no pyplot state), each as PNG and SVG.

Each drawer takes the ReportData and returns a Drawing (the matplotlib figure, its title and a caption
with this sweep's numbers) or raises Skipped saying why the figure does not apply."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

from matplotlib.figure import Figure as MplFigure

from sweep.report.data import ReportData
from sweep.report.figures import compare, fits, runs
from sweep.report.figures.style import Drawing, Skipped, style

DRAWERS: dict[str, Callable[[ReportData], Drawing]] = {
    "isoflop": fits.isoflop,
    "frontier": fits.frontier,
    "contours": fits.contours,
    "residuals": fits.residuals,
    "curves": runs.curves,
    "backtest": runs.backtest,
    "lr": runs.lr,
    "aspect": runs.aspect,
    "compare": compare.compare,
}


@dataclass(frozen=True)
class Figure:
    name: str  # the file stem: report/<name>.png and .svg
    title: str
    caption: str  # what it shows on this sweep, in a sentence or two
    png: bytes
    svg: str


def rendered(name: str, title: str, caption: str, figure: MplFigure) -> Figure:
    png, svg = io.BytesIO(), io.StringIO()
    with style():
        figure.savefig(png, format="png", dpi=110)
        figure.set_layout_engine("none")  # keep the layout the PNG found: laying out again costs a third
        figure.savefig(svg, format="svg", metadata={"Date": None})  # the same sweep, the same SVG
    return Figure(name, title, caption, png.getvalue(), svg.getvalue())


def drawn(name: str, data: ReportData) -> Drawing:
    """The figure `name` drawn in the report's style (raises Skipped where it does not apply)."""
    with style():
        return DRAWERS[name](data)


def make_figures(
    data: ReportData, progress: Callable[[int, int], None] | None = None
) -> tuple[list[Figure], dict[str, str]]:
    """The figures that apply to this sweep, and for each that does not, why (name -> reason).
    progress(done, total) hears of each figure as it is finished."""
    figures, skipped = [], {}
    for done, name in enumerate(DRAWERS, start=1):
        try:
            drawing = drawn(name, data)
            figures.append(rendered(name, drawing.title, drawing.caption, drawing.figure))
        except Skipped as why:
            skipped[name] = str(why)
        if progress:
            progress(done, len(DRAWERS))
    return figures, skipped


__all__ = ["DRAWERS", "Drawing", "Figure", "Skipped", "drawn", "make_figures", "rendered"]
