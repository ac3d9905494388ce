"""A proxy model's shape and its parameter count, without importing torch (the CLI stays fast)."""

from __future__ import annotations

import math
from dataclasses import dataclass


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


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int
    seq_len: int
    d_model: int
    n_layers: int
    n_heads: int
    mlp: str = "gelu"  # gelu | swiglu
    positions: str = "rotary"  # rotary | learned


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


@dataclass(frozen=True)
class TrainOptions:
    """How to run, not what: none of this changes the result beyond floating-point noise."""

    device: str = "auto"
    threads: int = 0
    checkpoint: bool = True
    wandb_mode: str = "disabled"
    wandb_project: str = "scaling-sweep"
    trainer: str = "real"  # real | noop (writes a made-up result at once: for orchestration tests and benchmarks)
