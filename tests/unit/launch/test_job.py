"""The job side: one claim per run, failures recorded as states, never raised."""

import threading
import time
from dataclasses import replace

from models.config import TrainOptions
from sweep.config import compose
from sweep.launch.job import claim, run_one, train_options
from sweep.plan.grids import single_run_spec
from sweep.rundir import RunDir


def planned_run(tmp_path, *overrides) -> RunDir:
    data = ["data=synthetic", "data.vocab_size=16", "data.synthetic_tokens=200000", "train.eval_points=2"]
    spec = single_run_spec(compose([*data, "run.d_model=16", "run.n_layers=1", "run.tokens=40000", *overrides]))
    run = RunDir(tmp_path / spec.run_id)
    run.write_spec(spec)
    return run


def test_a_run_claimed_by_a_live_job_is_not_trained_again(tmp_path):
    run = planned_run(tmp_path)
    with claim(run) as first:
        assert first
        with claim(run) as second:
            assert not second
        assert run_one(run, TrainOptions(threads=1), "test") == "planned"  # skipped: someone holds it
        assert not run.result_file.exists()
    assert run_one(run, TrainOptions(threads=1), "test") == "done"
    assert run_one(run, TrainOptions(threads=1), "test") == "done"  # finished: not trained twice
    history = [h["state"] for h in run.read_status()["history"]]
    assert history == ["running", "done"]


def test_divergence_is_a_state_with_its_reason(tmp_path):
    run = planned_run(tmp_path, "run.lr=1e6", "train.grad_clip=1e9")
    assert run_one(run, TrainOptions(threads=1), "test") == "diverged"
    assert "non-finite" in run.read_status()["reason"]


def test_a_crash_inside_training_is_a_failed_state(tmp_path):
    spec = replace(planned_run(tmp_path).read_spec(), n_heads=3)  # 16 is not divisible by 3: no model
    run = RunDir(tmp_path / spec.run_id)
    run.write_spec(spec)
    assert run_one(run, TrainOptions(threads=1), "test") == "failed"
    assert "d_model must be divisible" in run.read_status()["reason"]


def test_the_noop_trainer_records_a_result_without_training(tmp_path):
    from sweep.launch.noop import LAW
    from sweep.plan.flops import spec_counts

    run = planned_run(tmp_path)
    assert run_one(run, TrainOptions(trainer="noop"), "test") == "done"
    result = run.read_result()
    n = spec_counts(run.read_spec())[0]
    assert result["loss"] == float(LAW.loss(n, result["D"])) and result["device"] == "noop"


def test_a_run_cancelled_while_training_stops_and_stays_failed(tmp_path):
    run = planned_run(tmp_path, "run.tokens=3000000")  # ~10 s of training: far longer than the cancel takes
    training = threading.Thread(target=run_one, args=(run, TrainOptions(threads=1), "test"))
    training.start()
    deadline = time.time() + 60
    while not (run.status_file.exists() and run.state == "running") and time.time() < deadline:
        time.sleep(0.05)
    run.set_state("failed", reason="cancelled by `sweep cancel`")  # what `sweep cancel` writes
    cancelled_at = time.time()
    training.join()
    assert time.time() - cancelled_at < 5  # it noticed within a step or a second, not at the end
    assert run.state == "failed" and not run.result_file.exists()


def test_an_edited_spec_fails_its_run_without_training(tmp_path):
    run = planned_run(tmp_path)
    run.spec_file.write_text(run.spec_file.read_text().replace('"seed": 0', '"seed": 7'))
    assert run_one(run, TrainOptions(threads=1), "test") == "failed"
    assert "describes run" in run.read_status()["reason"] and not run.result_file.exists()


def test_train_options_carry_compile_and_the_peak_whatever_case_yaml_gave_compile():
    options = train_options(compose(["train.compile=true", "train.peak_flops=1e15"]), "local", "demo")
    assert (options.compile, options.peak_flops) == ("true", 1e15)
    assert train_options(compose([]), "local", "demo").compile == "auto"
