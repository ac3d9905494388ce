import math

import pytest

from sweep.plan.shapes import ShapeRules

RULES = ShapeRules(vocab_size=256, seq_len=128, head_dim=16, aspect_ratio=24, min_d_model=16, max_layers=48)


@pytest.mark.parametrize("n", [5e3, 3e4, 1e5, 1e6, 1e7, 1e8])
def test_snapped_shapes_are_valid_and_near_the_target(n):
    shape = RULES.snap(n)
    assert shape.d_model % 16 == 0 and shape.n_heads * 16 == shape.d_model
    assert 1 <= shape.n_layers <= 48
    assert abs(math.log(shape.N / n)) < math.log(1.5)


def test_large_models_keep_a_sensible_aspect_ratio():
    shape = RULES.snap(1e8)
    assert 8 <= shape.aspect_ratio <= 72
    assert shape.n_layers >= 4


def test_asked_aspect_ratio_moves_depth():
    deep, wide = RULES.snap(1e6, aspect_ratio=8), RULES.snap(1e6, aspect_ratio=96)
    assert deep.n_layers > wide.n_layers
