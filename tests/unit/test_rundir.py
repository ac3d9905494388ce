import json

import pytest

from sweep.config import compose
from sweep.plan.grids import make_plan
from sweep.rundir import RunDir, atomic_write_bytes, atomic_write_json

RESULT = {"N": 1000, "D": 2e5, "C": 1.2e9, "loss": 3.0}


def test_atomic_write_leaves_only_the_final_file(tmp_path):
    target = tmp_path / "x" / "status.json"
    atomic_write_json(target, {"a": 1})
    atomic_write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert [p.name for p in target.parent.iterdir()] == ["status.json"]


def test_atomic_bytes_are_written_as_given_and_a_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "figure.png"
    atomic_write_bytes(target, b"\x89PNG\x00\xff")
    assert target.read_bytes() == b"\x89PNG\x00\xff"
    with pytest.raises(TypeError):
        atomic_write_bytes(target, "not bytes")  # fails mid-write, after the temporary file was made
    assert target.read_bytes() == b"\x89PNG\x00\xff"
    assert [p.name for p in tmp_path.iterdir()] == ["figure.png"]


def test_atomic_files_get_the_mode_of_any_other_file_of_the_user(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")  # created through the umask, as every other program's files are
    atomic_write_json(tmp_path / "status.json", {"a": 1})
    assert (tmp_path / "status.json").stat().st_mode == plain.stat().st_mode  # not mkstemp's owner-only 0600


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


def test_a_valid_result_is_done_whatever_the_status_says(tmp_path):
    run = RunDir(tmp_path / "0123456789ab")
    atomic_write_json(run.result_file, {**RESULT, "run_id": run.run_id})
    run.status_file.write_text('{"state": "do')  # torn
    assert run.state == "done"
    run.status_file.unlink()
    assert run.state == "done"
    atomic_write_json(run.status_file, {"state": "running"})  # the job died between result and status
    assert run.state == "done" and "recovered" in run.read_status()


def test_an_invalid_or_foreign_result_does_not_make_a_run_done(tmp_path):
    run = RunDir(tmp_path / "0123456789ab")
    atomic_write_json(run.status_file, {"state": "running"})
    for bad in ({**RESULT, "loss": float("nan")}, {**RESULT, "run_id": "ffffffffffff"}, {**RESULT, "N": True}, [1]):
        atomic_write_json(run.result_file, bad)
        assert run.state == "running", bad
        assert run.result_problem()
    run.result_file.write_text('{"loss": 3.0, "N": ')
    assert run.state == "running" and "not valid JSON" in run.result_problem()


def test_spec_problems_are_named(tmp_path):
    spec, other = make_plan(compose(["sweep=smoke"])).specs[:2]
    run = RunDir(tmp_path / spec.run_id)
    assert run.spec_problem() == "spec.json is missing"
    run.write_spec(other)  # copied from another run
    assert "describes run" in run.spec_problem()
    run.spec_file.write_text("{not json")
    assert "unreadable" in run.spec_problem()
    run.write_spec(spec)
    assert run.spec_problem() is None


def test_a_state_written_unless_changed_is_not_written_over_a_newer_one(tmp_path):
    run = RunDir(tmp_path / "0123456789ab")
    run.set_state("running", pid=1)
    seen = run.read_status()  # `sweep status` looks: the job is dead ...
    run.set_state("queued")  # ... but a launch queues the run again before status writes
    assert not run.set_state("failed", unless_changed_since=seen, reason="job died")
    assert run.state == "queued"
    assert run.set_state("failed", unless_changed_since=run.read_status(), reason="job died")
    assert run.state == "failed"
