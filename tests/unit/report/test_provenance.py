from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from importlib import metadata

from sweep.report.provenance import PACKAGES, provenance, versions


def test_versions_name_python_and_every_package():
    found = versions()
    assert set(found) == {"python", *PACKAGES}
    assert found["scaling-sweep"] == metadata.version("scaling-sweep")
    assert found["numpy"] == metadata.version("numpy")
    assert found["python"].count(".") == 2


def test_a_record_holds_the_config_the_runs_and_the_utc_date(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("sweep:\n  kind: isoflop  # <script>\n")
    record = provenance(config, ["b2", "a1"])
    assert record.config == config.read_text()
    assert record.run_ids == ["a1", "b2"]
    made = datetime.fromisoformat(record.date)
    assert made.utcoffset() == timedelta(0)
    assert abs(datetime.now(timezone.utc) - made) < timedelta(minutes=1)
    assert json.loads(json.dumps(record.to_dict())) == {
        "config": record.config, "versions": record.versions, "commit": record.commit, "date": record.date,
        "run_ids": ["a1", "b2"],
    }  # fmt: skip


def test_slurm_setup_lines_are_never_shown(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("launcher:\n  slurm:\n    partition: gpu\n    setup:\n    - export HF_TOKEN=hf_secret\n")
    shown = provenance(config, []).config
    assert "hf_secret" not in shown and "partition: gpu" in shown and "<1 lines not shown>" in shown
