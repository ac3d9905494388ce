from __future__ import annotations

import base64
import os
import re
from dataclasses import replace
from html import escape

import pytest
from matplotlib.figure import Figure as MplFigure

from sweep.propose import Prediction, TargetCheck
from sweep.render import num, with_interval
from sweep.report.data import gather
from sweep.report.figures import Figure, rendered
from sweep.report.html import page
from sweep.report.provenance import provenance
from tests.unit.report.sweep_with_curves import sweep_with_curves

INJECTION = '<script>document.title="pwned"</script><img src=x onerror=alert(1)>'


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return gather(sweep_with_curves(tmp_path_factory.mktemp("report") / "s"))


@pytest.fixture(scope="module")
def record(data):
    return provenance(data.path / "config.yaml", list(data.fitted["run_id"]))


def figure(name: str, title: str = "A line", caption: str = "It rises.") -> Figure:
    drawing = MplFigure(figsize=(2, 1.5))
    drawing.subplots().plot([1, 2, 3], [1, 3, 2])
    return rendered(name, title, caption, drawing)


def attributes(html: str, name: str) -> list[str]:
    return re.findall(rf'\b{name}="([^"]*)"', html)


def test_the_page_is_self_contained_with_each_figure_inlined_as_a_png(data, record):
    figures = [figure("valleys", "IsoFLOP valleys", "Loss against N per budget."), figure("curves")]
    html = page(data, figures, {"lr": "no LR sweep in this sweep"}, record)
    assert "<script" not in html.lower() and "http://" not in html and "https://" not in html
    sources = attributes(html, "src")
    assert [base64.b64decode(s.removeprefix("data:image/png;base64,")) for s in sources] == [f.png for f in figures]
    assert all(":" not in link for link in attributes(html, "href"))  # in-page anchors and the files beside it
    assert 'href="valleys.svg"' in html and 'href="curves.svg"' in html
    assert "IsoFLOP valleys" in html and "Loss against N per budget." in html
    assert "lr: no LR sweep in this sweep" in html


def test_the_proposal_comes_first_with_each_approachs_loss_interval_and_its_warnings(data, record):
    proposal = {**data.proposal, "warnings": ["the data is too small for this target"]}
    html = page(replace(data, proposal=proposal), [], {}, record)
    assert html.index('id="proposal"') < html.index('id="figures"') < html.index('id="fit"')
    assert html.index('class="warnings"') < html.index("predicted loss")
    assert "the data is too small for this target" in html
    assert f"{num(proposal['compute'])} FLOPs" in html and f"{proposal['tokens']:,}" in html
    for p in proposal["predictions"]:
        assert with_interval(p["loss"], tuple(p["loss_interval"])) in html
    recommended = re.search(r'<tr class="recommended"><td>\* (\w+)</td>', html).group(1)
    assert recommended == proposal["recommended"]


def test_without_a_proposal_the_page_says_how_to_make_one(data, record):
    html = page(replace(data, proposal=None), [], {}, record)
    assert "No proposal yet" in html and "sweep propose" in html and 'class="warnings"' not in html


def test_the_fit_tables_show_every_parameter_and_vertex_with_its_interval(data, record):
    html = page(data, [], {}, record)
    fit = data.fit.to_dict()
    bands = fit["approach3"]["intervals"]
    for name in ("E", "A", "B", "alpha", "beta"):
        row = f"<tr><td>{name}</td><td>{num(fit['approach3'][name], 4)}</td><td>{num(bands[name][0], 4)}</td>"
        assert row in html, name
    for key in ("approach1", "approach2"):
        exponent = fit[key]["N_star"]
        assert with_interval(exponent["exponent"], tuple(exponent["exponent_interval"]), 3) in html
    for b in fit["approach2"]["budgets"]:
        assert with_interval(b["L_star"], tuple(b["L_star_interval"])) in html
    assert all(note in html for note in fit["notes"])


def test_the_provenance_shows_versions_commit_runs_and_the_config(data, record):
    html = page(data, [], {}, record)
    assert f"<tr><td>numpy</td><td>{record.versions['numpy']}</td></tr>" in html
    assert record.commit in html and record.date in html
    assert all(run_id in html for run_id in record.run_ids)
    assert f"<pre>{escape(record.config)}</pre>" in html


def test_every_string_from_the_sweep_is_escaped(data, record):
    proposal = {**data.proposal, "warnings": [INJECTION], "proposal_id": INJECTION}
    evil = replace(record, config=f"# {INJECTION}\n", run_ids=[INJECTION])
    html = page(
        replace(data, proposal=proposal), [figure(INJECTION, INJECTION, INJECTION)], {INJECTION: INJECTION}, evil
    )
    assert "<script" not in html.lower() and "<img src=x" not in html
    assert html.count("&lt;script&gt;document.title=&quot;pwned&quot;") >= 8  # each place it was put in
    assert attributes(html, "src")[0].startswith("data:image/png;base64,")


def test_trained_targets_show_their_loss_beside_each_prediction_and_its_error(data, record):
    predictions = [Prediction.from_dict(p) for p in data.proposal["predictions"]]
    actual = predictions[0].loss * 1.01
    check = TargetCheck("t0rget", data.proposal["compute"], actual, data.proposal["proposal_id"], predictions)
    html = page(replace(data, targets=[check]), [], {}, record)
    rows = re.findall(r"<tr><td>t0rget</td>.*?</tr>", html)
    assert len(rows) == len(predictions)
    for row, (approach, error) in zip(rows, check.errors().items(), strict=True):
        assert f"<td>{approach}</td>" in row and f"<td>{100 * error:+.2f}%</td>" in row and num(actual, 4) in row


def test_a_proposal_older_than_some_fitted_runs_is_flagged_and_dated(data, record, tmp_path):
    assert data.proposal_made is not None and data.trained_since_proposal == 0  # proposed after its runs
    html = page(data, [], {}, record)
    assert "predates" not in html and f"{data.proposal['proposal_id']} (made 20" in html
    sweep = sweep_with_curves(tmp_path / "s")
    later = data.proposal_made + 3600
    for run_id in list(gather(sweep).fitted["run_id"])[:2]:  # two runs finish after the proposal
        result = sweep / "runs" / run_id / "result.json"
        os.utime(result, (later, later))
    stale = gather(sweep)
    assert stale.trained_since_proposal == 2
    assert "this proposal predates 2 of the fitted runs" in page(stale, [], {}, record)
