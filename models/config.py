"""A proxy model's shape, its parameter count and its training FLOPs per token, without importing
torch (the CLI stays fast).

N is the non-embedding parameter count, N_total adds the embeddings. Training FLOPs per token are
6 N (forward and backward of the weights) plus 6 * n_layers * seq_len * d_model for attention
scores and values, the term that 6N leaves out and that matters at small widths (Kaplan 2020;
Hoffmann 2022).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field


class DataError(ValueError):
    """The data cannot be used as configured (missing files, too short, wrong vocabulary)."""


class Diverged(RuntimeError):
    """Training produced a non-finite loss."""


class CheckpointError(RuntimeError):
    """A checkpoint file holds something other than tensors and plain values: it is not loaded."""


class Interrupted(Exception):
    """Training stopped early on request (preemption or time limit), checkpointed at `step`."""

    def __init__(self, step: int) -> None:
        super().__init__(f"interrupted at step {step}")
        self.step = step


PARAMETERIZATIONS = ("mup", "mup_lr", "standard")  # models/gpt.py states each one's rules


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int
    seq_len: int
    d_model: int
    n_layers: int
    n_heads: int
    mlp: str = "gelu"  # gelu | swiglu
    positions: str = "rotary"  # rotary | learned
    parameterization: str = "mup"  # one of PARAMETERIZATIONS
    base_width: int = 64  # muP's base width (train.lr_ref_width): where mup's init and output equal GPT-2's

    def __post_init__(self) -> None:
        if self.parameterization not in PARAMETERIZATIONS:
            raise ValueError(f"unknown parameterization {self.parameterization!r}; use one of {PARAMETERIZATIONS}")


def swiglu_hidden(d_model: int) -> int:
    """Hidden width of SwiGLU giving the same 8 d^2 parameters as a 4x GELU MLP, rounded up to 8."""
    return 8 * math.ceil(8 * d_model / 3 / 8)


def count_parameters(config: GPTConfig) -> tuple[int, int]:
    """(non-embedding, total) parameters of the model `GPT(config)` builds, without building it."""
    d = config.d_model
    mlp = 8 * d * d if config.mlp == "gelu" else 3 * d * swiglu_hidden(d)
    non_embedding = config.n_layers * (4 * d * d + mlp + 2 * d) + d
    embedding = config.vocab_size * d + (config.seq_len * d if config.positions == "learned" else 0)
    return non_embedding, non_embedding + embedding


def model_config(spec) -> GPTConfig:
    """The model a run spec (sweep.spec.RunSpec, or anything with its fields) trains."""
    return GPTConfig(
        spec.data.vocab_size, spec.seq_len, spec.d_model, spec.n_layers, spec.n_heads, spec.mlp, spec.positions,
        spec.parameterization, spec.lr_ref_width,
    )  # fmt: skip


def flops_per_token(d_model: int, n_layers: int, seq_len: int, non_embedding_params: int) -> float:
    return 6.0 * non_embedding_params + 6.0 * n_layers * seq_len * d_model


def shape_counts(config: GPTConfig) -> tuple[int, int, float]:
    """(N, N_total, training FLOPs per token) of a model shape."""
    n, n_total = count_parameters(config)
    return n, n_total, flops_per_token(config.d_model, config.n_layers, config.seq_len, n)


@dataclass(frozen=True)
class TrainOptions:
    """How to run, not what: none of this changes the result beyond floating-point noise."""

    device: str = "auto"
    threads: int = 0
    checkpoint: bool = True
    wandb_mode: str = "disabled"  # see wandb_mode(): a WANDB_MODE in the environment overrides it
    wandb_project: str = "scaling-sweep"
    wandb_entity: str | None = None  # None: the API key's default entity
    wandb_group: str = ""  # the sweep's name: its directory's
    trainer: str = "real"  # real | noop (writes a made-up result at once: for orchestration tests and benchmarks)
    compile: str = "auto"  # auto (on CUDA only) | true | false: torch.compile the model, eager if it fails
    peak_flops: float = 0.0  # the device's peak FLOP/s for MFU; 0 = models/hardware.py's table
    # Called after every step with (step, total steps, eval loss at an eval step else None, tokens/s):
    # a progress bar's feed. Not part of a job's options (never pickled into one): the foreground only.
    on_step: Callable[[int, int, float | None, float], None] | None = field(default=None, compare=False)


def wandb_mode(configured: str) -> str:
    """W&B's mode (disabled, offline, online): WANDB_MODE from the environment when it is set (W&B's
    own switch, e.g. offline on a cluster's nodes without network), else the configured one."""
    return os.environ.get("WANDB_MODE") or str(configured)
