import errno
import json
import math
import os
import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import sweep.fit.cache as cache_module
from sweep.config import Counting, FitConfig, FitForm
from sweep.fit.cache import MAX_ENTRIES, FitCache, cached_fit_all, checksum, decode, encode, fit_key
from sweep.fit.errors import FitError
from sweep.fit.report import fit_all
from tests.unit.fit.test_aspect import isoflop_shaped_runs, widthdepth_runs
from tests.unit.fit.test_envelope import with_curves
from tests.unit.fit.test_hparams import grid
from tests.unit.fit.test_isoflop import TRUTH, isoflop_runs
from tests.unit.fit.test_report import chinchilla_runs


def same(a, b) -> bool:
    """Equal values of equal types (a tuple is not a list), NaN equal to NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


def round_trip(report):
    return decode(json.loads(json.dumps(encode(report))))


def assert_round_trips(report):
    decoded = round_trip(report)
    assert same(decoded.to_dict(), report.to_dict())
    assert json.dumps(encode(decoded)) == json.dumps(encode(report))  # every field, bootstrap refits included


def test_a_report_with_every_approach_and_its_bootstrap_round_trips():
    runs, curves = with_curves(isoflop_runs(TRUTH, [1e18, 1e19, 1e20, 1e21], sizes=7))
    forms = [FitForm.chinchilla, FitForm.compute, FitForm.kaplan_n]  # as a composed config has them: enums
    report = fit_all(runs, FitConfig(bootstrap=20, forms=forms), curves)
    assert report.envelope and report.isoflop and report.parametric and list(report.forms) == forms[1:]
    assert len(report.parametric_samples) > 10
    assert_round_trips(report)
    decoded = round_trip(report)
    assert decoded.parametric.theta.dtype == report.parametric.theta.dtype
    assert np.array_equal(decoded.parametric.theta, report.parametric.theta)
    assert decoded.parametric_samples.attempted == report.parametric_samples.attempted


def test_a_report_with_errors_and_unidentified_fits_round_trips_inf_and_nan_exactly():
    config = FitConfig(bootstrap=10, forms=["chinchilla"])
    unfitted = fit_all(widthdepth_runs(optimum=1000.0), config, allow_unfitted=True)
    assert unfitted.parametric is None and unfitted.errors and not unfitted.aspects[0].identified
    assert_round_trips(unfitted)
    report = fit_all(chinchilla_runs(TRUTH), config)
    overflowed = replace(report.parametric.law, E=float("nan"), A=float("inf"), beta=-0.05)
    report = replace(report, parametric=replace(report.parametric, law=overflowed, objective=np.float64(-np.inf)))
    assert "approach3" in report.unidentified()
    assert_round_trips(report)
    decoded = round_trip(report).parametric
    assert math.isnan(decoded.law.E) and np.isposinf(decoded.law.A) and np.isneginf(decoded.objective)
    assert type(decoded.objective) is np.float64  # numpy scalars stay numpy: they overflow to inf, never raise


def test_a_report_with_lr_batch_optima_and_aspects_round_trips():
    isoflop = isoflop_runs(TRUTH, [1e18, 1e19, 1e20]).assign(lr=1e-3, batch_size=32)
    report = fit_all(pd.concat([isoflop, grid()], ignore_index=True), FitConfig(bootstrap=5))
    assert report.hparams.lr_law is not None and len(report.hparams.samples) == 5
    assert_round_trips(report)
    shaped = pd.concat([isoflop_shaped_runs(budgets=(1e10, 1e11, 1e12), span=30.0), widthdepth_runs(budget=6e12)])
    report = fit_all(shaped.reset_index(drop=True), FitConfig(bootstrap=10, forms=["chinchilla"]))
    assert report.aspects and report.aspects[0].interval is not None
    assert_round_trips(report)


def test_only_registered_types_are_encoded_or_decoded():
    with pytest.raises(TypeError, match="Path"):
        encode({"where": cache_module.Path("/tmp")})
    for payload in ({"dataclass": "Popen", "fields": {}}, {"enum": "Path", "value": "/"},
                    {"scalar": "O", "value": 1}, {"ndarray": "<U3", "shape": [1], "values": ["abc"]},
                    {"dataclass": "PowerLaw", "fields": {"coefficient": 1.0}}, {"pickle": "gASV"}):  # fmt: skip
        with pytest.raises(cache_module.CacheFormatError):
            decode(payload)


RUNS = chinchilla_runs(TRUTH).assign(run_id=lambda t: [f"r{i}" for i in range(len(t))])
CONFIG = FitConfig(bootstrap=4, forms=["chinchilla"])


def test_the_key_is_the_same_whatever_order_the_runs_come_in():
    shuffled = RUNS.sample(frac=1, random_state=0)
    assert fit_key(shuffled, CONFIG) == fit_key(RUNS, CONFIG)
    no_ids = RUNS.drop(columns="run_id")
    assert fit_key(no_ids.sample(frac=1, random_state=1), CONFIG) == fit_key(no_ids, CONFIG)
    with_unread_column = RUNS.assign(wall_time_s=1.0)
    assert fit_key(with_unread_column, CONFIG) == fit_key(RUNS, CONFIG)


def test_the_key_changes_with_anything_the_fit_reads(monkeypatch):
    runs, curves = with_curves(isoflop_runs(TRUTH, [1e18, 1e19, 1e20], sizes=5))
    key = fit_key(runs, CONFIG, curves)
    changed_loss = runs.assign(loss=runs["loss"].where(runs.index != 3, runs["loss"] * 1.001))
    new_run = pd.concat([runs, runs.tail(1).assign(run_id="new")], ignore_index=True)
    changed_curve = curves.assign(eval_loss=curves["eval_loss"].where(curves.index != 0, 9.0))
    variants = [
        fit_key(changed_loss, CONFIG, curves), fit_key(new_run, CONFIG, curves),
        fit_key(runs.assign(role="target"), CONFIG, curves), fit_key(runs.assign(lr=1e-3), CONFIG, curves),
        fit_key(runs, CONFIG, changed_curve), fit_key(runs, CONFIG),
        fit_key(runs, replace(CONFIG, seed=1), curves), fit_key(runs, replace(CONFIG, counting=Counting.total), curves),
        fit_key(runs, CONFIG, curves, allow_unfitted=True),
    ]  # fmt: skip
    assert key not in variants and len(set(variants)) == len(variants)
    other_runs_curves = pd.concat([curves, curves.assign(run_id="elsewhere")])
    assert fit_key(runs, CONFIG, other_runs_curves) == key  # curves of runs not fitted are not read
    monkeypatch.setattr(cache_module, "code_version", lambda: "other code")
    assert fit_key(runs, CONFIG, curves) != key


def counting_fit_all(monkeypatch) -> dict:
    calls = {"n": 0}

    def counted(*args, **kwargs):
        calls["n"] += 1
        return fit_all(*args, **kwargs)

    monkeypatch.setattr(cache_module, "fit_all", counted)
    return calls


def test_a_cached_fit_is_read_not_redone(tmp_path, monkeypatch):
    calls = counting_fit_all(monkeypatch)
    cache = FitCache(tmp_path / "cache")
    first = cached_fit_all(RUNS, CONFIG, cache=cache)
    again = cached_fit_all(RUNS.sample(frac=1, random_state=0), CONFIG, cache=cache)
    assert calls["n"] == 1 and same(again.to_dict(), first.to_dict())
    cached_fit_all(RUNS, CONFIG, allow_unfitted=True, cache=cache)  # a fit that did not need it is the same
    assert calls["n"] == 1
    cached_fit_all(RUNS, replace(CONFIG, seed=1), cache=cache)
    cached_fit_all(RUNS, CONFIG)  # no cache: fit_all
    assert calls["n"] == 3


def test_an_unfitted_report_is_not_reused_where_a_fit_must_succeed(tmp_path):
    cache = FitCache(tmp_path / "cache")
    few = RUNS.head(3)
    unfitted = cached_fit_all(few, CONFIG, allow_unfitted=True, cache=cache)
    assert unfitted.parametric is None and unfitted.isoflop is None
    with pytest.raises(FitError, match="too few points"):
        cached_fit_all(few, CONFIG, cache=cache)
    assert len(list(cache.directory.iterdir())) == 1  # the error was not cached


def test_a_torn_edited_or_foreign_file_is_a_miss_and_is_overwritten(tmp_path, monkeypatch):
    cache = FitCache(tmp_path / "cache")
    report = cached_fit_all(RUNS, CONFIG, cache=cache)
    key = fit_key(RUNS, CONFIG)
    path = cache.file(key)
    good = path.read_text()
    stored = json.loads(good)
    foreign = {"dataclass": "Popen", "fields": {"args": ["true"]}}
    edited = json.loads(good)
    edited["report"]["fields"]["n_runs"] += 1  # the checksum no longer matches
    retyped = json.loads(re.sub(r'"E": [^,]+', '"E": "abc"', json.dumps(stored["report"]), count=1))
    tampered = {
        "a wrong type under a matching checksum": json.dumps(
            {**stored, "report": retyped, "checksum": checksum(retyped)}
        ),  # fmt: skip
        "garbage": "\x00\x01 not json",
        "truncated": good[: len(good) // 2],
        "unregistered type": json.dumps({**stored, "report": foreign, "checksum": checksum(foreign)}),
        "edited value": json.dumps(edited),
        "other format": json.dumps({**stored, "format": stored["format"] + 1}),
        "other key": json.dumps({**stored, "key": "0" * 64}),
        "not an object": "[1, 2]",
        "not a report": json.dumps({**stored, "report": [], "checksum": checksum([])}),
    }
    calls = counting_fit_all(monkeypatch)
    for n, (what, text) in enumerate(tampered.items(), start=1):
        path.write_text(text)
        assert cache.get(key) is None, what
        assert same(cached_fit_all(RUNS, CONFIG, cache=cache).to_dict(), report.to_dict()), what
        assert calls["n"] == n and path.read_text() == good, what  # refitted and written again


def test_a_write_that_fails_is_skipped_and_the_fit_returned(tmp_path, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache directory would be")
    report = cached_fit_all(RUNS, CONFIG, cache=FitCache(blocked / "cache"))
    assert report.parametric is not None

    def disk_full(path, text):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache_module, "atomic_write_text", disk_full)
    cache = FitCache(tmp_path / "cache")
    assert cached_fit_all(RUNS, CONFIG, cache=cache).parametric is not None
    assert cache.get(fit_key(RUNS, CONFIG)) is None


def test_the_oldest_entries_are_removed_beyond_the_limit(tmp_path):
    cache = FitCache(tmp_path / "cache")
    report = fit_all(RUNS, FitConfig(bootstrap=0, forms=["chinchilla"]))
    keys = [f"{i:064x}" for i in range(MAX_ENTRIES + 2)]
    for i, key in enumerate(keys):
        cache.put(key, report)
        os.utime(cache.file(key), ns=(i * 10**9, i * 10**9))  # file times are coarse: make the order plain
        assert len(list(cache.directory.iterdir())) <= MAX_ENTRIES
    assert sorted(p.stem for p in cache.directory.iterdir()) == keys[2:]
    assert cache.get(keys[2]) is not None  # reading keeps an entry: the next oldest goes instead
    cache.put("f" * 64, report)
    assert cache.get(keys[2]) is not None and cache.get(keys[3]) is None


def test_a_fit_reports_its_progress_and_a_cached_one_nothing(tmp_path):
    cache = FitCache(tmp_path / "cache")
    reports = []
    cached_fit_all(RUNS, CONFIG, cache=cache, progress=lambda *report: reports.append(report))
    assert ("Approach 3 bootstrap", CONFIG.bootstrap, CONFIG.bootstrap) in reports
    reports.clear()
    cached_fit_all(RUNS, CONFIG, cache=cache, progress=lambda *report: reports.append(report))
    assert reports == []
