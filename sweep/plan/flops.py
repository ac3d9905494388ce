"""Counting for run specs: N, N_total and FLOPs per token of the model a spec trains (the counting
itself lives with the model, in models/config.py)."""

from __future__ import annotations

from models.config import flops_per_token, model_config, shape_counts
from sweep.spec import RunSpec

__all__ = ["flops_per_token", "model_config", "shape_counts", "spec_counts"]


def spec_counts(spec: RunSpec) -> tuple[int, int, float]:
    """(N, N_total, FLOPs per token) of the model a run spec trains."""
    return shape_counts(model_config(spec))
