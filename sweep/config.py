"""Structured configs (registered in Hydra's ConfigStore) and `compose()`.

The YAML files under `conf/` fill these dataclasses; the schema rejects unknown keys and wrong
types, so a typo in an override fails at once instead of being silently ignored. Every number
carries its range (`bounded`) and every choice is an enum, so `validate` can name the key of
any value that type-checks but makes no sense.
"""

from __future__ import annotations

import functools
import math
import tempfile
from dataclasses import dataclass, field, fields, is_dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from sweep.errors import UserError

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
MAX_CONFIG_BYTES = 1 << 20  # a saved config is a few KB; this refuses anything that is not one
MAX_PLANNED_RUNS = 10_000
MAX_SYNTHETIC_STATES = 1 << 20  # models/data.py refuses larger Markov chains at train time
SEED_MAX = 2**32 - 1  # numpy's limit


class Choice(str, Enum):
    """A config choice: its name is its value, and it prints as that value (like 3.11's StrEnum)."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


class SweepKind(Choice):
    isoflop = "isoflop"
    widthdepth = "widthdepth"
    lrbatch = "lrbatch"  # each budget's sizes at a grid of LR x batch multipliers of the rules


class Mlp(Choice):
    gelu = "gelu"
    swiglu = "swiglu"


class Positions(Choice):
    rotary = "rotary"
    learned = "learned"


class ShapeRule(Choice):
    schedule = "schedule"
    nearest = "nearest"


class DataSource(Choice):
    synthetic = "synthetic"
    text = "text"
    tokens = "tokens"


class Device(Choice):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Precision(Choice):
    auto = "auto"  # bf16 on CUDA, fp32 on CPU
    fp32 = "fp32"
    bf16 = "bf16"


COMPILE_CHOICES = ("auto", "true", "false")


class Executor(Choice):
    local = "local"
    slurm = "slurm"
    debug = "debug"


class Role(Choice):
    proxy = "proxy"
    target = "target"


class LrSchedule(Choice):
    cosine = "cosine"
    wsd = "wsd"  # warmup, stable, decay (models/schedules.py); with sweep.share_trunks, decay branches


class DecayShape(Choice):
    linear = "linear"
    one_minus_sqrt = "one_minus_sqrt"  # 1 - sqrt(progress): falls fastest at the start of the decay


class Trainer(Choice):
    real = "real"
    noop = "noop"  # no training: for orchestration tests and benchmarks


class Counting(Choice):
    non_embedding = "non_embedding"
    total = "total"


class FitForm(Choice):
    chinchilla = "chinchilla"  # Approach 3, L(N, D)
    kaplan_n = "kaplan_n"  # L(N) = E + A/N^alpha over every run
    kaplan_d = "kaplan_d"  # L(D) = E + A/D^alpha over every run
    compute = "compute"  # L(C) = E + A/C^alpha over each budget's lowest loss (the frontier, with a floor)


class Parameterization(Choice):
    mup = "mup"  # muP: init, LR, decay and output multiplier all by width (models/gpt.py states the rules)
    mup_lr = "mup_lr"  # only the hidden-matrix LR scales as 1/width (the rule before muP)
    standard = "standard"  # GPT-2: nothing scales with width; one LR for every parameter


class WandbMode(Choice):
    disabled = "disabled"
    offline = "offline"
    online = "online"


@dataclass(frozen=True)
class Bounds:
    """The values a number may take (each item's, for a list), and for a list how many items."""

    lo: float
    hi: float
    lo_open: bool = False
    hi_open: bool = False
    items: tuple[int, int] | None = None

    def admits(self, x: float) -> bool:
        above = x > self.lo if self.lo_open else x >= self.lo
        below = x < self.hi if self.hi_open else x <= self.hi
        return math.isfinite(x) and above and below

    def describe(self) -> str:
        if self.lo == 0 and self.lo_open and not self.hi_open:
            return f"a positive number up to {_number(self.hi)}"
        left, right = "(" if self.lo_open else "[", ")" if self.hi_open else "]"
        return f"a finite number in {left}{_number(self.lo)}, {_number(self.hi)}{right}"


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e10 else f"{x:g}"


def bounded(default: float, lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False) -> Any:
    return field(default=default, metadata={"bounds": Bounds(lo, hi, lo_open, hi_open)})


def bounded_list(default: list, lo: float, hi: float, items: tuple[int, int], *, lo_open: bool = False) -> Any:
    return field(default_factory=lambda: list(default), metadata={"bounds": Bounds(lo, hi, lo_open, items=items)})


POSITIVE = {"lo": 0, "lo_open": True}


@dataclass
class SweepConfig:
    kind: SweepKind = SweepKind.isoflop
    budgets: list[float] = bounded_list([2e11, 6e11, 1.8e12], hi=1e30, items=(1, 1000), **POSITIVE)
    sizes_per_budget: int = bounded(5, 1, 1000)
    size_span: float = bounded(9.0, 1, 1e6)  # largest / smallest N within one budget, log-spaced
    tokens_per_param: float = bounded(20.0, 0.01, 1e6)  # each budget's grid is centred at N = sqrt(C / (6 t))
    aspect_ratios: list[float] = bounded_list([16.0, 32.0, 64.0], 0.01, 1e4, items=(1, 1000))  # widthdepth only
    widthdepth_params: float = bounded(0.0, 0, 1e15)  # widthdepth: fixed N; 0 means use each budget's centre
    seeds: list[int] = bounded_list([0], 0, SEED_MAX, items=(1, MAX_PLANNED_RUNS))
    target_multiplier: float = bounded(10.0, hi=1e4, **POSITIVE)  # the proposal targets this times the largest budget
    max_extensions: int = bounded(2, 0, 100)  # rounds in which `sweep run` extends budgets whose minimum is at an edge
    # > 0: each of those rounds instead adds the runs these FLOPs buy that most narrow the target's interval
    # (`sweep propose --next-wave`, sweep/nextwave.py); 0: the edge extension
    next_wave_flops: float = bounded(0.0, 0, 1e35)
    # train.schedule=wsd only: one stable trunk per shape, each token count a decay branch from its checkpoint;
    # the sizes of every budget are then taken from one ladder, so that budgets share shapes (sweep/plan/trunks.py)
    share_trunks: bool = False
    # lrbatch only: each size is trained at these multiples of the rules' LR and batch (sweep/plan/hparams.py)
    lr_multipliers: list[float] = bounded_list([0.25, 0.5, 1.0, 2.0, 4.0], hi=1e4, items=(1, 100), **POSITIVE)
    batch_multipliers: list[float] = bounded_list([0.5, 1.0, 2.0], hi=1e4, items=(1, 100), **POSITIVE)

    def check(self) -> None:
        per_budget = {
            SweepKind.isoflop: self.sizes_per_budget,
            SweepKind.widthdepth: len(self.aspect_ratios),
            SweepKind.lrbatch: self.sizes_per_budget * len(self.lr_multipliers) * len(self.batch_multipliers),
        }[self.kind]
        for name in ("budgets", "lr_multipliers", "batch_multipliers", "aspect_ratios", "seeds"):
            if len(set(values := getattr(self, name))) < len(values):
                raise UserError(f"sweep.{name}={list(values)} repeats a value; list each once")
        cheapest = min(self.budgets) * len(self.seeds)  # a decay branch of a shared trunk costs less
        if 0 < self.next_wave_flops < cheapest and not self.share_trunks:
            raise UserError(
                f"sweep.next_wave_flops={self.next_wave_flops:g} buys no run: a run costs about its budget at each "
                f"seed, at least {cheapest:g}; raise it, or 0 for the edge extension"
            )
        runs = len(self.budgets) * per_budget * len(self.seeds)
        if runs > MAX_PLANNED_RUNS:
            raise UserError(
                f"the sweep would plan {runs} runs (budgets x sizes x seeds, x LR x batch multipliers for lrbatch), "
                f"more than {MAX_PLANNED_RUNS}; "
                "plan fewer and extend later"
            )


@dataclass
class ModelConfig:
    seq_len: int = bounded(128, 1, 65536)
    head_dim: int = bounded(8, 1, 1024)
    aspect_ratio: float = bounded(24.0, 0.01, 1e4)  # preferred d_model / n_layers when snapping N to a shape
    mlp: Mlp = Mlp.gelu
    positions: Positions = Positions.rotary
    min_d_model: int = bounded(16, 1, 65536)
    min_layers: int = bounded(2, 1, 1000)
    max_layers: int = bounded(48, 1, 1000)
    shape_rule: ShapeRule = ShapeRule.schedule  # schedule: depth grows smoothly with N; nearest: closest N

    def check(self) -> None:
        if self.positions == Positions.rotary and self.head_dim % 2:
            raise UserError(f"model.head_dim={self.head_dim} must be even with model.positions=rotary")
        if self.min_layers > self.max_layers:
            raise UserError(f"model.min_layers={self.min_layers} exceeds model.max_layers={self.max_layers}")


@dataclass
class DataConfig:
    source: DataSource = DataSource.text
    path: str = ""  # text: file or directory ("" = the Python standard library); tokens: dir of train/val.bin
    vocab_size: int = bounded(256, 2, 65536)  # tokens are uint16
    val_fraction: float = bounded(0.05, 0, 1, lo_open=True, hi_open=True)
    markov_order: int = bounded(1, 1, 20)  # synthetic only
    zipf_exponent: float = bounded(1.1, 0, 10)  # synthetic only
    synthetic_seed: int = bounded(1234, 0, SEED_MAX)  # the chain's transition table; the run's seed draws batches
    synthetic_tokens: int = bounded(32_000_000, 1000, 1_000_000_000)

    def check(self) -> None:
        if self.source == DataSource.text and self.vocab_size != 256:
            raise UserError("data.source=text is byte-level: data.vocab_size must be 256")
        if self.source == DataSource.synthetic and self.vocab_size**self.markov_order > MAX_SYNTHETIC_STATES:
            raise UserError(
                f"data.vocab_size={self.vocab_size} and data.markov_order={self.markov_order} give "
                f"{self.vocab_size}**{self.markov_order} chain states; keep it <= 2**20"
            )
        data_path = Path(self.path).expanduser()
        if self.source == DataSource.text and self.path and not data_path.exists():
            raise UserError(f"data.path={self.path} does not exist; give a UTF-8 file or a directory of them")
        if self.source == DataSource.tokens:
            for name in ("train.bin", "val.bin"):
                if not (data_path / name).is_file():
                    raise UserError(
                        f"data.path={self.path} has no {name}; data=tokens needs train.bin and val.bin (uint16)"
                    )


@dataclass
class TrainConfig:
    lr: float = bounded(4e-3, hi=1, **POSITIVE)  # AdamW LR of every parameter at d_model == lr_ref_width
    lr_ref_width: int = bounded(64, 1, 4096)  # muP's base width: hidden-matrix LR scales as lr_ref_width / d_model
    parameterization: Parameterization = Parameterization.mup
    warmup_frac: float = bounded(0.05, 0, 1)
    schedule: LrSchedule = LrSchedule.cosine
    decay_frac: float = bounded(0.2, 0, 1, lo_open=True)  # wsd: the final decay's share of a run's steps
    decay_shape: DecayShape = DecayShape.linear  # wsd: linear | one_minus_sqrt
    min_lr_ratio: float = bounded(0.1, 0, 1)
    weight_decay: float = bounded(0.1, 0, 10)
    beta1: float = bounded(0.9, 0, 1, hi_open=True)
    beta2: float = bounded(0.95, 0, 1, hi_open=True)
    grad_clip: float = bounded(1.0, hi=1e12, **POSITIVE)  # a huge value turns clipping off
    batch_size: int = bounded(0, 0, 65536)  # sequences per step; 0 = a power of the run's tokens (batch_exponent)
    target_steps: int = bounded(1000, 1, 10_000_000)  # steps of a run of ref_tokens tokens
    ref_tokens: float = bounded(1e6, hi=1e15, **POSITIVE)
    batch_exponent: float = bounded(0.5, 0, 1)  # batch ~ tokens^this; 1 = every run takes target_steps steps
    min_batch_size: int = bounded(1, 1, 65536)
    min_steps: int = bounded(500, 0, 10_000_000)  # below this many steps the batch shrinks (to 1 sequence at least)
    max_batch_size: int = bounded(512, 1, 65536)
    eval_points: int = bounded(12, 1, 1000)
    eval_sequences: int = bounded(64, 1, 1_000_000)
    final_eval_sequences: int = bounded(512, 1, 1_000_000)
    seed: int = bounded(0, 0, SEED_MAX)
    device: Device = Device.auto
    threads: int = bounded(0, 0, 4096)  # 0 = SLURM_CPUS_PER_TASK when set, else launcher.cpus_per_run
    checkpoint: bool = True
    precision: Precision = Precision.auto  # part of a run's spec: bf16 changes the losses a little
    # torch.compile the model: auto (on CUDA only) | true | false; eager, with a warning saying why, if it fails.
    # A string, not a choice: YAML and Hydra read true and false as booleans, which arrive here as "True", "False".
    compile: str = "auto"
    peak_flops: float = bounded(0.0, 0, 1e21)  # the device's peak FLOP/s for MFU; 0 = models/hardware.py's table

    def check(self) -> None:
        if self.schedule == "wsd" and self.warmup_frac + self.decay_frac > 1:
            raise UserError(
                f"train.warmup_frac={self.warmup_frac:g} + train.decay_frac={self.decay_frac:g} exceed 1: the decay "
                "would start inside the warmup; lower one of them"
            )
        if self.compile.lower() not in COMPILE_CHOICES:
            raise UserError(f"train.compile={self.compile} is not one of {', '.join(COMPILE_CHOICES)}")
        if self.min_batch_size > self.max_batch_size:
            raise UserError(
                f"train.min_batch_size={self.min_batch_size} exceeds train.max_batch_size={self.max_batch_size}"
            )


@dataclass
class SlurmConfig:
    partition: str = ""
    account: str = ""
    qos: str = ""
    time_min: int = bounded(60, 1, 525_600)  # a year
    cpus_per_task: int = bounded(1, 1, 4096)
    mem_gb: float = bounded(4.0, hi=65536, **POSITIVE)
    gpus_per_node: int = bounded(0, 0, 64)
    constraint: str = ""
    array_parallelism: int = bounded(64, 1, 100_000)
    # bundle runs estimated shorter than this into one job (start-up costs seconds)
    min_job_seconds: float = bounded(0.0, 0, 1e7)
    additional_parameters: dict[str, Any] = field(default_factory=dict)
    setup: list[str] = field(default_factory=list)

    def check(self) -> None:
        for name, value in self.additional_parameters.items():
            if not isinstance(value, (str, int, float, bool)):
                raise UserError(f"launcher.slurm.additional_parameters.{name} must be a single value (sbatch --{name})")


def shareable(config: dict) -> dict:
    """A config (a plain dict, as saved) fit to log or show elsewhere: launcher.slurm.setup, the shell
    lines each job runs first (where keys and tokens get exported), is replaced by its line count."""
    setup = config.get("launcher", {}).get("slurm", {}).get("setup")
    if not setup:
        return config
    slurm = {**config["launcher"]["slurm"], "setup": [f"<{len(setup)} lines not shown>"]}
    return {**config, "launcher": {**config["launcher"], "slurm": slurm}}


@dataclass
class LauncherConfig:
    executor: Executor = Executor.local
    cpus_per_run: int = bounded(1, 1, 4096)
    # local: number of slots (concurrent runs); 0 = cores // cpus_per_run, or GPUs x runs_per_gpu
    parallel: int = bounded(0, 0, 4096)
    gpus: list[int] = bounded_list([], 0, 1023, items=(0, 1024))  # local: GPU ids, one slot each; [] = CPU slots
    runs_per_gpu: int = bounded(1, 1, 256)
    slots_dir: str = ""  # local: where slot locks live, shared by all sweeps on the machine; "" = /tmp/...-<uid>
    max_attempts: int = bounded(3, 1, 100)  # `sweep launch --retry-failed` resubmits a run at most this many times
    flops_per_second: float = bounded(2e10, hi=1e21, **POSITIVE)  # a job's throughput, to estimate run times
    trainer: Trainer = Trainer.real
    slurm: SlurmConfig = field(default_factory=SlurmConfig)


@dataclass
class FitConfig:
    counting: Counting = Counting.non_embedding
    huber_delta: float = bounded(1e-3, hi=10, **POSITIVE)
    bootstrap: int = bounded(200, 0, 100_000)
    seed: int = bounded(0, 0, SEED_MAX)
    exclude_edge_budgets: bool = True
    # relative std of final loss over seeds, added in the bootstrap (e.g. 0.002)
    seed_noise: float = bounded(0.0, 0, 1, hi_open=True)
    forms: list[FitForm] = field(default_factory=lambda: [FitForm.chinchilla, FitForm.compute])
    include_targets: bool = False  # fit target runs (trained from proposals) too, not only proxies
    # Approach 3 also fits each shape's curve-law predictions at the budgets it was not run at (sweep/fit/curvelaw.py)
    curve_law_points: bool = False

    def check(self) -> None:
        if FitForm.chinchilla not in self.forms:
            others = ", ".join(f.value for f in FitForm if f != FitForm.chinchilla)
            raise UserError(f"fit.forms={[f.value for f in self.forms]} must include chinchilla, and may add {others}")


@dataclass
class RunConfig:
    """One run to train with `sweep train`; zeros mean 'not set'. The ranges admit every run that
    `sweep propose` can write (up to target_multiplier x the largest budget, at train.lr x
    lr_ref_width / d_model), however large, and an LR high enough to make a run diverge on purpose."""

    d_model: int = bounded(0, 0, 10**9)
    n_layers: int = bounded(0, 0, 1000)
    n_heads: int = bounded(0, 0, 10**9)
    tokens: float = bounded(0.0, 0, 1e35)
    batch_size: int = bounded(0, 0, 65536)
    lr: float = bounded(0.0, 0, 1e6)
    budget: float = bounded(0.0, 0, 1e35)
    role: Role = Role.proxy  # target: a proposal's run, left out of fits and checked against its prediction


@dataclass
class WandbConfig:
    mode: WandbMode = WandbMode.disabled  # a WANDB_MODE in the environment overrides it
    project: str = "scaling-sweep"
    entity: str | None = None  # None: the API key's default entity


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


def compose(overrides: list[str] | None = None, config_file: Path | None = None) -> Config:
    """Compose `conf/config.yaml` (or exactly the config file given) with Hydra overrides; validate it."""
    overrides = list(overrides or [])
    if config_file is None:
        config = _compose_in(CONF_DIR, overrides)
    else:
        text = read_config_file(config_file)
        config = None if overrides else _read_saved(text)
        if config is None:
            # Hydra finds a config by its name in a directory: give it a copy of this one file alone.
            with tempfile.TemporaryDirectory(prefix="sweep-config-") as tmp:
                (Path(tmp) / "config.yaml").write_text(_with_later_keys(text), encoding="utf-8")
                config = _compose_in(Path(tmp), overrides)
    validate(config)
    return config


def _with_later_keys(text: str) -> str:
    """A saved config (a sweep's config.yaml, a proposal) with the keys added to the schema since it was
    written, at their defaults, so that an override can set them; any other file as it is."""
    try:
        values = OmegaConf.create(text)
        if "defaults" in values:
            return text
        return to_yaml(_typed(values))
    except (OmegaConfBaseException, yaml.YAMLError, ValueError, TypeError):
        return text  # Hydra says what is wrong with it


def _read_saved(text: str) -> Config | None:
    """The config of a file exactly as `to_yaml` writes one (a sweep's config.yaml, a proposal), read
    without Hydra, which would compose the same config from it, only slower. None for any other file
    (comments, a defaults list, a bad value): Hydra composes it, or says what is wrong."""
    try:
        config = _typed(OmegaConf.create(text))
    except (OmegaConfBaseException, yaml.YAMLError, ValueError, TypeError):
        return None
    return config if to_yaml(config) == text else None


def _compose_in(config_dir: Path, overrides: list[str]) -> Config:
    # Hydra takes a tenth of a second to import: only composing conf/ or applying overrides needs it.
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException

    _register_schema()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
            cfg = hydra_compose(config_name="config", overrides=overrides)
        # Through a plain (resolved) container, so that keys added with +key or ++key meet the schema too.
        return _typed(OmegaConf.to_container(cfg, resolve=True))
    # Hydra raises ValueError or TypeError for some malformed overrides (model=null, model=[0]).
    except (HydraException, OmegaConfBaseException, ValueError, TypeError) as exc:
        raise UserError(f"bad config: {_describe(exc)} (see conf/ for the valid keys and groups)") from None
    finally:
        GlobalHydra.instance().clear()


@functools.cache
def _register_schema() -> None:
    """Register Config in Hydra's ConfigStore, where conf/config.yaml's defaults list finds it."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="config_schema", node=Config)


def _typed(container: Any) -> Config:
    """A config's values, checked against the schema, as a Config."""
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(Config), container))  # type: ignore[return-value]


def _describe(exc: BaseException) -> str:
    """One line: the error, the underlying OmegaConf error when Hydra wraps one, and the key."""
    parts = [_first_line(exc).rstrip(".")]
    cause = exc.__cause__
    if cause is not None and _first_line(cause).rstrip(".") not in parts:
        parts.append(_first_line(cause).rstrip("."))
    key = next((getattr(e, "full_key", None) for e in (exc, cause) if getattr(e, "full_key", None)), None)
    return ": ".join(([key] if key and key not in parts[0] else []) + parts)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0].strip() if lines else type(exc).__name__


def read_config_file(path: Path) -> str:
    """The text of a config file, once it is known to be a small plain YAML mapping: no tags (which
    could name Python objects), no anchors or aliases (which can expand exponentially)."""
    try:
        if not path.is_file():
            problem = "is not a file" if path.exists() else "does not exist"
            raise UserError(f"config file {path} {problem}; pass a YAML written by plan or propose")
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise UserError(f"config file {path} is over {MAX_CONFIG_BYTES // 1024} KB; a config is a few KB of YAML")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UserError(f"config file {path} is not UTF-8 text; pass a YAML written by plan or propose") from None
    try:
        events = list(yaml.parse(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        where = f" at line {exc.problem_mark.line + 1}" if getattr(exc, "problem_mark", None) else ""
        problem = getattr(exc, "problem", None) or "unparsable"
        raise UserError(f"config file {path} is not valid YAML: {problem}{where}") from None
    for event in events:
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise UserError(f"config file {path} uses YAML anchors or aliases (& or *); write the values out")
        if getattr(event, "tag", None) and event.tag != "!":
            raise UserError(f"config file {path} uses the YAML tag {event.tag}; a config holds plain values")
    nodes = [e for e in events if isinstance(e, yaml.NodeEvent)]
    if not nodes or not isinstance(nodes[0], yaml.MappingStartEvent):
        raise UserError(f"config file {path} is not a YAML mapping of config keys (e.g. sweep:, train:)")
    return text


def validate(config: Config) -> None:
    """Reject values that type-check but make no sense, naming the key: every number against its
    `Bounds`, then each section's own `check` of how its fields fit together."""
    for section in fields(config):
        _validate_section(section.name, getattr(config, section.name))


def _validate_section(prefix: str, section: Any) -> None:
    for f in fields(section):
        key, value = f"{prefix}.{f.name}", getattr(section, f.name)
        if is_dataclass(value):
            _validate_section(key, value)
            continue
        bounds: Bounds | None = f.metadata.get("bounds")
        if isinstance(value, list) and bounds is not None and bounds.items is not None:
            fewest, most = bounds.items
            if not fewest <= len(value) <= most:
                raise UserError(f"{key}={value} must hold {fewest} to {most} items")
        for i, item in enumerate(value) if isinstance(value, list) else [(None, value)]:
            item_key = key if i is None else f"{key}[{i}]"
            if bounds is not None and not bounds.admits(item):
                raise UserError(f"{item_key}={item} must be {bounds.describe()}")
            if isinstance(item, str) and not item.isprintable():
                raise UserError(f"{item_key}={item!r} holds control characters (a newline, a tab?); remove them")
    check = getattr(section, "check", None)
    if check is not None:
        check()


def to_yaml(config: Config) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(config))


def to_dict(config: Config | FitConfig) -> dict[str, Any]:
    """A config, or its fit section, as plain JSON-able values: enums as their values."""
    return OmegaConf.to_container(OmegaConf.structured(config), enum_to_str=True)  # type: ignore[return-value]
