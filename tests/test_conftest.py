"""The reference-data fixture: a skip on a developer's machine, a failure where CI requires the data."""

from __future__ import annotations

import pytest

from tests.conftest import reference_data


def test_missing_reference_data_skips_by_default(tmp_path, monkeypatch):
    monkeypatch.delenv("SWEEP_TEST_EPOCH", raising=False)
    with pytest.raises(pytest.skip.Exception):
        reference_data(tmp_path / "absent.csv")


def test_missing_reference_data_fails_when_required(tmp_path, monkeypatch):
    monkeypatch.setenv("SWEEP_TEST_EPOCH", "required")
    with pytest.raises(pytest.fail.Exception, match="SWEEP_TEST_EPOCH=required"):
        reference_data(tmp_path / "absent.csv")


def test_present_reference_data_is_returned(tmp_path, monkeypatch):
    monkeypatch.setenv("SWEEP_TEST_EPOCH", "required")
    (tmp_path / "data.csv").write_text("N\n1\n")
    assert reference_data(tmp_path / "data.csv") == tmp_path / "data.csv"
