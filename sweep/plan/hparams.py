"""Hyperparameter rules: batch size from the run's tokens, LR from its width (muP-style)."""

from __future__ import annotations

import math

from sweep.config import TrainConfig


def batch_size(tokens: float, seq_len: int, train: TrainConfig) -> int:
    """Sequences per step: a power of the run's tokens, B = B_ref (D / ref_tokens)^batch_exponent with
    B_ref = ref_tokens / (seq_len * target_steps), rounded and clipped.

    The optimal batch grows about as the square root of the data ("Predictable Scale: Part I":
    B* ~ D^0.57), so steps grow too: a run of ref_tokens takes target_steps steps, one of 100x the
    tokens 10x as many. A rule of fixed steps (batch_exponent = 1) starves every run alike, and at
    these sizes the loss at fixed tokens still falls steeply with the steps (measured, a 55k model
    two thirds through 2.5M tokens: 1.59 on a 2,400-step schedule, 1.76 on 600, 2.00 on 300), so
    the proxies' law describes the step count, not the model, and a target trained with more steps
    beats its forecast. The batch
    is not rounded to a power of two, so neighbouring runs of a grid differ smoothly; a run that
    min_batch_size would leave with fewer than min_steps steps gets a smaller batch."""
    if train.batch_size > 0:
        return train.batch_size
    reference = train.ref_tokens / (seq_len * train.target_steps)
    ideal = reference * (tokens / train.ref_tokens) ** train.batch_exponent
    batch = int(min(train.max_batch_size, max(train.min_batch_size, round(ideal))))
    if train.min_steps and tokens / (seq_len * batch) < train.min_steps:  # starved: fewer, smaller steps
        batch = max(1, math.floor(tokens / (seq_len * train.min_steps)))
    return batch


def hidden_lr(d_model: int, train: TrainConfig) -> float:
    """Adam LR of hidden matrices, proportional to 1 / width so a proxy's tuned LR transfers."""
    return train.lr * train.lr_ref_width / d_model
