"""RunSpec: everything that changes a run's result, and the run id derived from it."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, fields

NON_IDENTITY = ("budget", "role", "branch_steps")
# Fields added after run ids were first published: left out of a run's identity at their defaults, so
# the ids of runs planned before them do not change.
LATER_DEFAULTS = {"schedule": "cosine", "decay_frac": 0.0, "decay_shape": "linear", "warmup_steps": 0,
                  "parent": "", "branch_step": 0, "precision": "auto"}  # fmt: skip


@dataclass(frozen=True)
class DataSpec:
    source: str
    path: str
    vocab_size: int
    val_fraction: float
    markov_order: int = 1
    zipf_exponent: float = 1.1
    synthetic_seed: int = 0
    synthetic_tokens: int = 0


@dataclass(frozen=True)
class RunSpec:
    d_model: int
    n_layers: int
    n_heads: int
    seq_len: int
    mlp: str
    positions: str
    tokens: int  # D: training tokens
    batch_size: int  # sequences per optimizer step
    # hidden-matrix AdamW LR (mup, mup_lr); the other parameters (all, under standard) use lr * d_model / lr_ref_width
    lr: float
    lr_ref_width: int
    warmup_frac: float
    min_lr_ratio: float
    weight_decay: float
    beta1: float
    beta2: float
    grad_clip: float
    eval_points: int
    eval_sequences: int
    final_eval_sequences: int
    data: DataSpec
    seed: int
    optimizer: str = "adamw"
    parameterization: str = "mup"  # mup | mup_lr | standard (models/gpt.py)
    schedule: str = "cosine"  # cosine | wsd (models/schedules.py)
    decay_frac: float = 0.0  # wsd: the final decay's share of the run's steps; 0 for a trunk
    decay_shape: str = "linear"  # wsd: linear | one_minus_sqrt
    warmup_steps: int = 0  # 0: warmup_frac of the steps; a trunk and its branches share one warmup
    # A decay branch (or a trunk's continuation) starts from `parent`'s stable checkpoint at `branch_step`.
    parent: str = ""
    branch_step: int = 0
    # auto | fp32 | bf16 (autocast). It changes the losses, so it is part of the id, as written: auto is
    # resolved where the run trains (bf16 on CUDA, fp32 on CPU; result.json records which), not where it
    # is planned, which may be a login node without the GPU.
    precision: str = "auto"
    # Not part of the run's identity: which budget of the plan asked for it, and whether it is a proxy
    # (fitted) or a target (a proposal's run, checked against its prediction and not fitted).
    budget: float = field(default=0.0, compare=False)
    role: str = field(default="proxy", compare=False)  # proxy | target | trunk (a stable phase, never fitted)
    # A trunk's steps at which to keep a stable checkpoint for its branches (its last step is always kept).
    branch_steps: tuple[int, ...] = field(default=(), compare=False)

    @property
    def run_id(self) -> str:
        return run_id(self)

    @property
    def steps(self) -> int:
        return max(1, round(self.tokens / (self.batch_size * self.seq_len)))

    @property
    def trained_tokens(self) -> int:
        """Tokens this run trains itself: a branch starts at its parent's branch point."""
        return self.tokens - self.branch_step * self.batch_size * self.seq_len

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, payload: dict) -> RunSpec:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in payload.items() if k in known}
        values["data"] = DataSpec(**payload["data"])
        values["branch_steps"] = tuple(values.get("branch_steps", ()))
        return cls(**values)


def run_id(spec: RunSpec) -> str:
    """Twelve hex digits of the SHA-256 of the spec's canonical JSON, budget and role tags left out."""
    identity = spec.to_dict()
    for tag in NON_IDENTITY:
        identity.pop(tag)
    for name, default in LATER_DEFAULTS.items():
        if identity[name] == default:
            identity.pop(name)
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


RUN_ID = re.compile(r"[0-9a-f]{12}")


def is_run_id(text: object) -> bool:
    """Whether text has the form of a run id; only such names ever become paths under runs/."""
    return isinstance(text, str) and RUN_ID.fullmatch(text) is not None
