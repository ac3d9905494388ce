import json

from sweep.rundir import RunDir, atomic_write_json


def test_atomic_write_leaves_only_the_final_file(tmp_path):
    target = tmp_path / "x" / "status.json"
    atomic_write_json(target, {"a": 1})
    atomic_write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert [p.name for p in target.parent.iterdir()] == ["status.json"]


def test_state_history_and_reason(tmp_path):
    run = RunDir(tmp_path / "abc")
    assert run.state == "planned"
    run.set_state("queued")
    run.set_state("running")
    run.set_state("failed", reason="boom")
    status = run.read_status()
    assert status["state"] == "failed" and status["reason"] == "boom"
    assert [h["state"] for h in status["history"]] == ["queued", "running", "failed"]
    run.set_state("queued")
    assert "reason" not in run.read_status()


def test_torn_status_counts_as_planned(tmp_path):
    run = RunDir(tmp_path / "abc")
    run.path.mkdir()
    run.status_file.write_text('{"state": "runn')
    assert run.state == "planned"
