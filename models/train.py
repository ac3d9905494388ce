"""Train one proxy run described by a RunSpec, writing only inside its run directory.

Deterministic given the spec: the batch at step t is drawn from a generator seeded by (seed, t),
so a run resumed from a checkpoint sees exactly the batches an uninterrupted run would.

At GPU speed on CUDA: bf16 autocast (spec.precision auto or bf16), torch.compile (options.compile),
fused AdamW, and no host sync inside the step loop: the training loss is summed on the device and
read back only at evaluations, so the host prepares the next batch (pinned, copied without waiting)
while the GPU still runs the current step. On CPU the defaults (fp32, eager) train exactly as before.
"""

from __future__ import annotations

import math
import os
import pickle
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from models.config import (
    CheckpointError,
    DataError,
    Diverged,
    Interrupted,
    TrainOptions,
    model_config,
    shape_counts,
)
from models.data import TokenData, load
from models.gpt import GPT
from models.hardware import device_name, peak_flops
from models.schedules import Schedule, spec_schedule
from models.tracking import RunLogger

if TYPE_CHECKING:  # handed in by the caller: models never imports sweep at run time
    from sweep.rundir import RunDir
    from sweep.spec import RunSpec


def resolve_threads(requested: int) -> int:
    """Threads for torch's CPU kernels: as configured, else the job's allocation (SLURM's CPUs per
    task, or the cores this process may run on), never the whole node: runs sharing a node would
    oversubscribe its cores."""
    if requested > 0:
        return requested
    return int(os.environ.get("SLURM_CPUS_PER_TASK", 0)) or len(os.sched_getaffinity(0))


def resolve_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def resolve_precision(requested: str, device: torch.device) -> str:
    """auto: bf16 autocast on CUDA, fp32 elsewhere (CPU results stay bit-for-bit as before)."""
    if requested == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    return requested


def resolve_compile(requested: str, device: torch.device) -> bool:
    """auto: compile on CUDA only (on CPU it costs more time than short runs save, and changes their losses)."""
    return device.type == "cuda" if requested == "auto" else requested == "true"


def set_matmul_precision(device: torch.device, precision: str) -> None:
    """TF32 for the matmuls left in fp32 under bf16 autocast (evaluation); an fp32 run stays IEEE fp32."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = precision == "bf16"


def autocast(device: torch.device, precision: str) -> torch.autocast:
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def compile_model(
    model: GPT, batch: tuple[torch.Tensor, torch.Tensor], device: torch.device, precision: str
) -> tuple[Callable, str]:
    """The model compiled, with "on"; or, when compiling fails, the eager model with "failed: why"
    (and a warning). Compiling is lazy, so one forward and backward on `batch` finds out (and warms
    both up); the gradients are dropped, and no parameter changes."""
    try:
        compiled = torch.compile(model)
        with autocast(device, precision):
            _, loss = compiled(*batch)
        loss.backward()
    except Exception as exc:  # noqa: BLE001 - whatever breaks the compiler, eager training still works
        first_line = (str(exc).strip().splitlines() or [""])[0]
        reason = f"{type(exc).__name__}: {first_line}"
        warnings.warn(f"torch.compile failed, training eager instead: {reason}", stacklevel=2)
        compiled, state = model, f"failed: {reason}"
    else:
        state = "on"
    model.zero_grad(set_to_none=True)
    return compiled, state


def train_batch(data: TokenData, spec: RunSpec, step: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch of `step` on the device. On CUDA it goes through pinned memory without waiting for the
    copy: with no sync in the step loop, the host makes batch t+1 while the GPU still runs step t."""
    x, y = data.batch("train", spec.batch_size, spec.seq_len, np.random.default_rng([spec.seed, step]))
    if device.type != "cuda":
        return x, y
    return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)


def load_data(spec: RunSpec) -> TokenData:
    d = spec.data
    return load(
        d.source, d.path, d.vocab_size, d.val_fraction, spec.seq_len,
        d.markov_order, d.zipf_exponent, d.synthetic_seed, d.synthetic_tokens,
    )  # fmt: skip


def build_optimizer(model: GPT, spec: RunSpec, fused: bool = False) -> torch.optim.AdamW:
    """AdamW in two groups: the hidden matrices, with weight decay, and the rest (embeddings, norms),
    without. The rest trains at the width-independent base LR, spec.lr * d_model / lr_ref_width
    (train.lr when the plan set spec.lr); the hidden matrices at spec.lr (base LR x lr_ref_width /
    d_model) under mup and mup_lr, at the base LR under standard. Under mup their decay grows with
    width, so that LR x decay, the shrink per step of decoupled decay, is width-independent."""
    width_ratio = spec.d_model / spec.lr_ref_width
    base_lr = spec.lr * width_ratio
    hidden_lr, hidden_decay = {
        "mup": (spec.lr, spec.weight_decay * width_ratio),
        "mup_lr": (spec.lr, spec.weight_decay),
        "standard": (base_lr, spec.weight_decay),
    }[spec.parameterization]
    hidden = model.hidden_matrices()
    hidden_ids = {id(p) for p in hidden}
    other = [p for p in model.parameters() if id(p) not in hidden_ids]
    groups = [
        {"params": hidden, "lr": hidden_lr, "weight_decay": hidden_decay, "peak_lr": hidden_lr},
        {"params": other, "lr": base_lr, "weight_decay": 0.0, "peak_lr": base_lr},
    ]
    # fused (one kernel for all parameters) is for CUDA; None keeps torch's default, and CPU results as before
    return torch.optim.AdamW(groups, betas=(spec.beta1, spec.beta2), eps=1e-8, fused=fused or None)


DECAY_EVALS = 4  # extra evaluations spread over a wsd decay: the curve law needs its shape


def eval_steps(total_steps: int, points: int) -> set[int]:
    """Steps after which to evaluate: evenly spaced in steps, always including the last."""
    return {max(1, round(total_steps * (i + 1) / points)) for i in range(points)}


def run_eval_steps(spec: RunSpec, schedule: Schedule) -> set[int]:
    """A run's evaluations: evenly spaced, plus a trunk's branch points and a few within a decay."""
    steps = eval_steps(schedule.total_steps, spec.eval_points) | set(spec.branch_steps)
    if schedule.decay_steps:
        start, length = schedule.decay_start, schedule.decay_steps
        steps |= {start + max(1, round(length * (i + 1) / DECAY_EVALS)) for i in range(DECAY_EVALS)}
    return {s for s in steps if 0 < s <= schedule.total_steps}


def stable_checkpoint(trunk_dir: Path, step: int) -> Path:
    """Where a trunk keeps its stable-phase state at `step` for the branches that start there."""
    return trunk_dir / "stable" / f"step-{step}.pt"


def branch_start(spec: RunSpec, run_dir: RunDir, device: torch.device) -> dict:
    """The state a decay branch (or a trunk's continuation) starts from: its parent's stable
    checkpoint at spec.branch_step, with the parent's curve up to there."""
    trunk_dir = run_dir.path.parent / spec.parent
    path = stable_checkpoint(trunk_dir, spec.branch_step)
    if not path.exists():
        raise CheckpointError(
            f"trunk {spec.parent} has no stable checkpoint at step {spec.branch_step} ({path}); "
            "train the trunk first (sweep launch trains it before its branches)"
        )
    state = load_checkpoint(path, device)
    state["curve"] = [row for row in state["curve"] if row["step"] <= spec.branch_step]
    return state


@torch.no_grad()
def evaluate(model: GPT, windows: tuple[torch.Tensor, torch.Tensor], device: torch.device) -> float:
    model.eval()
    inputs, targets = windows
    total = 0.0
    for start in range(0, len(inputs), 64):
        x, y = inputs[start : start + 64].to(device), targets[start : start + 64].to(device)
        _, loss = model(x, y)
        total += loss.item() * len(x)
    model.train()
    return total / len(inputs)


def load_checkpoint(path: Path, device: torch.device) -> dict:
    """A checkpoint written by save_checkpoint. Loaded with weights_only: a run directory may sit on
    a shared filesystem, and a pickle planted there must never run code in the job that resumes."""
    try:
        with warnings.catch_warnings():  # torch warns before it refuses; the refusal says it all
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{path.name} holds more than tensors and plain values, so it was not loaded; "
            "delete it to train the run from the start"
        ) from None


def save_checkpoint(
    path: Path, model: GPT, optimizer: torch.optim.Optimizer, step: int, curve: list, train_loss: tuple[float, int]
) -> None:
    """`train_loss` is the running (sum, count) since the last eval, so a resumed curve is unchanged."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step, "curve": curve,
             "train_loss": train_loss}  # fmt: skip
    torch.save(state, tmp)
    os.replace(tmp, path)


def train(
    spec: RunSpec, run_dir: RunDir, options: TrainOptions = TrainOptions(), stop: Callable[[], bool] | None = None
) -> dict:
    """Train, evaluate and record one run. Returns result.json's content; raises Diverged or DataError.
    `stop` is asked after every step: when it says so, training checkpoints there and raises Interrupted."""
    threads = resolve_threads(options.threads)
    torch.set_num_threads(threads)
    device = resolve_device(options.device)
    precision = resolve_precision(spec.precision, device)
    set_matmul_precision(device, precision)
    torch.manual_seed(spec.seed)
    data = load_data(spec)
    if spec.data.vocab_size < data.vocab_size:
        raise DataError(f"data needs a vocabulary of {data.vocab_size}, the spec has {spec.data.vocab_size}")

    config = model_config(spec)
    n, n_total, fpt = shape_counts(config)
    model = GPT(config).to(device)
    optimizer = build_optimizer(model, spec, fused=device.type == "cuda")
    schedule = spec_schedule(spec)
    total_steps = schedule.total_steps
    tokens_per_step = spec.batch_size * spec.seq_len
    evals = run_eval_steps(spec, schedule)
    keep = {*spec.branch_steps, total_steps} if spec.role == "trunk" else set()  # stable checkpoints
    eval_windows = data.eval_windows(spec.eval_sequences, spec.seq_len)

    step, curve, (train_loss_sum, train_loss_count) = 0, [], (0.0, 0)
    state = None
    if options.checkpoint and run_dir.checkpoint_file.exists():
        state = load_checkpoint(run_dir.checkpoint_file, device)
    elif spec.parent:
        state = branch_start(spec, run_dir, device)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, curve, (train_loss_sum, train_loss_count) = state["step"], state["curve"], state["train_loss"]

    forward, compiled = model, "off"
    if resolve_compile(options.compile, device) and step < total_steps:
        forward, compiled = compile_model(model, train_batch(data, spec, step, device), device, precision)
    # float64, added to in step order: the same sums as Python floats of loss.item() gave
    train_loss_sum = torch.tensor(train_loss_sum, dtype=torch.float64, device=device)
    logger = RunLogger.start(options, spec, run_dir)
    started = time.time()
    start_step = step
    while step < total_steps:
        multiplier = schedule.multiplier(step)
        for group in optimizer.param_groups:
            group["lr"] = group["peak_lr"] * multiplier
        with autocast(device, precision):
            _, loss = forward(*train_batch(data, spec, step, device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), spec.grad_clip)
        optimizer.step()
        step += 1
        train_loss_sum += loss.detach()
        train_loss_count += 1
        if step in evals:
            train_loss = train_loss_sum.item() / train_loss_count  # the loop's only read-back
            if not math.isfinite(train_loss):
                raise Diverged(f"non-finite training loss by step {step}")
            eval_loss = evaluate(model, eval_windows, device)
            if not math.isfinite(eval_loss):
                raise Diverged(f"non-finite eval loss at step {step}")
            row = {
                "step": step,
                "tokens": step * tokens_per_step,
                "flops": step * tokens_per_step * fpt,
                "train_loss": train_loss,
                "eval_loss": eval_loss,
                "lr": optimizer.param_groups[0]["lr"],
            }
            curve.append(row)
            train_loss_sum.zero_()
            train_loss_count = 0
            run_dir.write_curve(curve)
            logger.log(row, step=step)
            if step in keep:
                save_checkpoint(stable_checkpoint(run_dir.path, step), model, optimizer, step, curve, (0.0, 0))
            if options.checkpoint and step < total_steps:
                save_checkpoint(run_dir.checkpoint_file, model, optimizer, step, curve, (0.0, 0))
        if options.on_step is not None:
            tokens_per_s = (step - start_step) * tokens_per_step / max(time.time() - started, 1e-9)
            options.on_step(step, total_steps, curve[-1]["eval_loss"] if step in evals else None, tokens_per_s)
        if stop is not None and step < total_steps and stop():
            if options.checkpoint:
                save_checkpoint(
                    run_dir.checkpoint_file, model, optimizer, step, curve, (train_loss_sum.item(), train_loss_count)
                )
            raise Interrupted(step)

    wall = time.time() - started
    final_windows = data.eval_windows(spec.final_eval_sequences, spec.seq_len)
    final_loss = evaluate(model, final_windows, device)
    if not final_loss < math.log(spec.data.vocab_size):  # also catches NaN
        raise Diverged(
            f"final eval loss {final_loss:.4f} is no better than a uniform guess (log {spec.data.vocab_size} = "
            f"{math.log(spec.data.vocab_size):.4f})"
        )
    tokens = total_steps * tokens_per_step
    tokens_per_s = (total_steps - start_step) * tokens_per_step / max(wall, 1e-9)
    name = device_name(device)
    peak = peak_flops(name, precision, options.peak_flops)
    result = {
        "run_id": spec.run_id,
        "loss": final_loss,
        "N": n,
        "N_total": n_total,
        "D": tokens,
        "C": tokens * fpt,
        "flops_per_token": fpt,
        "steps": total_steps,
        "wall_time_s": wall,
        "tokens_per_s": tokens_per_s,
        "flops_per_s": tokens_per_s * fpt,
        "mfu": tokens_per_s * fpt / peak if peak else None,  # None: the device's peak is unknown
        "device": str(device),
        "device_name": name,
        "precision": precision,
        "compile": compiled,
        "threads": threads,
        "data": data.description,
        "entropy_rate": data.entropy_rate,
    }
    run_dir.write_result(result)
    run_dir.checkpoint_file.unlink(missing_ok=True)
    logger.finish(summary=result)
    return result
