"""Generated overrides of every config key: `compose` returns a valid config or raises a one-line
UserError, never anything else; and an accepted config saves and composes back unchanged."""

from __future__ import annotations

import math
from dataclasses import fields, is_dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any, get_type_hints

from hypothesis import event, given, settings
from hypothesis import strategies as st

from sweep.config import CONF_DIR, Bounds, Config, compose, to_yaml
from sweep.errors import UserError


def leaves(cls: type = Config, prefix: str = "") -> dict[str, tuple[Any, Bounds | None]]:
    """Every key of the schema with its type and its bounds."""
    found = {}
    for f in fields(cls):
        kind = get_type_hints(cls)[f.name]
        if is_dataclass(kind):
            found |= leaves(kind, f"{prefix}{f.name}.")
        else:
            found[prefix + f.name] = (kind, f.metadata.get("bounds"))
    return found


LEAVES = leaves()
KEYS = sorted(LEAVES)
PRESETS = {group.name: sorted(p.stem for p in group.glob("*.yaml")) for group in CONF_DIR.iterdir() if group.is_dir()}

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["0", "1", "-1", "0.5", "1e-300", "1e300", "nan", "inf", "-inf", "2", "64", "1e12"]),
)
words = st.one_of(
    st.sampled_from(["gelu", "isoflop", "widthdepth", "synthetic", "slurm", "noop", "total", "chinchilla", "null"]),
    st.text(max_size=12),
    st.sampled_from(["${oc.env:SWEEP_UNSET}", "${sweep.kind}", "'quoted'", "a b", "[", "{a: 1}", "true"]),
)
values = st.one_of(numbers, words, st.lists(st.one_of(numbers, words), max_size=4).map(lambda xs: f"[{','.join(xs)}]"))
overrides = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["", "", "", "+", "++"]), st.sampled_from(KEYS), values).map(
            lambda t: f"{t[0]}{t[1]}={t[2]}"
        ),
        st.sampled_from(sorted(PRESETS)).flatmap(
            lambda group: st.one_of(st.sampled_from(PRESETS[group]), words).map(lambda preset: f"{group}={preset}")
        ),
        st.sampled_from(KEYS).map(lambda key: f"~{key}"),
    ),
    min_size=1,
    max_size=3,
)


def numbers_in(node: object) -> list[float]:
    if is_dataclass(node):
        return [x for f in fields(node) for x in numbers_in(getattr(node, f.name))]
    if isinstance(node, list):
        return [x for item in node for x in numbers_in(item)]
    return [node] if isinstance(node, (int, float)) and not isinstance(node, bool) else []


@settings(max_examples=200, deadline=None)
@given(overrides)
def test_generated_overrides_give_a_valid_config_or_one_user_error_line(given_overrides):
    try:
        config = compose(given_overrides)
    except UserError as exc:
        message = str(exc)
        assert message and "\n" not in message and "Traceback" not in message
        return
    event("accepted")
    assert isinstance(config, Config)
    assert all(math.isfinite(x) for x in numbers_in(config)), given_overrides
    with TemporaryDirectory() as tmp:
        saved = Path(tmp) / "config.yaml"
        saved.write_text(to_yaml(config))
        assert compose(config_file=saved) == config
