"""Learning-rate schedules, as a multiplier of the peak LR at each step.

- cosine: linear warmup, then cosine decay to a floor over the whole run.
- wsd (warmup, stable, decay; MiniCPM): linear warmup, the peak LR held, then a short final decay
  to the floor, linear or 1-sqrt ("Scaling Laws and Compute-Optimal Training Beyond Fixed Training
  Durations"). With no decay steps it is a trunk: the stable phase that decay branches start from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SCHEDULES = ("cosine", "wsd")
DECAY_SHAPES = ("linear", "one_minus_sqrt")


@dataclass(frozen=True)
class Schedule:
    total_steps: int
    warmup_steps: int
    min_ratio: float
    kind: str = "cosine"  # one of SCHEDULES
    decay_steps: int = 0  # wsd: the final decay's length; 0 is a trunk (no decay)
    decay_shape: str = "linear"  # wsd: one of DECAY_SHAPES (one_minus_sqrt: 1 - sqrt of the progress)

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULES or self.decay_shape not in DECAY_SHAPES:
            raise ValueError(f"unknown schedule {self.kind!r} / decay {self.decay_shape!r}")

    @property
    def decay_start(self) -> int:
        """The first step whose LR is below the peak (wsd); the branch point of a decay branch."""
        return self.total_steps - self.decay_steps

    def multiplier(self, step: int) -> float:
        """Multiplier of the peak LR at `step` (0-based)."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.kind == "cosine":
            progress = (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps)
            return self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        if step < self.decay_start:
            return 1.0
        progress = min(1.0, (step - self.decay_start + 1) / self.decay_steps)
        fall = progress if self.decay_shape == "linear" else math.sqrt(progress)
        return 1.0 - (1 - self.min_ratio) * fall

    def multipliers(self) -> np.ndarray:
        """The multiplier at every step, 0 .. total_steps - 1."""
        return np.array([self.multiplier(step) for step in range(self.total_steps)])


def spec_schedule(spec) -> Schedule:
    """The schedule a run spec (sweep.spec.RunSpec, or anything with its fields) trains with. A spec
    may fix its warmup in steps (the branches of one trunk share the trunk's)."""
    total = spec.steps
    warmup = spec.warmup_steps or max(1, round(spec.warmup_frac * total))
    decay = round(spec.decay_frac * total) if spec.schedule == "wsd" else 0
    return Schedule(total, warmup, spec.min_lr_ratio, spec.schedule, decay, spec.decay_shape)
