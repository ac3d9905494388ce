import math

import pytest

from sweep.config import compose
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
