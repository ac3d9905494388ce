"""Hyperparameter rules: batch size from the run's tokens, LR from its width (muP-style)."""

from __future__ import annotations

import math

from sweep.config import TrainConfig


def batch_size(tokens: float, seq_len: int, train: TrainConfig) -> int:
    """Sequences per step: tokens / (seq_len * target_steps), rounded and clipped.

    A fixed batch starves large proxies of optimizer steps and wastes small ones on per-step
    overhead, so the batch grows with the run's data (cf. "Predictable Scale: Part I": B* grows as
    a power of D). It is not rounded to a power of two: that would let the number of steps vary
    2x between neighbouring runs of a grid, and undertrained runs bend the IsoFLOP curves. For the
    same reason a run that min_batch_size would leave with fewer than min_steps steps gets a
    smaller batch: the large-N end of a small budget is where proxies starve."""
    if train.batch_size > 0:
        return train.batch_size
    ideal = tokens / (seq_len * train.target_steps)
    batch = int(min(train.max_batch_size, max(train.min_batch_size, round(ideal))))
    if train.min_steps and tokens / (seq_len * batch) < train.min_steps:  # starved: fewer, smaller steps
        batch = max(1, math.floor(tokens / (seq_len * train.min_steps)))
    return batch


def hidden_lr(d_model: int, train: TrainConfig) -> float:
    """Adam LR of hidden matrices, proportional to 1 / width so a proxy's tuned LR transfers."""
    return train.lr * train.lr_ref_width / d_model
