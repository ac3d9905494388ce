"""Snap a parameter count N to a real model shape (d_model, n_layers, n_heads).

Heads come from a fixed head dimension, so d_model is a multiple of it. Among the candidate shapes
take the one minimising |log(N_shape / N)| + 0.25 |log(aspect / preferred aspect)|: size matters
most, while loss depends only weakly on the aspect ratio d_model / n_layers within a band
(Kaplan et al. 2020), so it only breaks near-ties between the discrete shapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from models.config import GPTConfig
from sweep.plan.flops import shape_counts

ASPECT_WEIGHT = 0.25


@dataclass(frozen=True)
class Shape:
    d_model: int
    n_layers: int
    n_heads: int
    N: int  # non-embedding parameters
    N_total: int
    flops_per_token: float

    @property
    def aspect_ratio(self) -> float:
        return self.d_model / self.n_layers


@dataclass(frozen=True)
class ShapeRules:
    vocab_size: int
    seq_len: int
    head_dim: int
    aspect_ratio: float
    min_d_model: int
    max_layers: int
    mlp: str = "gelu"
    positions: str = "rotary"

    def make(self, d_model: int, n_layers: int) -> Shape:
        config = GPTConfig(
            self.vocab_size, self.seq_len, d_model, n_layers, d_model // self.head_dim, self.mlp, self.positions
        )
        n, n_total, fpt = shape_counts(config)
        return Shape(d_model, n_layers, config.n_heads, n, n_total, fpt)

    @property
    def smallest(self) -> Shape:
        return self.make(self._min_width, 1)

    @property
    def _min_width(self) -> int:
        return self.head_dim * max(1, math.ceil(self.min_d_model / self.head_dim))

    def candidates(self, n_target: float) -> list[Shape]:
        shapes = []
        for n_layers in range(1, self.max_layers + 1):
            width = math.sqrt(max(n_target, 1) / (12 * n_layers))
            for multiple in {math.floor(width / self.head_dim), math.ceil(width / self.head_dim)}:
                d_model = max(self._min_width, multiple * self.head_dim)
                shapes.append(self.make(d_model, n_layers))
        return shapes

    def snap(self, n_target: float, aspect_ratio: float | None = None) -> Shape:
        """The shape closest to n_target near the preferred (or given) aspect ratio."""
        aspect = aspect_ratio or self.aspect_ratio
        shapes = self.candidates(n_target)

        return min(
            shapes,
            key=lambda s: abs(math.log(s.N / n_target)) + ASPECT_WEIGHT * abs(math.log(s.aspect_ratio / aspect)),
        )
