import json
import math
import time
from dataclasses import fields, is_dataclass, replace
from typing import get_type_hints

import pytest

from sweep.config import Config, Mlp, compose, to_yaml, validate
from sweep.errors import UserError


def test_defaults_compose_into_typed_config():
    config = compose()
    assert config.sweep.kind == "isoflop"
    assert len(config.sweep.budgets) >= 3 and config.sweep.sizes_per_budget >= 5
    assert config.data.source == "text" and config.data.vocab_size == 256


def test_group_and_key_overrides_apply():
    config = compose(["sweep=smoke", "sweep.budgets=[1e11,3e11]", "data=synthetic", "train.lr=1e-3"])
    assert config.sweep.budgets == [1e11, 3e11]
    assert config.data.source == "synthetic"
    assert math.isclose(config.train.lr, 1e-3)


@pytest.mark.parametrize(
    "override, message",
    [
        ("foo=1", "foo"),
        ("sweep.nonsense=3", "nonsense"),
        ("sweep=nope", "sweep/nope"),
        ("train.lr=abc", "train.lr"),
        ("sweep.budgets=[0]", "sweep.budgets[0]"),
        ("sweep.budgets=[-1e12]", "sweep.budgets[0]"),
        ("sweep.budgets=[nan]", "sweep.budgets[0]"),
        ("sweep.budgets=[inf]", "sweep.budgets[0]"),
        ("sweep.budgets=[]", "sweep.budgets"),
        ("model.mlp=relu", "model.mlp"),
        ("data.val_fraction=1.5", "data.val_fraction"),
    ],
)
def test_bad_overrides_raise_one_line_user_errors(override, message):
    with pytest.raises(UserError) as info:
        compose([override])
    text = str(info.value)
    assert message in text
    assert "\n" not in text


@pytest.mark.parametrize(
    "overrides, key",
    [
        (["train.warmup_frac=nan"], "train.warmup_frac"),
        (["train.beta1=1.5"], "train.beta1"),
        (["train.beta2=1"], "train.beta2"),
        (["train.grad_clip=nan"], "train.grad_clip"),
        (["train.seeds=[]"], "train.seeds"),
        (["sweep.seeds=[]"], "sweep.seeds"),
        (["sweep.budgets=[" + ",".join(["1e12"] * 1001) + "]"], "sweep.budgets"),
        (["sweep.seeds=[-1]"], "sweep.seeds[0]"),
        (["fit.bootstrap=-1"], "fit.bootstrap"),
        (["fit.seed=-1"], "fit.seed"),
        (["sweep.max_extensions=-1"], "sweep.max_extensions"),
        (["launcher=slurm", "launcher.slurm.time_min=-1"], "launcher.slurm.time_min"),
        (["run.lr=-1"], "run.lr"),
        (["data=synthetic", "data.vocab_size=1"], "data.vocab_size"),
        (["data=synthetic", "data.vocab_size=4096", "data.markov_order=2"], "data.markov_order"),
        (["+sweep.foo=1"], "sweep.foo"),
        (["++foo=1"], "foo"),
        (["sweep.sizes_per_budget=1e9"], "sweep.sizes_per_budget"),
        (["sweep.sizes_per_budget=1000000000"], "sweep.sizes_per_budget"),
        (["sweep.tokens_per_param=1e-300"], "sweep.tokens_per_param"),
        (["sweep.widthdepth_params=-1"], "sweep.widthdepth_params"),
        (["sweep.widthdepth_params=nan"], "sweep.widthdepth_params"),
        (["sweep.widthdepth_params=inf"], "sweep.widthdepth_params"),
        (["model=null"], "Config group override"),
        (["model=[0]"], "bad config"),
        (["sweep.kind=${oc.env:SWEEP_TEST_UNSET_VARIABLE}"], "sweep.kind"),
        (["model.max_layers=100000000"], "model.max_layers"),
        (["model.head_dim=15"], "model.head_dim"),
        (["train.min_batch_size=1024"], "train.min_batch_size"),
        (["model.min_layers=5", "model.max_layers=4"], "model.min_layers"),
        (["sweep.budgets=[1e11,1e11]"], "sweep.budgets"),
        (["sweep=lrbatch", "sweep.lr_multipliers=[1,1]"], "sweep.lr_multipliers"),
        (["sweep.sizes_per_budget=1000", "sweep.seeds=[0,1,2,3,4,5,6,7,8,9,10]"], "runs"),
        (["launcher.slurm.partition='a\nb'"], "launcher.slurm.partition"),
        (["+launcher.slurm.additional_parameters.x=[1,2]"], "additional_parameters.x"),
    ],
)
def test_out_of_range_values_are_refused_naming_the_key(overrides, key):
    with pytest.raises(UserError) as info:
        compose(overrides)
    text = str(info.value)
    assert key in text
    assert "\n" not in text


def numeric_fields(cls: type = Config, prefix: str = "") -> list[tuple[str, object]]:
    """(key, dataclass field) of every number or list of numbers in the schema, recursively."""
    found = []
    for f in fields(cls):
        kind = get_type_hints(cls)[f.name]
        if is_dataclass(kind):
            found += numeric_fields(kind, f"{prefix}{f.name}.")
        elif kind in (int, float, list[int], list[float]):
            found.append((prefix + f.name, f))
    return found


def test_every_number_in_the_schema_has_a_range():
    keys = [key for key, _ in numeric_fields()]
    assert "train.beta1" in keys and "launcher.slurm.time_min" in keys and "sweep.seeds" in keys
    assert [key for key, f in numeric_fields() if "bounds" not in f.metadata] == []


def test_the_defaults_lie_inside_their_ranges():
    validate(Config())


def test_choices_are_enums_that_print_as_their_value():
    config = compose(["model.mlp=swiglu"])
    assert isinstance(config.model.mlp, Mlp) and config.model.mlp == "swiglu"
    assert f"{config.model.mlp}" == str(config.model.mlp) == "swiglu"
    assert json.dumps({"mlp": config.model.mlp}) == '{"mlp": "swiglu"}'
    assert "relu" not in [m.value for m in Mlp]
    with pytest.raises(UserError, match="gelu, swiglu"):
        compose(["model.mlp=relu"])


def test_a_saved_config_composes_back_to_the_same_config(tmp_path):
    config = compose(["sweep=smoke", "data=synthetic", "fit.forms=[chinchilla,kaplan_n]", "train.beta1=0.8"])
    saved = tmp_path / "config.yaml"
    saved.write_text(to_yaml(config))
    assert compose(config_file=saved) == config


def test_the_config_file_given_is_the_one_loaded_whatever_its_extension(tmp_path):
    (tmp_path / "alt.yml").write_text("run:\n  d_model: 32\n")
    (tmp_path / "alt.yaml").write_text("run:\n  d_model: 64\n")
    assert compose(config_file=tmp_path / "alt.yml").run.d_model == 32
    assert compose(config_file=tmp_path / "alt.yaml").run.d_model == 64


def billion_laughs(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "content, words",
    [
        ('sweep:\n  kind: !!python/object/apply:os.system ["touch {marker}"]\n', ["python/object/apply"]),
        (billion_laughs(), ["aliases"]),
        ("sweep: &s {kind: isoflop}\nmodel: *s\n", ["aliases"]),
        ("- a\n- b\n", ["not a YAML mapping"]),
        ("# nothing but a comment\n", ["not a YAML mapping"]),
        ("sweep: {kind: [\n", ["not valid YAML", "line 2"]),
        (b"\xff\xfe\x00garbage", ["not UTF-8"]),
        ("x" * (2 << 20), ["KB"]),
        ("sweep:\n  nonsense: 1\n", ["sweep.nonsense"]),
    ],
)
def test_bad_config_files_are_refused_in_one_line_without_running_anything(tmp_path, content, words):
    marker = tmp_path / "executed"
    path = tmp_path / "bad.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content.replace("{marker}", str(marker)))
    started = time.monotonic()
    with pytest.raises(UserError) as info:
        compose(config_file=path)
    assert time.monotonic() - started < 60  # a billion-laughs file used to hang: refused at once, not expanded
    assert not marker.exists()
    text = str(info.value)
    assert "\n" not in text and all(word in text for word in words), text


@pytest.mark.parametrize(
    "path, words", [("missing.yaml", "does not exist"), ("dir", "not a file"), ("x" * 300 + ".yaml", "cannot read")]
)
def test_a_config_file_that_cannot_be_read(tmp_path, path, words):
    (tmp_path / "dir").mkdir()
    with pytest.raises(UserError) as info:
        compose(config_file=tmp_path / path)
    assert words in str(info.value) and "\n" not in str(info.value)


def hydra_calls(monkeypatch) -> list:
    import sweep.config as config_module

    calls, real = [], config_module._compose_in
    monkeypatch.setattr(config_module, "_compose_in", lambda *args: calls.append(args) or real(*args))
    return calls


def test_a_saved_config_reads_back_without_hydra_as_hydra_composes_it(tmp_path, monkeypatch):
    import sweep.config as config_module

    config = compose(["sweep=smoke", "data=synthetic", "fit.bootstrap=7", "fit.forms=[chinchilla]"])
    (tmp_path / "config.yaml").write_text(to_yaml(config))
    calls = hydra_calls(monkeypatch)
    assert compose(config_file=tmp_path / "config.yaml") == config
    assert calls == []
    assert config_module._compose_in(tmp_path, []) == config


@pytest.mark.parametrize(
    "edit, bootstrap",
    [
        (lambda text: "# @package _global_\n" + text, 7),  # Hydra reads a header from the comments
        (lambda text: "defaults:\n- _self_\n" + text, 7),
        (lambda text: text.replace("bootstrap: 7", "bootstrap: ${fit.seed}"), 3),
    ],
)
def test_any_other_config_file_is_composed_by_hydra(tmp_path, monkeypatch, edit, bootstrap):
    config = compose(["sweep=smoke", "fit.bootstrap=7", "fit.seed=3"])
    (tmp_path / "config.yaml").write_text(edit(to_yaml(config)))
    calls = hydra_calls(monkeypatch)
    assert compose(config_file=tmp_path / "config.yaml") == replace(
        config, fit=replace(config.fit, bootstrap=bootstrap)
    )
    assert len(calls) == 1


def test_a_config_saved_before_a_key_existed_takes_an_override_of_it(tmp_path):
    later = ("schedule:", "share_trunks:")
    saved = "\n".join(line for line in to_yaml(compose([])).splitlines() if not line.strip().startswith(later))
    path = tmp_path / "config.yaml"
    path.write_text(saved + "\n")
    assert compose(config_file=path).train.schedule == "cosine"  # the later key at its default
    config = compose(["train.schedule=wsd", "sweep.share_trunks=true"], config_file=path)
    assert config.train.schedule == "wsd" and config.sweep.share_trunks
    with pytest.raises(UserError, match="train.schedule"):
        compose(["train.schedule=step"], config_file=path)


def test_train_compile_takes_auto_true_or_false_as_yaml_and_hydra_spell_them():
    assert compose(["train.compile=true"]).train.compile == "True"  # a boolean to YAML, lower-cased where used
    assert compose(["train.precision=bf16"]).train.precision == "bf16"
    with pytest.raises(UserError, match="train.compile=maybe is not one of auto, true, false"):
        compose(["train.compile=maybe"])
