"""Snap a parameter count N to a real model shape (d_model, n_layers, n_heads).

Heads come from a fixed head dimension, so d_model is a multiple of it. Two rules:
- `schedule` (default): the depth follows N smoothly, L = round((N / (12 a^2))^(1/3)) for the
  preferred aspect ratio a = d_model / n_layers (a model of that aspect has N = 12 a^2 L^3), at least
  min_layers; the width is then the multiple of head_dim that brings N closest. Depth never
  decreases as N grows, so every grid and the target it extrapolates to sit on one shape family,
  and size is not confounded with shape within a budget.
- `nearest`: among shapes of every depth, the one minimising |log(N_shape / N)| + 0.25 |log(aspect /
  preferred aspect)|. Closest in N, but at small widths neighbouring sizes jump between depths
  (2, 1, 2, 3 layers), which bends IsoFLOP valleys; kept to measure that, and for exact sizes.
Loss depends only weakly on the aspect ratio within a band (Kaplan et al. 2020), so the schedule
spends its freedom on keeping the family smooth.
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
    min_layers: int = 1
    rule: str = "schedule"  # schedule | nearest

    def make(self, d_model: int, n_layers: int) -> Shape:
        config = GPTConfig(
            self.vocab_size, self.seq_len, d_model, n_layers, d_model // self.head_dim, self.mlp, self.positions
        )
        n, n_total, fpt = shape_counts(config)
        return Shape(d_model, n_layers, config.n_heads, n, n_total, fpt)

    @property
    def smallest(self) -> Shape:
        return self.make(self._min_width, self.min_layers if self.rule == "schedule" else 1)

    @property
    def _min_width(self) -> int:
        return self.head_dim * max(1, math.ceil(self.min_d_model / self.head_dim))

    def depth(self, n_target: float, aspect_ratio: float) -> int:
        """Layers of the depth schedule for a model of n_target parameters."""
        ideal = (max(n_target, 1) / (12 * aspect_ratio**2)) ** (1 / 3)
        return int(min(self.max_layers, max(self.min_layers, round(ideal))))

    def widths(self, n_target: float, n_layers: int) -> list[Shape]:
        """The two shapes of this depth whose widths (multiples of head_dim) bracket n_target."""
        width = math.sqrt(max(n_target, 1) / (12 * n_layers)) / self.head_dim
        multiples = {math.floor(width), math.ceil(width)}
        return [self.make(max(self._min_width, m * self.head_dim), n_layers) for m in multiples]

    def candidates(self, n_target: float, aspect_ratio: float) -> list[Shape]:
        if self.rule == "schedule":
            return self.widths(n_target, self.depth(n_target, aspect_ratio))
        return [s for n_layers in range(1, self.max_layers + 1) for s in self.widths(n_target, n_layers)]

    def snap(self, n_target: float, aspect_ratio: float | None = None) -> Shape:
        """The shape closest to n_target on the preferred (or given) aspect ratio's family."""
        aspect = aspect_ratio or self.aspect_ratio
        weight = ASPECT_WEIGHT if self.rule == "nearest" else 0.0
        return min(
            self.candidates(n_target, aspect),
            key=lambda s: abs(math.log(s.N / n_target)) + weight * abs(math.log(s.aspect_ratio / aspect)),
        )
