"""sweep/compare.py through sweep.api: sweeps imported from CSV files of known laws are compared,
the comparison recorded in every store with where it came from, and sweeps whose losses are not
comparable are refused before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from sweep import api
from sweep.errors import UserError
from sweep.fit.errors import FitError
from sweep.fit.forms import Chinchilla
from sweep.fit.synthetic import compute_scaled, isoflop_runs
from sweep.provenance import code_version
from sweep.store import Store
from sweep.sweepdir import SweepDir

LAW = Chinchilla(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
BUDGETS = [1e18, 3e18, 1e19, 3e19]


def imported(tmp_path: Path, name: str, law: Chinchilla, seed: int) -> Path:
    csv = tmp_path / f"{name}.csv"
    runs = isoflop_runs(law, BUDGETS, noise=0.003, seed=seed).rename(columns={"run_id": "name"})
    runs.to_csv(csv, index=False)
    api.import_csv(csv, tmp_path / name, api.CsvColumns(name_col="name"))
    return tmp_path / name


@pytest.fixture
def pair(tmp_path) -> tuple[Path, Path]:
    return imported(tmp_path, "a", LAW, 0), imported(tmp_path, "b", compute_scaled(LAW, 2.0), 1)


def compare_rows(sweep: Path) -> list[dict]:
    with Store(SweepDir.open(sweep).db_file, create=False) as store:
        fits = store.fits()
    return fits[fits["approach"] == "compare"].to_dict("records")


def test_imported_sweeps_are_compared_and_the_comparison_is_recorded_in_each_store(pair):
    a, b = pair
    result = api.compare([a, b], ["fit.bootstrap=40"], computes=[1e19, 1e21])
    comparison = result.comparison
    assert [t.compute for t in comparison.targets] == [1e19, 1e21]
    m = comparison.targets[0].variants[1].multiplier
    assert m.interval[0] <= 2.0 <= m.interval[1] and m.value == pytest.approx(2.0, rel=0.2)
    assert result.figure is None  # no report yet to draw into
    for sweep in (a, b):
        (row,) = compare_rows(sweep)
        assert json.loads(row["params_json"]) == json.loads(json.dumps(comparison.to_dict()))
        run_ids = json.loads(row["run_ids_json"])
        assert len(run_ids) == 40 and {r.split(":")[0] for r in run_ids} == {str(a), str(b)}
        assert json.loads(row["fit_config_json"])["bootstrap"] == 40
        assert row["code_version"] == code_version()
    with Store(SweepDir.open(a).db_file, create=False) as store:
        imported_ids = set(store.runs()["run_id"])
    assert {r.split(":", 1)[1] for r in run_ids if r.startswith(str(a))} == imported_ids


def test_a_second_comparison_reads_each_sweeps_saved_fit(pair, monkeypatch):
    a, b = pair
    first = api.compare([a, b], ["fit.bootstrap=40"])
    import sweep.fit.cache as cache

    monkeypatch.setattr(cache, "fit_all", lambda *args, **kwargs: pytest.fail("refitted an unchanged sweep"))
    again = api.compare([a, b], ["fit.bootstrap=40"])
    assert again.comparison.to_dict() == first.comparison.to_dict()
    assert len(compare_rows(a)) == 2


def set_config(sweep: Path, section: str, key: str, value) -> None:
    config_file = SweepDir.open(sweep).config_file
    config = yaml.safe_load(config_file.read_text())
    config[section][key] = value
    config_file.write_text(yaml.safe_dump(config))


@pytest.mark.parametrize(
    "section, key, value, message",
    [
        ("fit", "counting", "total", "fitted with fit.counting=total and .* with non_embedding"),
        ("data", "source", "synthetic", "losses are per tokens of a 256-token vocabulary .* per bytes"),
    ],
)
def test_sweeps_whose_losses_are_not_comparable_are_refused_and_nothing_is_recorded(pair, section, key, value,
                                                                                      message):  # fmt: skip
    a, b = pair
    set_config(b, section, key, value)
    with pytest.raises(UserError, match=message):
        api.compare([a, b])
    assert compare_rows(a) == [] and compare_rows(b) == []


def test_a_counting_override_fits_every_sweep_alike(pair):
    a, b = pair
    set_config(b, "fit", "counting", "total")
    with pytest.raises(UserError, match="pass fit.counting=non_embedding"):
        api.compare([a, b])
    with pytest.raises(FitError, match="N_total"):  # imported runs have no N_total: a fit with it says so
        api.compare([a, b], ["fit.counting=total"])


@pytest.mark.parametrize(
    "arguments, overrides, message",
    [
        (["a"], [], "compare needs two sweep directories or more"),
        (["a", "a"], [], "a is given twice"),
        (["a", "b"], ["data.vocab_size=512"], "compare takes fit.\\* overrides only"),
        (["a", "missing"], [], "missing"),
        (["a", "runs.csv"], [], "runs.csv is a file; .*sweep import .*runs.csv --into"),
    ],
)
def test_bad_arguments_are_refused_with_what_to_do(pair, tmp_path, arguments, overrides, message):
    (tmp_path / "runs.csv").write_text("N,D,loss\n1,2,3\n")
    with pytest.raises(UserError, match=message):
        api.compare([tmp_path / name for name in arguments], overrides)
    assert compare_rows(pair[0]) == []


def test_too_few_refits_for_an_interval_are_refused_before_anything_is_fitted(pair, monkeypatch):
    import sweep.compare as compare_module

    monkeypatch.setattr(compare_module, "cached_fit_all", lambda *args: pytest.fail("fitted before refusing"))
    with pytest.raises(UserError, match="fit.bootstrap=5: a comparison's 95% intervals need at least 40 refits"):
        api.compare(list(pair), ["fit.bootstrap=5"])
    assert compare_rows(pair[0]) == []


def test_a_bad_target_compute_is_refused(pair):
    with pytest.raises(UserError, match="--compute"):
        api.compare(list(pair), computes=[-1.0])


def test_every_sweep_is_fitted_with_the_baselines_fit_section_and_a_difference_is_noted(pair):
    a, b = pair
    set_config(b, "fit", "bootstrap", 7)
    comparison = api.compare([a, b], ["fit.bootstrap=45"]).comparison  # the override applies to both
    assert comparison.refits == 45 and not [note for note in comparison.notes if "fit section" in note]
    comparison = api.compare([a, b]).comparison
    assert comparison.refits == SweepDir.open(a).config().fit.bootstrap
    assert f"{b}'s own fit section differs from {a}'s (bootstrap); every sweep is fitted here with {a}'s" in (
        comparison.notes
    )


def test_imported_runs_are_compared_with_a_note_that_their_vocabulary_is_unchecked(pair):
    notes = api.compare(list(pair), ["fit.bootstrap=40"]).comparison.notes
    assert [note for note in notes if "imported runs" in note] == [
        f"{sweep} holds imported runs: their loss unit (vocabulary) cannot be checked; compare them only with sweeps "
        "whose losses are per the same tokens"
        for sweep in pair
    ]


def test_the_figure_is_drawn_into_the_baselines_report_once_it_has_one(pair):
    a, b = pair
    (a / "report").mkdir()
    result = api.compare([a, b], ["fit.bootstrap=40"])
    assert result.figure == a / "report" / "compare.png"
    assert result.figure.read_bytes().startswith(b"\x89PNG") and (a / "report" / "compare.svg").is_file()
    assert not (b / "report").exists()
