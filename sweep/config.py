"""Structured configs (registered in Hydra's ConfigStore) and `compose()`.

The YAML files under `conf/` fill these dataclasses; the schema rejects unknown keys and wrong
types, so a typo in an override fails at once instead of being silently ignored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from sweep.errors import UserError

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


@dataclass
class SweepConfig:
    kind: str = "isoflop"  # isoflop | widthdepth
    budgets: list[float] = field(default_factory=lambda: [2e11, 6e11, 1.8e12])
    sizes_per_budget: int = 5
    size_span: float = 9.0  # largest / smallest N within one budget, log-spaced
    tokens_per_param: float = 20.0  # where each budget's grid is centred: N = sqrt(C / (6 t))
    aspect_ratios: list[float] = field(default_factory=lambda: [16.0, 32.0, 64.0])  # widthdepth only
    widthdepth_params: float = 0.0  # widthdepth: fixed N; 0 means use each budget's centre
    seeds: list[int] = field(default_factory=lambda: [0])
    target_multiplier: float = 10.0  # the proposal targets this times the largest budget
    max_extensions: int = 2  # rounds in which `sweep run` extends budgets whose minimum is at an edge


@dataclass
class ModelConfig:
    seq_len: int = 128
    head_dim: int = 16
    aspect_ratio: float = 24.0  # preferred d_model / n_layers when snapping N to a shape
    mlp: str = "gelu"  # gelu | swiglu
    positions: str = "rotary"  # rotary | learned
    min_d_model: int = 16
    max_layers: int = 48


@dataclass
class DataConfig:
    source: str = "text"  # synthetic | text | tokens
    path: str = ""  # text: file or directory ("" = the Python standard library); tokens: dir of train/val.bin
    vocab_size: int = 256
    val_fraction: float = 0.05
    markov_order: int = 1  # synthetic only
    zipf_exponent: float = 1.1  # synthetic only
    synthetic_seed: int = 1234  # the chain's transition table; the run's seed only draws batches
    synthetic_tokens: int = 4_000_000


@dataclass
class TrainConfig:
    lr: float = 4e-3  # AdamW LR of hidden matrices at d_model == lr_ref_width
    lr_ref_width: int = 64  # hidden-matrix LR scales as lr_ref_width / d_model (muP-style)
    warmup_frac: float = 0.05
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    batch_size: int = 0  # sequences per step; 0 = scale with the run's tokens (see target_steps)
    target_steps: int = 600
    min_batch_size: int = 8
    max_batch_size: int = 128
    eval_points: int = 12
    eval_sequences: int = 64
    final_eval_sequences: int = 512
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 0  # 0 = SLURM_CPUS_PER_TASK when set, else launcher.cpus_per_run
    checkpoint: bool = True


@dataclass
class SlurmConfig:
    partition: str = ""
    account: str = ""
    qos: str = ""
    time_min: int = 60
    cpus_per_task: int = 1
    mem_gb: float = 4.0
    gpus_per_node: int = 0
    constraint: str = ""
    array_parallelism: int = 64
    min_job_seconds: float = 0.0  # bundle runs estimated shorter than this into one job (start-up costs seconds)
    additional_parameters: dict[str, Any] = field(default_factory=dict)
    setup: list[str] = field(default_factory=list)


@dataclass
class LauncherConfig:
    executor: str = "local"  # local | slurm | debug
    cpus_per_run: int = 1
    parallel: int = 0  # local: number of slots (concurrent runs); 0 = cores // cpus_per_run, or GPUs x runs_per_gpu
    gpus: list[int] = field(default_factory=list)  # local: GPU ids, one slot each (x runs_per_gpu); [] = CPU slots
    runs_per_gpu: int = 1
    slots_dir: str = ""  # local: where slot locks live, shared by all sweeps on the machine; "" = /tmp/...-<uid>
    max_attempts: int = 3  # `sweep launch --retry-failed` resubmits a run at most this many times in all
    flops_per_second: float = 2e10  # a job's throughput, to estimate run times for bundling
    trainer: str = "real"  # real | noop (no training: for orchestration tests and benchmarks)
    slurm: SlurmConfig = field(default_factory=SlurmConfig)


@dataclass
class FitConfig:
    counting: str = "non_embedding"  # non_embedding | total
    huber_delta: float = 1e-3
    bootstrap: int = 200
    seed: int = 0
    exclude_edge_budgets: bool = True
    seed_noise: float = 0.0  # relative seed-to-seed std of final loss to add in the bootstrap (e.g. 0.002)
    # chinchilla: Approach 3, L(N, D). kaplan_n, kaplan_d: L(N) or L(D) = E + A/x^alpha over every run.
    # compute: L(C) = E + A/C^alpha over each budget's lowest loss (the frontier, with a floor).
    forms: list[str] = field(default_factory=lambda: ["chinchilla", "compute"])
    include_targets: bool = False  # fit target runs (trained from proposals) too, not only proxies


@dataclass
class RunConfig:
    """One run to train with `sweep train`; zeros mean 'not set'."""

    d_model: int = 0
    n_layers: int = 0
    n_heads: int = 0
    tokens: float = 0.0
    batch_size: int = 0
    lr: float = 0.0
    budget: float = 0.0
    role: str = "proxy"  # proxy | target (a proposal's run: left out of fits, checked against its prediction)


@dataclass
class WandbConfig:
    mode: str = "disabled"  # disabled | offline | online
    project: str = "scaling-sweep"


@dataclass
class Config:
    sweep: SweepConfig = field(default_factory=SweepConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    launcher: LauncherConfig = field(default_factory=LauncherConfig)
    fit: FitConfig = field(default_factory=FitConfig)
    run: RunConfig = field(default_factory=RunConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)


ConfigStore.instance().store(name="config_schema", node=Config)

FORMS = ("chinchilla", "kaplan_n", "kaplan_d", "compute")
_CHOICES = {
    "sweep.kind": ("isoflop", "widthdepth"),
    "model.mlp": ("gelu", "swiglu"),
    "model.positions": ("rotary", "learned"),
    "data.source": ("synthetic", "text", "tokens"),
    "train.device": ("auto", "cpu", "cuda"),
    "launcher.executor": ("local", "slurm", "debug"),
    "launcher.trainer": ("real", "noop"),
    "fit.counting": ("non_embedding", "total"),
    "wandb.mode": ("disabled", "offline", "online"),
}


def compose(overrides: list[str] | None = None, config_file: Path | None = None) -> Config:
    """Compose `conf/config.yaml` (or a saved config file) with Hydra overrides; validate it."""
    overrides = list(overrides or [])
    config_dir, config_name = CONF_DIR, "config"
    if config_file is not None:
        if not config_file.is_file():
            raise UserError(f"config file {config_file} does not exist; pass a YAML written by plan or propose")
        config_dir, config_name = config_file.resolve().parent, config_file.stem
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
            cfg = hydra_compose(config_name=config_name, overrides=overrides)
        merged = OmegaConf.merge(OmegaConf.structured(Config), cfg)
    except (HydraException, OmegaConfBaseException) as exc:
        first_line = str(exc).strip().splitlines()[0]
        raise UserError(f"bad config: {first_line} (see conf/ for the valid keys and groups)") from None
    finally:
        GlobalHydra.instance().clear()
    config: Config = OmegaConf.to_object(merged)  # type: ignore[assignment]
    validate(config)
    return config


def validate(config: Config) -> None:
    """Reject values that type-check but make no sense, naming the key."""
    for key, allowed in _CHOICES.items():
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        if value not in allowed:
            raise UserError(f"{key}={value!r} is not one of {', '.join(allowed)}")
    positive = {
        "sweep.sizes_per_budget": config.sweep.sizes_per_budget,
        "sweep.size_span": config.sweep.size_span,
        "sweep.tokens_per_param": config.sweep.tokens_per_param,
        "sweep.target_multiplier": config.sweep.target_multiplier,
        "model.seq_len": config.model.seq_len,
        "model.head_dim": config.model.head_dim,
        "model.aspect_ratio": config.model.aspect_ratio,
        "model.min_d_model": config.model.min_d_model,
        "model.max_layers": config.model.max_layers,
        "data.vocab_size": config.data.vocab_size,
        "data.val_fraction": config.data.val_fraction,
        "train.lr": config.train.lr,
        "train.lr_ref_width": config.train.lr_ref_width,
        "train.target_steps": config.train.target_steps,
        "train.min_batch_size": config.train.min_batch_size,
        "train.max_batch_size": config.train.max_batch_size,
        "train.eval_points": config.train.eval_points,
        "train.eval_sequences": config.train.eval_sequences,
        "train.final_eval_sequences": config.train.final_eval_sequences,
        "launcher.cpus_per_run": config.launcher.cpus_per_run,
        "launcher.runs_per_gpu": config.launcher.runs_per_gpu,
        "fit.huber_delta": config.fit.huber_delta,
    }
    positive.update({f"sweep.budgets[{i}]": b for i, b in enumerate(config.sweep.budgets)})
    positive.update({f"sweep.aspect_ratios[{i}]": a for i, a in enumerate(config.sweep.aspect_ratios)})
    for key, value in positive.items():
        require_positive(key, value)
    if not (math.isfinite(config.fit.seed_noise) and config.fit.seed_noise >= 0):
        raise UserError(f"fit.seed_noise={config.fit.seed_noise} must be >= 0 (a relative std, e.g. 0.002)")
    unknown = set(config.fit.forms) - set(FORMS)
    if unknown or "chinchilla" not in config.fit.forms:
        raise UserError(f"fit.forms={config.fit.forms} must include chinchilla, and may add {', '.join(FORMS[1:])}")
    if any(gpu < 0 for gpu in config.launcher.gpus) or config.launcher.parallel < 0:
        raise UserError("launcher.gpus must be GPU ids (0, 1, ...) and launcher.parallel >= 0 (0 = one run per slot)")
    if not config.sweep.budgets:
        raise UserError("sweep.budgets is empty; give at least one compute budget in FLOPs, e.g. sweep.budgets=[1e12]")
    if config.data.source == "text" and config.data.vocab_size != 256:
        raise UserError("data.source=text is byte-level: data.vocab_size must be 256")
    data_path = Path(config.data.path).expanduser()
    if config.data.source == "text" and config.data.path and not data_path.exists():
        raise UserError(f"data.path={config.data.path} does not exist; give a UTF-8 file or a directory of them")
    if config.data.source == "tokens":
        for name in ("train.bin", "val.bin"):
            if not (data_path / name).is_file():
                raise UserError(
                    f"data.path={config.data.path} has no {name}; data=tokens needs train.bin and val.bin (uint16)"
                )
    if not 0 < config.data.val_fraction < 1:
        raise UserError(f"data.val_fraction={config.data.val_fraction} must lie strictly between 0 and 1")


def require_positive(key: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise UserError(f"{key}={value} must be a positive finite number")


def to_yaml(config: Config) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(config))


def to_dict(config: Config) -> dict[str, Any]:
    return OmegaConf.to_container(OmegaConf.structured(config))  # type: ignore[return-value]
