"""The report as one self-contained HTML page: inline CSS, images as data URIs, no script, no network.

Every string that comes from the sweep (run ids, config values, warnings) is escaped where it is put in.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from html import escape

from sweep.render import num, vertex_used, with_interval
from sweep.report.data import ReportData
from sweep.report.figures import Figure
from sweep.report.figures.compare import crossover_text, floor_text, loss_text, multiplier_text, significance
from sweep.report.figures.style import num as figure_num
from sweep.report.provenance import Provenance

# The page may load nothing but its own data: URIs and inline style; a browser refuses the rest.
POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330; background: #f6f7f9;
       margin: 0; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 32px 48px; background: #fff; min-height: 100vh; }
header { border-bottom: 3px solid #2f5d9f; margin-bottom: 12px; }
h1 { margin: 0 0 4px; font-size: 26px; }
h2 { margin: 32px 0 10px; padding-bottom: 4px; border-bottom: 1px solid #d5dae3; font-size: 21px; }
h3 { margin: 20px 0 8px; font-size: 17px; }
.meta { color: #5a6375; margin: 0 0 10px; }
nav a { margin-right: 14px; color: #2f5d9f; }
.wide { overflow-x: auto; }
table { border-collapse: collapse; margin: 8px 0 14px; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d5dae3; padding: 4px 10px; text-align: right; vertical-align: top; white-space: nowrap; }
th { background: #eef1f6; }
th:first-child, td:first-child { text-align: left; }
td:last-child { white-space: normal; }  /* the only cell that wraps, where a table is wider than the page */
caption { caption-side: bottom; text-align: left; color: #5a6375; font-size: 13px; padding-top: 4px; }
tr.recommended td { background: #eaf4ea; font-weight: 600; }
.facts th { text-align: left; width: 190px; }
.facts td { text-align: left; white-space: normal; }
summary { cursor: pointer; color: #2f5d9f; }
.warnings { background: #fff6db; border: 1px solid #e8c65a; border-left: 6px solid #d9a400; border-radius: 4px;
            padding: 8px 16px; margin: 12px 0; }
.warnings h3 { margin: 4px 0; color: #7a5600; }
.warnings li { margin: 4px 0; }
.none { color: #5a6375; font-style: italic; }
figure { margin: 18px 0 28px; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e6ec; }
figcaption { color: #39414f; max-width: 760px; }
pre { background: #f1f3f6; border: 1px solid #d5dae3; padding: 10px; overflow-x: auto; font-size: 13px; }
code { font-size: 13px; }
"""


def page(data: ReportData, figures: Sequence[Figure], skipped: dict[str, str], provenance: Provenance) -> str:
    """The report's HTML: header, the proposal, the comparison (where one was made), the figures, the
    fit's tables, the provenance."""
    sections = (
        proposal_section(data),
        comparison_section(data.comparison, any(f.name == "compare" for f in figures)),
        figures_section(figures, skipped),
        fit_section(data),
        provenance_section(provenance),
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{POLICY}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sweep report: {escape(data.name)}</title>
<style>{STYLE}</style>
</head>
<body>
<main>
{header(data, provenance)}
{"".join(sections)}
</main>
</body>
</html>
"""


def header(data: ReportData, provenance: Provenance) -> str:
    compared = (("comparison", "Comparison"),) if data.comparison else ()
    links = (("proposal", "Proposal"), *compared, ("figures", "Figures"), ("fit", "Fit"), ("provenance", "Provenance"))
    nav = "".join(f'<a href="#{anchor}">{name}</a>' for anchor, name in links)
    return (
        f"<header><h1>Sweep report: {escape(data.name)}</h1>"
        f'<p class="meta">{escape(str(data.path.resolve()))} &middot; made {escape(provenance.date)} &middot; '
        f"{len(data.runs)} finished runs, {len(data.fitted)} fitted</p>"
        f"<nav>{nav}</nav></header>"
    )


def table(
    headers: Iterable[str],
    rows: Iterable[Iterable[str]],
    caption: str = "",
    row_class: Callable[[int], str | None] | None = None,
) -> str:
    """An HTML table of escaped cells; row_class(i) names the class of row i (or None)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        css = row_class(i) if row_class else None
        attribute = f' class="{css}"' if css else ""
        body.append(f"<tr{attribute}>" + "".join(f"<td>{escape(str(cell))}</td>" for cell in row) + "</tr>")
    caption_html = f"<caption>{escape(caption)}</caption>" if caption else ""
    rows_html = "".join(body)
    return (
        f'<div class="wide"><table>{caption_html}<thead><tr>{head}</tr></thead><tbody>{rows_html}</tbody></table></div>'
    )


def facts(rows: Iterable[tuple[str, str]], code: bool = False) -> str:
    """A two-column table of names and values (values in <code> where `code`)."""
    start, end = ("<code>", "</code>") if code else ("", "")
    cells = "".join(f"<tr><th>{escape(name)}</th><td>{start}{escape(value)}{end}</td></tr>" for name, value in rows)
    return f'<table class="facts"><tbody>{cells}</tbody></table>'


def bullets(items: Iterable[str]) -> str:
    return "<ul>" + "".join(f"<li>{escape(item)}</li>" for item in items) + "</ul>"


def none(text: str) -> str:
    return f'<p class="none">{escape(text)}</p>'


def band(value: float | None, interval, digits: int = 4) -> str:
    """A value with its 95% interval; intervals arrive as JSON lists or tuples, or None."""
    return with_interval(value, tuple(interval) if interval else None, digits)


# --- the proposal --------------------------------------------------------------------------------


def proposal_section(data: ReportData) -> str:
    out = ['<section id="proposal"><h2>Proposed target run</h2>']
    p = data.proposal
    if p is None:
        out.append(none(f"No proposal yet: `sweep propose {data.path}` makes one, then `sweep report` again."))
    else:
        out += [warnings_box(staleness(data) + p.get("warnings", [])), proposal_facts(data), predictions_table(p)]
        if recommendation := p.get("recommendation"):
            out.append(f"<p>Recommended: <strong>{escape(recommendation['approach'])}</strong>, "
                       f"{escape(recommendation['why'])}</p>")  # fmt: skip
    out.append(targets_table(data))
    out.append("</section>")
    return "".join(out)


def warnings_box(warnings: list[str]) -> str:
    if not warnings:
        return ""
    return f'<div class="warnings"><h3>Warnings ({len(warnings)})</h3>{bullets(warnings)}</div>'


def staleness(data: ReportData) -> list[str]:
    """A warning when runs finished after the proposal was made: the fit below saw them, it did not."""
    if not data.trained_since_proposal:
        return []
    return [f"this proposal predates {data.trained_since_proposal} of the fitted runs, which the fit and "
            f"figures below include: `sweep propose {data.path}` proposes from them"]  # fmt: skip


def utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")


def proposal_facts(data: ReportData) -> str:
    p = data.proposal
    s = p["shape"]
    made = (
        datetime.fromtimestamp(data.proposal_made, timezone.utc).isoformat(timespec="seconds")
        if data.proposal_made
        else "-"
    )
    rows = (
        ("proposal", f"{p['proposal_id']} (made {made})"),
        ("target compute C", f"{num(p['compute'])} FLOPs"),
        ("shape", f"d_model {s['d_model']}, n_layers {s['n_layers']}, n_heads {s['n_heads']} "
                  f"(from {p.get('shape_from', '-')})"),
        ("parameters N", f"{s['N']:,} non-embedding, {s['N_total']:,} in all"),
        ("tokens D", f"{p['tokens']:,} in {p['steps']:,} steps ({p['tokens'] / s['N']:.1f} tokens per parameter)"),
        ("learning rate", f"{band(p['lr'], p.get('lr_interval'), 3)} ({p.get('lr_from', '-')})"),
        ("batch size", f"{band(p['batch_size'], p.get('batch_interval'), 3)} ({p.get('batch_from', '-')})"),
        ("run id", p.get("run_id", "-")),
    )  # fmt: skip
    return facts(rows)


def predictions_table(p: dict) -> str:
    predictions = p.get("predictions", [])
    if not predictions:
        return none("No predicted loss: no approach could be fitted (see the warnings).")
    recommended = p.get("recommended")
    rows = [
        (("* " if q["approach"] == recommended else "") + q["approach"], band(q["N"], q["N_interval"], 3),
         band(q["D"], q["D_interval"], 3), band(q["loss"], q["loss_interval"]))
        for q in predictions
    ]  # fmt: skip
    caption = "predictions with their 95% bootstrap intervals" + ("; * recommended" if recommended else "")
    return table(
        ("approach", "N*", "D*", "predicted loss"), rows, caption,
        row_class=lambda i: "recommended" if predictions[i]["approach"] == recommended else None,
    )  # fmt: skip


def targets_table(data: ReportData) -> str:
    if not data.targets:
        return ""
    rows = []
    for check in data.targets:
        if not check.predictions:
            rows.append((check.run_id, num(check.compute), num(check.loss, 4), "-", "no proposal recorded", "-", "-"))
        errors, covered = check.errors(), check.covered()
        rows += [
            (check.run_id, num(check.compute), num(check.loss, 4), q.approach, band(q.loss, q.loss_interval),
             f"{100 * errors[q.approach]:+.2f}%", {None: "-", True: "yes", False: "no"}[covered[q.approach]])
            for q in check.predictions
        ]  # fmt: skip
    headers = ("run id", "C", "actual loss", "approach", "predicted [95%]", "error", "in interval")
    return "<h3>Trained targets: predicted vs actual</h3>" + table(headers, rows)


# --- the comparison ------------------------------------------------------------------------------


def comparison_section(payload: dict | None, drawn: bool) -> str:
    """The latest `sweep compare`: its sweeps, each target compute's table, the crossovers, its notes."""
    if payload is None:
        return ""
    baseline = payload["baseline"]
    figure = ' Drawn in <a href="#figure-compare">the comparison figure</a>.' if drawn else ""
    out = [
        '<section id="comparison"><h2>Comparison</h2>',
        f"<p>Each sweep against the baseline <strong>{escape(baseline)}</strong>: its predicted compute-optimal "
        f"loss and its effective-compute multiplier (the compute {escape(baseline)} needs to reach its loss, over "
        f"C; &gt; 1: better, ∞: {escape(baseline)} never gets there). Every interval is the 95% interval of "
        f"{payload['refits']} paired bootstrap refits; significant: the multiplier's interval excludes 1."
        f"{figure}</p>",
        compared_sweeps(payload),
        *(target_table(target, baseline) for target in payload["targets"]),
    ]
    if payload["crossovers"]:
        out.append(f"<h3>Where each frontier crosses {escape(baseline)}'s</h3>")
        out.append(bullets(f"{c['sweep']}: {crossover_text(c, payload)}" for c in payload["crossovers"]))
    if payload["notes"]:
        out.append("<h3>Notes</h3>" + bullets(payload["notes"]))
    out.append("</section>")
    return "".join(out)


def compared_sweeps(payload: dict) -> str:
    laws = {law["sweep"]: law for law in payload.get("laws", [])}
    rows = [
        (sweep, "baseline" if sweep == payload["baseline"] else "variant", str(laws.get(sweep, {}).get("runs", "-")),
         num(laws.get(sweep, {}).get("E"), 4))
        for sweep in payload["sweeps"]
    ]  # fmt: skip
    caption = f"floor E: {floor_text(payload)}; compute counted as {payload['compute_counted_as']}"
    return table(("sweep", "role", "runs", "floor E"), rows, caption)


def target_table(target: dict, baseline: str) -> str:
    rows = [
        (v["sweep"], loss_text(v["loss"]), multiplier_text(v["multiplier"]) if "multiplier" in v else "1 (baseline)",
         significance(v) if "multiplier" in v else "-")
        for v in target["variants"]
    ]  # fmt: skip
    headers = ("sweep", "loss L* [95%]", f"multiplier over {baseline} [95%]", "significant")
    at = figure_num(target["compute"])  # as the crossovers beside it and the figure write it
    return f"<h3>At C = {escape(at)} FLOPs</h3>" + table(headers, rows)


# --- the figures -----------------------------------------------------------------------------------


def figures_section(figures: Sequence[Figure], skipped: dict[str, str]) -> str:
    out = ['<section id="figures"><h2>Figures</h2>']
    out += [figure_html(f) for f in figures]
    if not figures:
        out.append(none("No figure applies to this sweep yet."))
    if skipped:
        out.append("<h3>Figures not drawn</h3>")
        out.append(bullets(f"{name}: {why}" for name, why in skipped.items()))
    out.append("</section>")
    return "".join(out)


def figure_html(f: Figure) -> str:
    source = "data:image/png;base64," + base64.b64encode(f.png).decode("ascii")
    name = escape(f.name)
    return (
        f'<figure id="figure-{name}"><h3>{escape(f.title)}</h3><img src="{source}" alt="{escape(f.title)}">'
        f'<figcaption>{escape(f.caption)} <a href="{name}.svg">SVG</a> &middot; <a href="{name}.png">PNG</a>'
        "</figcaption></figure>"
    )


# --- the fit -------------------------------------------------------------------------------------


def fit_section(data: ReportData) -> str:
    fit = data.fit.to_dict()
    out = [
        '<section id="fit"><h2>Fit</h2>',
        f"<p>{fit['n_runs']} runs fitted, N counted {escape(fit['counting'])}; "
        "every interval is the 95% interval of the bootstrap refits.</p>",
        approach3_table(fit),
        power_laws_table(fit),
        vertices_table(fit),
        forms_table(fit),
    ]
    if fit["errors"]:
        out.append("<h3>Not fitted</h3>" + bullets(f"{name}: {why}" for name, why in fit["errors"].items()))
    if fit["notes"]:
        out.append("<h3>Notes</h3>" + bullets(fit["notes"]))
    out.append("</section>")
    return "".join(out)


def approach3_table(fit: dict) -> str:
    if "approach3" not in fit:
        return ""
    a3 = fit["approach3"]
    rows = [
        (name, num(a3[name], 4), *interval_cells(a3["intervals"][name])) for name in ("E", "A", "B", "alpha", "beta")
    ]
    caption = f"{a3['bootstrap']} bootstrap refits, {a3['dropped']} dropped"
    return "<h3>Approach 3: L(N, D) = E + A / N^alpha + B / D^beta</h3>" + table(
        ("parameter", "value", "95% low", "95% high"), rows, caption
    )


def interval_cells(interval) -> tuple[str, str]:
    return (num(interval[0], 4), num(interval[1], 4)) if interval else ("-", "-")


def power_laws_table(fit: dict) -> str:
    rows = []
    for key, name in (("approach1", "Approach 1 (envelope)"), ("approach2", "Approach 2 (IsoFLOP)")):
        if key not in fit:
            continue
        for symbol in ("N", "D", "L"):
            law = fit[key][f"{symbol}_star"]
            rows.append((name, f"{symbol}*(C) = G C^a", band(law["coefficient"], law["coefficient_interval"], 3),
                         band(law["exponent"], law["exponent_interval"], 3)))  # fmt: skip
    if not rows:
        return ""
    return "<h3>Approaches 1 and 2: power laws in compute</h3>" + table(
        ("approach", "law", "coefficient G [95%]", "exponent a [95%]"), rows
    )


def vertices_table(fit: dict) -> str:
    if "approach2" not in fit:
        return ""
    rows = [
        (num(b["budget"]), str(b["n_runs"]), band(b["N_star"], b["N_star_interval"], 3),
         band(b["D_star"], b["D_star_interval"], 3), band(b["L_star"], b["L_star_interval"]), vertex_used(b))
        for b in fit["approach2"]["budgets"]
    ]  # fmt: skip
    headers = ("budget C", "runs", "N* [95%]", "D* [95%]", "L* [95%]", "used")
    return "<h3>Approach 2: each budget's parabola vertex, used in the power laws or not</h3>" + table(headers, rows)


def forms_table(fit: dict) -> str:
    forms = fit.get("forms", {})
    if not forms:
        return ""
    rows = [
        (name, form["form"], *(band(form[k], form["intervals"][k]) for k in ("E", "A", "alpha")))
        for name, form in forms.items()
    ]
    return "<h3>Other forms</h3>" + table(("name", "form", "E [95%]", "A [95%]", "alpha [95%]"), rows)


# --- provenance ------------------------------------------------------------------------------------


def provenance_section(provenance: Provenance) -> str:
    rows = (
        ("made", provenance.date),
        ("git commit", provenance.commit),
        (f"runs fitted ({len(provenance.run_ids)})", ", ".join(provenance.run_ids) or "none"),
    )
    return (
        '<section id="provenance"><h2>Provenance</h2>'
        + facts(rows, code=True)
        + "<h3>Package versions</h3>"
        + table(("package", "version"), provenance.versions.items())
        + "<h3>Config</h3>"
        f"<details><summary>the sweep's config.yaml ({len(provenance.config.splitlines())} lines)</summary>"
        f"<pre>{escape(provenance.config)}</pre></details></section>"
    )
