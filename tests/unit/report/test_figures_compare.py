"""The comparison's figure and its section of the report, from comparisons of synthetic sweeps as
`sweep compare` stores them (Comparison.to_dict() as JSON in the fits table)."""

from __future__ import annotations

import io
import json
import sqlite3
import time
import warnings
import xml.etree.ElementTree as ElementTree
from dataclasses import replace

import numpy as np
import pytest
from matplotlib.image import imread

from sweep.config import FitConfig
from sweep.fit.compare import compare_fits
from sweep.fit.forms import Chinchilla
from sweep.fit.report import fit_all
from sweep.fit.synthetic import compute_scaled, isoflop_runs
from sweep.report.build import write_comparison, write_report
from sweep.report.data import gather
from sweep.report.figures import Skipped, drawn, rendered
from sweep.report.figures.compare import draw, multiplier_text
from sweep.report.figures.style import nats, num
from sweep.report.html import page
from sweep.report.provenance import provenance
from sweep.sweepdir import SweepDir
from tests.unit.report.sweep_with_curves import sweep_with_curves

LAW = Chinchilla(E=1.7, A=400.0, B=410.0, alpha=0.34, beta=0.28)
BUDGETS = [1e18, 3e18, 1e19, 3e19]


def stored(payload: dict) -> dict:
    """The payload as the fits table gives it back."""
    return json.loads(json.dumps(payload, sort_keys=True))


def comparison(laws: list[Chinchilla], shared_floor: bool = False) -> dict:
    names = [f"sweeps/{chr(ord('a') + i)}" for i in range(len(laws))]
    tables = [isoflop_runs(law, BUDGETS, noise=0.003, seed=i + 1) for i, law in enumerate(laws)]
    config = FitConfig(bootstrap=30)
    fits = [fit_all(t, config) for t in tables]
    return stored(compare_fits(names, tables, fits, config, shared_floor=shared_floor).to_dict())


@pytest.fixture(scope="module")
def two() -> dict:
    """b is worth twice a's compute; their frontiers cross beyond the largest target."""
    return comparison([LAW, compute_scaled(LAW, 2.0)])


@pytest.fixture(scope="module")
def three() -> dict:
    return comparison([LAW, compute_scaled(LAW, 2.0), compute_scaled(LAW, 0.7)])


@pytest.fixture(scope="module")
def unreachable() -> dict:
    """b's floor lies far below a's: at large C no compute gets a to b's loss (null multipliers)."""
    return comparison([LAW, replace(LAW, E=1.2)])


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    return sweep_with_curves(tmp_path_factory.mktemp("compare") / "s")


def record_comparison(sweep_dir, params_json: str) -> None:
    """A fits row as `sweep compare` writes it, on the columns every version of the store has."""
    with sqlite3.connect(SweepDir.open(sweep_dir).db_file) as db:
        db.execute("INSERT INTO fits (created, approach, counting, n_points, params_json) VALUES (?, ?, ?, ?, ?)",
                   (time.time(), "compare", "non_embedding", 40, params_json))  # fmt: skip


def variants(payload: dict) -> list[str]:
    return payload["sweeps"][1:]


@pytest.mark.parametrize("payload", ["two", "three"])
def test_each_sweeps_frontier_and_each_variants_multiplier_are_drawn_with_bands(payload, request):
    payload = request.getfixturevalue(payload)
    drawing = draw(payload)
    left, right = drawing.figure.axes
    assert [(ax.get_xscale(), ax.get_yscale()) for ax in (left, right)] == [("log", "linear"), ("log", "log")]
    assert "nats/token" in left.get_ylabel() and all("FLOPs" in ax.get_xlabel() for ax in (left, right))
    labels = [line.get_label() for line in left.lines if not line.get_label().startswith("_")]
    assert labels == [f"{payload['baseline']} (baseline)", *variants(payload)]
    curve = payload["curves"]["loss"][payload["baseline"]]
    assert list(left.lines[0].get_ydata()) == pytest.approx(curve["value"])
    assert len(left.collections) >= len(payload["sweeps"]) and len(right.collections) >= len(variants(payload))
    multipliers = {line.get_label(): line for line in right.lines}
    for sweep in variants(payload):
        assert list(multipliers[sweep].get_ydata()) == pytest.approx(payload["curves"]["multiplier"][sweep]["value"])
    assert list(multipliers[f"{payload['baseline']} (baseline)"].get_ydata()) == [1, 1]
    targets = [t["compute"] for t in payload["targets"]]
    for ax in (left, right):
        dotted = [line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == ":"]
        assert dotted == targets
    figure = rendered("compare", drawing.title, drawing.caption, drawing.figure)
    pixels = imread(io.BytesIO(figure.png), format="png")
    assert pixels.shape[1] > 500 and pixels[..., :3].std() > 0.05
    assert ElementTree.fromstring(figure.svg).tag.endswith("svg")


def test_the_caption_gives_the_multipliers_and_losses_at_the_largest_target_and_the_crossovers(three):
    caption = draw(three).caption
    largest = three["targets"][-1]
    assert f"C = {num(largest['compute'])}" in caption
    for v in largest["variants"]:
        assert nats(v["loss"]["value"], v["loss"]["interval"]) in caption
        if "multiplier" in v:
            significant = "yes" if v["significant"] else "no"
            assert f"{v['sweep']} {multiplier_text(v['multiplier'])} (significant: {significant})" in caption
    crossed, not_crossed = three["crossovers"]
    assert crossed["compute"] is not None and not_crossed["compute"] is None  # as the laws were drawn
    assert f"C = {num(crossed['compute']['value'])} [{num(crossed['compute']['interval'][0])}, " in caption
    assert f"{not_crossed['sweep']}: no crossing between C = " in caption
    assert "each sweep's own floor E" in caption and "nan" not in caption.lower() and "∞" not in caption


def test_a_crossover_is_marked_on_the_line_at_one(three):
    (_, right) = draw(three).figure.axes
    (marker,) = [line for line in right.lines if line.get_gid() == "crossover"]
    where = three["crossovers"][0]["compute"]["value"]
    assert tuple(marker.get_xydata()[0]) == (where, 1.0)
    assert right.get_xlim()[1] > where  # beyond the curves, the axis reaches it


def test_infinite_multipliers_are_gaps_in_the_line_and_the_band_reaches_the_top(unreachable):
    curve = unreachable["curves"]["multiplier"]["sweeps/b"]
    assert curve["high"][-1] is None  # the figure's case: the baseline never gets there (JSON: null)
    largest = unreachable["targets"][-1]["variants"][1]["multiplier"]
    assert largest["value"] is None and largest["interval"][1] is None
    json.dumps(unreachable, allow_nan=False)  # strict JSON: no Infinity, no NaN
    as_infinity = {**unreachable, "curves": json.loads(json.dumps(unreachable["curves"]).replace("null", "Infinity"))}
    for payload in (unreachable, as_infinity):  # a row stored before nulls, too
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            drawing = draw(payload)
            rendered("compare", drawing.title, drawing.caption, drawing.figure)
        (_, right) = drawing.figure.axes
        line = next(line for line in right.lines if line.get_label() == "sweeps/b")
        drawn_values = np.asarray(line.get_ydata(), dtype=float)
        assert np.isnan(drawn_values[-1]) and np.isfinite(drawn_values[0])
        band = right.collections[0].get_paths()[0].vertices
        assert np.isfinite(band).all() and band[:, 1].max() > right.get_ylim()[1]  # clipped above the axis
        assert "sweeps/b ∞ [" in drawing.caption and "∞: sweeps/a never reaches that loss" in drawing.caption


def test_a_shared_floor_is_said_in_the_caption():
    shared = comparison([LAW, compute_scaled(LAW, 2.0)], shared_floor=True)
    assert shared["shared_e"] and "one floor E shared by all sweeps" in draw(shared).caption


def test_the_drawer_skips_a_sweep_without_a_comparison_and_draws_its_latest(sweep, two, three):
    data = gather(sweep)
    assert data.comparison is None
    with pytest.raises(Skipped, match="no comparison recorded: `sweep compare"):
        drawn("compare", data)
    record_comparison(sweep, json.dumps(two))
    record_comparison(sweep, json.dumps(three))
    record_comparison(sweep, '{"baseline": "sweeps/a", "sweeps": ')  # cut short: passed over
    record_comparison(sweep, json.dumps({**three, "curves": {}}))  # without the curves the figure draws
    assert gather(sweep).comparison == three


def test_the_report_shows_the_comparison_section_and_figure_only_where_one_was_recorded(tmp_path, three):
    without = sweep_with_curves(tmp_path / "without")
    result = write_report(without)
    html = result.index.read_text()
    assert 'id="comparison"' not in html and 'id="figure-compare"' not in html
    assert not (result.index.parent / "compare.png").exists() and "compare" in result.skipped
    record_comparison(without, json.dumps(three))
    result = write_report(without)
    html = result.index.read_text()
    assert html.index('id="proposal"') < html.index('id="comparison"') < html.index('id="figures"')
    assert 'id="figure-compare"' in html and 'href="#figure-compare"' in html
    assert {p.name for p in result.figures} >= {"compare.png", "compare.svg"} and "compare" not in result.skipped
    for target in three["targets"]:
        assert f"At C = {num(target['compute'])} FLOPs" in html
        for v in target["variants"][1:]:
            cells = f"<td>{multiplier_text(v['multiplier'])}</td><td>{'yes' if v['significant'] else 'no'}</td>"
            assert cells in html


def test_the_section_shows_infinite_multipliers_the_crossover_notes_and_the_floor(sweep, unreachable, three):
    data = gather(sweep)
    record = provenance(data.path / "config.yaml", list(data.fitted["run_id"]))
    html = page(replace(data, comparison={**unreachable, "notes": ["a note <b>"]}), [], {}, record)
    assert "<td>∞ [" in html and "a note &lt;b&gt;" in html and "each sweep&#x27;s own floor E" in html
    assert "no crossing between C = " in html and 'href="#figure-compare"' not in html  # no figure drawn
    shared = page(replace(data, comparison={**three, "shared_e": True}), [], {}, record)
    assert "one floor E shared by all sweeps" in shared and "sweeps/a better above" in shared


def test_write_comparison_writes_the_figure_beside_the_report(tmp_path, two):
    png = write_comparison(tmp_path, two)
    assert png == tmp_path / "compare.png"
    assert imread(png).shape[1] > 500
    assert ElementTree.parse(tmp_path / "compare.svg").getroot().tag.endswith("svg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compare.png", "compare.svg"]  # no temporary left
