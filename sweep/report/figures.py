"""The report's figures, drawn with matplotlib's object API (no pyplot state), each as PNG and SVG."""

from __future__ import annotations

import io
from dataclasses import dataclass

from matplotlib.figure import Figure as MplFigure

from sweep.report.data import ReportData


@dataclass(frozen=True)
class Figure:
    name: str  # the file stem: report/<name>.png and .svg
    title: str
    caption: str  # what it shows on this sweep, in a sentence or two
    png: bytes
    svg: str


def rendered(name: str, title: str, caption: str, figure: MplFigure) -> Figure:
    png, svg = io.BytesIO(), io.StringIO()
    figure.savefig(png, format="png", dpi=110, bbox_inches="tight")
    figure.savefig(svg, format="svg", bbox_inches="tight", metadata={"Date": None})  # the same sweep, the same SVG
    return Figure(name, title, caption, png.getvalue(), svg.getvalue())


def loss_curves(data: ReportData) -> Figure | None:
    if data.curves.empty:
        return None
    figure = MplFigure(figsize=(6.4, 4.2))
    axes = figure.subplots()
    for _, curve in data.curves.groupby("run_id"):
        axes.plot(curve["tokens"], curve["eval_loss"], linewidth=0.8)
    axes.set(xscale="log", xlabel="tokens trained D", ylabel="eval loss (nats/token)", title="Loss curves")
    caption = f"Eval loss of each of the {data.curves['run_id'].nunique()} runs against the tokens it had seen."
    return rendered("curves", "Loss curves", caption, figure)


def make_figures(data: ReportData) -> tuple[list[Figure], dict[str, str]]:
    """The figures that apply to this sweep, and for each that does not, why (name -> reason)."""
    figures, skipped = [], {}
    for name, draw in (("curves", loss_curves),):
        figure = draw(data)
        if figure is None:
            skipped[name] = "no stored training curves"
        else:
            figures.append(figure)
    return figures, skipped
