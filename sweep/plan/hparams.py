"""Hyperparameter rules: batch size from the run's tokens, LR from its width (muP-style)."""

from __future__ import annotations

from sweep.config import TrainConfig


def batch_size(tokens: float, seq_len: int, train: TrainConfig) -> int:
    """Sequences per step: tokens / (seq_len * target_steps), rounded and clipped.

    A fixed batch starves large proxies of optimizer steps and wastes small ones on per-step
    overhead, so the batch grows with the run's data (cf. "Predictable Scale: Part I": B* grows as
    a power of D). It is not rounded to a power of two: that would let the number of steps vary
    2x between neighbouring runs of a grid, and undertrained runs bend the IsoFLOP curves."""
    if train.batch_size > 0:
        return train.batch_size
    ideal = tokens / (seq_len * train.target_steps)
    return int(min(train.max_batch_size, max(train.min_batch_size, round(ideal))))


def hidden_lr(d_model: int, train: TrainConfig) -> float:
    """Adam LR of hidden matrices, proportional to 1 / width so a proxy's tuned LR transfers."""
    return train.lr * train.lr_ref_width / d_model
