"""Parameter and FLOP counting (Kaplan 2020; Hoffmann 2022).

N is the non-embedding parameter count, N_total adds the embeddings. Training FLOPs per token are
6 N (forward and backward of the weights) plus 6 * n_layers * seq_len * d_model for attention
scores and values, the term that 6N leaves out and that matters at small widths.
"""

from __future__ import annotations

from models.config import GPTConfig, count_parameters
from sweep.spec import RunSpec


def flops_per_token(d_model: int, n_layers: int, seq_len: int, non_embedding_params: int) -> float:
    return 6.0 * non_embedding_params + 6.0 * n_layers * seq_len * d_model


def shape_counts(config: GPTConfig) -> tuple[int, int, float]:
    """(N, N_total, training FLOPs per token) of a model shape."""
    n, n_total = count_parameters(config)
    return n, n_total, flops_per_token(config.d_model, config.n_layers, config.seq_len, n)


def model_config(spec: RunSpec) -> GPTConfig:
    return GPTConfig(
        spec.data.vocab_size, spec.seq_len, spec.d_model, spec.n_layers, spec.n_heads, spec.mlp, spec.positions
    )


def spec_counts(spec: RunSpec) -> tuple[int, int, float]:
    """(N, N_total, FLOPs per token) of the model a run spec trains."""
    return shape_counts(model_config(spec))
