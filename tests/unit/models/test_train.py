"""Real training, small enough for CI: determinism, resume, and learning a known entropy."""

import csv
import json
import sys
from dataclasses import replace

import pytest
import torch

import models.train
from models.config import TrainOptions
from models.train import (
    Interrupted,
    eval_steps,
    resolve_compile,
    resolve_precision,
    resolve_threads,
    train,
)
from sweep.config import compose
from sweep.plan.grids import single_run_spec
from sweep.rundir import RunDir
from tests.wandb_offline import go_offline, read_runs


def tiny_spec(*overrides):
    data = ["data=synthetic", "data.vocab_size=16", "data.synthetic_tokens=400000", "train.eval_points=4"]
    run = ["run.d_model=32", "run.n_layers=1", "run.tokens=200000", "run.batch_size=16"]
    return single_run_spec(compose([*data, *run, *overrides]))


def test_training_is_deterministic_given_the_seed(tmp_path):
    spec = tiny_spec()
    a = train(spec, RunDir(tmp_path / "a"), TrainOptions(threads=1))
    b = train(spec, RunDir(tmp_path / "b"), TrainOptions(threads=1))
    assert a["loss"] == b["loss"]
    other = train(replace(spec, seed=1), RunDir(tmp_path / "c"), TrainOptions(threads=1))
    assert other["loss"] != a["loss"]


def test_result_and_curve_follow_the_contract(tmp_path):
    spec = tiny_spec()
    run = RunDir(tmp_path / spec.run_id)
    result = train(spec, run, TrainOptions(threads=1))
    assert set(result) >= {"loss", "N", "N_total", "D", "C", "flops_per_token", "wall_time_s", "tokens_per_s", "device"}
    assert result["C"] == pytest.approx(result["D"] * result["flops_per_token"])
    assert json.loads(run.result_file.read_text())["loss"] == result["loss"]
    lines = run.curve_file.read_text().strip().splitlines()
    assert lines[0] == "step,tokens,flops,train_loss,eval_loss,lr"
    assert len(lines) == 1 + 4
    losses = [float(line.split(",")[4]) for line in lines[1:]]
    assert losses[-1] < losses[0]


def test_resuming_from_a_checkpoint_ends_where_an_uninterrupted_run_ends(tmp_path):
    spec = tiny_spec()
    full = train(spec, RunDir(tmp_path / "full" / spec.run_id), TrainOptions(threads=1))

    class Interrupt(Exception):
        pass

    run = RunDir(tmp_path / "cut" / spec.run_id)
    original = RunDir.write_curve
    calls = []

    def write_then_stop(self, rows):
        original(self, rows)
        calls.append(1)
        if len(calls) == 2:
            raise Interrupt

    RunDir.write_curve = write_then_stop
    try:
        with pytest.raises(Interrupt):
            train(spec, run, TrainOptions(threads=1))
    finally:
        RunDir.write_curve = original
    assert run.checkpoint_file.exists()
    resumed = train(spec, run, TrainOptions(threads=1))
    assert resumed["loss"] == pytest.approx(full["loss"], rel=1e-6)
    assert not run.checkpoint_file.exists()


def test_a_stop_request_checkpoints_at_that_step_and_the_resumed_run_matches(tmp_path):
    spec = tiny_spec()
    full = RunDir(tmp_path / "full" / spec.run_id)
    train(spec, full, TrainOptions(threads=1))
    stop_at = min(eval_steps(spec.steps, spec.eval_points)) + 3  # between two evals
    steps = iter(range(1, spec.steps + 1))

    run = RunDir(tmp_path / "cut" / spec.run_id)
    with pytest.raises(Interrupted) as stopped:
        train(spec, run, TrainOptions(threads=1), stop=lambda: next(steps) == stop_at)
    assert stopped.value.step == stop_at
    assert torch.load(run.checkpoint_file, weights_only=True)["step"] == stop_at
    train(spec, run, TrainOptions(threads=1), stop=lambda: False)
    assert run.read_result()["loss"] == pytest.approx(full.read_result()["loss"], rel=1e-6)
    assert run.curve_file.read_text() == full.curve_file.read_text()  # train-loss averages survive the cut too


@pytest.mark.slow
def test_a_trained_model_approaches_but_never_beats_the_entropy_rate(tmp_path):
    spec = tiny_spec("run.tokens=1500000", "run.batch_size=32", "train.lr=1e-2")
    result = train(spec, RunDir(tmp_path / "r"), TrainOptions(threads=2))
    entropy = result["entropy_rate"]
    assert result["loss"] > entropy - 0.01  # held-out loss cannot beat the source's entropy (up to sampling noise)
    assert result["loss"] < entropy * 1.05


class PlantedPickle:
    """Unpickling this calls open(marker, "w"): harmless, and visible."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_planted_pickle_checkpoint_runs_nothing_and_fails_the_run(tmp_path):
    from sweep.launch.job import run_one

    live = tmp_path / "live-marker"
    torch.save({"model": PlantedPickle(live)}, tmp_path / "probe.pt")
    torch.load(tmp_path / "probe.pt", weights_only=False)
    assert live.exists()  # the payload is real: a full unpickle runs it

    marker = tmp_path / "marker"
    spec = tiny_spec()
    run = RunDir(tmp_path / spec.run_id)
    run.write_spec(spec)
    torch.save({"model": PlantedPickle(marker), "step": 3}, run.checkpoint_file)
    assert run_one(run, TrainOptions(threads=1), "test") == "failed"
    assert not marker.exists()
    assert "checkpoint.pt holds more than tensors" in run.read_status()["reason"]
    assert not run.result_file.exists()


def test_a_final_loss_no_better_than_uniform_is_diverged_not_done(tmp_path, monkeypatch):
    import math

    import models.train
    from models.config import Diverged

    spec = tiny_spec("train.eval_points=1")
    monkeypatch.setattr(models.train, "evaluate", lambda *args: math.log(16) + 0.01)
    with pytest.raises(Diverged, match="uniform"):
        train(spec, RunDir(tmp_path / spec.run_id), TrainOptions(threads=1))
    assert not (tmp_path / spec.run_id / "result.json").exists()


def test_models_never_import_sweep():
    import subprocess
    import sys

    code = "import sys, models.train, models.data; print(sorted(m for m in sys.modules if m.split('.')[0] == 'sweep'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_decay_branch_from_a_trunk_ends_where_the_same_wsd_run_trained_alone_ends(tmp_path):
    alone = replace(tiny_spec("train.schedule=wsd", "train.decay_frac=0.25"), warmup_steps=5)
    branch_step = alone.steps - round(0.25 * alone.steps)
    tokens_per_step = alone.batch_size * alone.seq_len
    trunk = replace(alone, decay_frac=0.0, tokens=branch_step * tokens_per_step, role="trunk",
                    branch_steps=(branch_step // 2,))  # fmt: skip
    branch = replace(alone, parent=trunk.run_id, branch_step=branch_step)
    assert len({alone.run_id, trunk.run_id, branch.run_id}) == 3

    expected = train(alone, RunDir(tmp_path / "alone" / alone.run_id), TrainOptions(threads=1))
    runs = tmp_path / "runs"
    train(trunk, RunDir(runs / trunk.run_id), TrainOptions(threads=1))
    kept = sorted(p.name for p in (runs / trunk.run_id / "stable").iterdir())
    assert kept == sorted([f"step-{branch_step // 2}.pt", f"step-{branch_step}.pt"])
    got = train(branch, RunDir(runs / branch.run_id), TrainOptions(threads=1))
    assert got["loss"] == pytest.approx(expected["loss"], rel=1e-6)
    assert got["D"] == expected["D"] and got["steps"] == alone.steps
    steps = [int(line.split(",")[0]) for line in (runs / branch.run_id / "curve.csv").read_text().splitlines()[1:]]
    assert steps[0] < branch_step < steps[-1] == alone.steps  # the trunk's curve, then the decay's
    assert sum(s > branch_step for s in steps) >= 4  # the decay is evaluated at several points


def test_a_branch_whose_trunk_has_no_checkpoint_there_says_so(tmp_path):
    from models.config import CheckpointError

    spec = replace(tiny_spec("train.schedule=wsd"), parent="0123456789ab", branch_step=10)
    with pytest.raises(CheckpointError, match="trunk 0123456789ab has no stable checkpoint at step 10"):
        train(spec, RunDir(tmp_path / spec.run_id), TrainOptions(threads=1))


def test_a_trunk_continued_from_another_trunks_checkpoint_ends_where_one_long_trunk_ends(tmp_path):
    alone = replace(tiny_spec("train.schedule=wsd", "train.decay_frac=0.25"), warmup_steps=5)
    tokens_per_step = alone.batch_size * alone.seq_len
    start = alone.steps - round(0.25 * alone.steps)
    first = replace(alone, decay_frac=0.0, tokens=(start // 2) * tokens_per_step, role="trunk")
    continued = replace(first, tokens=start * tokens_per_step, parent=first.run_id, branch_step=start // 2)
    branch = replace(alone, parent=continued.run_id, branch_step=start)
    expected = train(alone, RunDir(tmp_path / "alone" / alone.run_id), TrainOptions(threads=1))
    runs = tmp_path / "runs"
    for spec in (first, continued):
        train(spec, RunDir(runs / spec.run_id), TrainOptions(threads=1))
    got = train(branch, RunDir(runs / branch.run_id), TrainOptions(threads=1))
    assert got["loss"] == pytest.approx(expected["loss"], rel=1e-6)


def test_a_run_logs_to_wandb_its_group_tags_spec_curve_and_result(tmp_path, monkeypatch):
    go_offline(monkeypatch, tmp_path)
    spec = replace(tiny_spec(), budget=1e12)
    run = RunDir(tmp_path / "my-sweep" / "runs" / spec.run_id)
    result = train(spec, run, TrainOptions(threads=1, wandb_mode="offline", wandb_group="my-sweep"))
    [logged] = read_runs(run.path)
    assert (logged.run_id, logged.name, logged.group, logged.job_type) == (
        spec.run_id,
        spec.run_id,
        "my-sweep",
        "train",
    )
    assert logged.tags == ["budget=1e+12", "d32xL1", "proxy"]
    assert logged.config == json.loads(json.dumps(spec.to_dict()))  # the spec, as JSON has it
    curve = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(run.curve_file.open())]
    assert len(logged.history) == len(curve) == 4
    for row, expected in zip(logged.history, curve, strict=True):
        assert {k: row[k] for k in expected} == pytest.approx(expected)
    assert {k: logged.summary[k] for k in result} == pytest.approx(result)


def test_on_step_hears_every_step_and_the_loss_at_each_evaluation_only(tmp_path):
    spec = tiny_spec()
    heard = []
    run = RunDir(tmp_path / spec.run_id)
    train(spec, run, TrainOptions(threads=1, on_step=lambda *report: heard.append(report)))
    total = spec.steps
    assert [step for step, *_ in heard] == list(range(1, total + 1)) and {t for _, t, *_ in heard} == {total}
    curve = run.curve_file.read_text().strip().splitlines()[1:]
    evaluated = {int(line.split(",")[0]): float(line.split(",")[4]) for line in curve}
    assert {step: loss for step, _, loss, _ in heard if loss is not None} == evaluated
    assert all(tokens_per_s > 0 for *_, tokens_per_s in heard)


def test_auto_precision_and_compile_are_bf16_and_on_for_cuda_only():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert (resolve_precision("auto", cpu), resolve_precision("auto", cuda)) == ("fp32", "bf16")
    assert resolve_precision("bf16", cpu) == "bf16" and resolve_precision("fp32", cuda) == "fp32"
    assert (resolve_compile("auto", cpu), resolve_compile("auto", cuda)) == (False, True)
    assert resolve_compile("true", cpu) and not resolve_compile("false", cuda)


def test_threads_default_to_the_jobs_allocation_not_the_node(monkeypatch):
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    monkeypatch.setattr(models.train.os, "sched_getaffinity", lambda pid: {3, 5})  # pinned to two cores
    assert resolve_threads(0) == 2
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "3")
    assert resolve_threads(0) == 3
    assert resolve_threads(7) == 7


def test_bf16_autocast_trains_on_cpu_within_a_few_percent_of_fp32(tmp_path):
    fp32_spec, bf16_spec = tiny_spec(), tiny_spec("train.precision=bf16")
    assert bf16_spec.run_id != fp32_spec.run_id  # it changes the losses, so it is part of the identity
    fp32 = train(fp32_spec, RunDir(tmp_path / "fp32"), TrainOptions(threads=1))
    bf16 = train(bf16_spec, RunDir(tmp_path / "bf16"), TrainOptions(threads=1))
    assert (fp32["precision"], bf16["precision"]) == ("fp32", "bf16")
    assert bf16["loss"] != fp32["loss"]  # autocast really ran
    assert bf16["loss"] == pytest.approx(fp32["loss"], rel=0.03)


def test_the_step_loop_reads_the_loss_back_at_evaluations_only(tmp_path, monkeypatch):
    """Host syncs from the trainer's own code (Tensor.item, bool, float) grow with evaluations, not
    steps: the same evaluations over twice the steps read back exactly as often. (AdamW on CPU reads
    its step counters; that is torch's and never a sync there, and fused AdamW on CUDA does not.)"""
    reads = []

    def counted(name):
        original = getattr(torch.Tensor, name)

        def read(self, *args):
            if sys._getframe(1).f_globals.get("__name__") == "models.train":
                reads.append(name)
            return original(self, *args)

        monkeypatch.setattr(torch.Tensor, name, read)

    for name in ("item", "__bool__", "__float__"):
        counted(name)
    short, long = tiny_spec("run.tokens=51200"), tiny_spec("run.tokens=102400")  # 25 and 50 steps, 4 evaluations each
    train(short, RunDir(tmp_path / "short"), TrainOptions(threads=1))
    counted_short = len(reads)
    train(long, RunDir(tmp_path / "long"), TrainOptions(threads=1))
    assert long.steps == 2 * short.steps and counted_short > 0
    assert len(reads) - counted_short == counted_short


def test_fused_adamw_is_chosen_on_cuda_only(tmp_path, monkeypatch):
    chosen = []
    build = models.train.build_optimizer

    def spy(model, spec, fused=False):
        chosen.append(fused)
        return build(model, spec, fused)

    monkeypatch.setattr(models.train, "build_optimizer", spy)
    train(tiny_spec("run.tokens=5120"), RunDir(tmp_path / "r"), TrainOptions(threads=1))
    assert chosen == [False]
    model = models.train.GPT(models.train.model_config(tiny_spec()))
    assert models.train.build_optimizer(model, tiny_spec()).defaults["fused"] is None  # torch's CPU default
    assert models.train.build_optimizer(model, tiny_spec(), fused=True).defaults["fused"] is True


def test_result_records_flops_per_second_and_mfu_against_the_configured_peak(tmp_path):
    spec = tiny_spec("run.tokens=10240")
    result = train(spec, RunDir(tmp_path / "a"), TrainOptions(threads=1))
    assert result["flops_per_s"] == pytest.approx(result["tokens_per_s"] * result["flops_per_token"])
    assert result["mfu"] is None  # no peak known for a CPU
    assert result["device"] == "cpu" and result["device_name"] and result["compile"] == "off"
    peaked = train(spec, RunDir(tmp_path / "b"), TrainOptions(threads=1, peak_flops=1e12))
    assert peaked["mfu"] == pytest.approx(peaked["flops_per_s"] / 1e12)
    assert json.loads((tmp_path / "b" / "result.json").read_text())["mfu"] == peaked["mfu"]


def test_a_compile_failure_trains_eager_and_says_why(tmp_path, monkeypatch):
    spec = tiny_spec("run.tokens=10240")
    eager = train(spec, RunDir(tmp_path / "eager"), TrainOptions(threads=1))

    def broken(model):
        def compiled(*batch):
            raise RuntimeError("no C compiler found\nmore detail")

        return compiled

    monkeypatch.setattr(torch, "compile", broken)
    with pytest.warns(UserWarning, match="torch.compile failed, training eager instead: RuntimeError: no C compiler"):
        fallback = train(spec, RunDir(tmp_path / "fallback"), TrainOptions(threads=1, compile="true"))
    assert fallback["compile"] == "failed: RuntimeError: no C compiler found"
    assert fallback["loss"] == eager["loss"]  # the probe step changed nothing


@pytest.mark.slow
def test_a_compiled_run_on_cpu_trains_to_about_the_eager_loss(tmp_path):
    spec = tiny_spec("run.tokens=51200")
    eager = train(spec, RunDir(tmp_path / "eager"), TrainOptions(threads=1))
    compiled = train(spec, RunDir(tmp_path / "compiled"), TrainOptions(threads=1, compile="true"))
    assert compiled["compile"] == "on"
    assert compiled["loss"] == pytest.approx(eager["loss"], rel=1e-3)
