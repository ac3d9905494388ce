import math

import pytest

from sweep.plan.shapes import ShapeRules

RULES = ShapeRules(
    vocab_size=256, seq_len=128, head_dim=8, aspect_ratio=24, min_d_model=16, max_layers=48, min_layers=2
)
NEAREST = ShapeRules(vocab_size=256, seq_len=128, head_dim=16, aspect_ratio=24, min_d_model=16, max_layers=48,
                     rule="nearest")  # fmt: skip


@pytest.mark.parametrize("rules", [RULES, NEAREST], ids=["schedule", "nearest"])
@pytest.mark.parametrize("n", [1.2e4, 3e4, 1e5, 1e6, 1e7, 1e8])
def test_snapped_shapes_are_valid_and_near_the_target(rules, n):
    shape = rules.snap(n)
    assert shape.d_model % rules.head_dim == 0 and shape.n_heads * rules.head_dim == shape.d_model
    assert 1 <= shape.n_layers <= 48
    assert abs(math.log(shape.N / n)) < math.log(1.5)


def test_large_models_keep_a_sensible_aspect_ratio():
    shape = RULES.snap(1e8)
    assert 16 <= shape.aspect_ratio <= 36
    assert shape.n_layers >= 4


def test_asked_aspect_ratio_moves_depth():
    deep, wide = RULES.snap(1e6, aspect_ratio=8), RULES.snap(1e6, aspect_ratio=96)
    assert deep.n_layers > wide.n_layers


def test_the_depth_schedule_never_falls_as_size_grows_and_respects_min_layers():
    shapes = [RULES.snap(10 ** (3.5 + 0.02 * i)) for i in range(200)]
    layers = [s.n_layers for s in shapes]
    assert layers == sorted(layers) and layers[0] == 2 and layers[-1] > 10
    assert [s.N for s in shapes] == sorted(s.N for s in shapes)


def test_the_nearest_rule_jumps_between_depths_the_schedule_does_not():
    """What the schedule fixes: at small widths the closest shape alternates depth as N grows."""
    sizes = [6e3 * 1.25**i for i in range(12)]
    nearest = [NEAREST.snap(n).n_layers for n in sizes]
    assert nearest != sorted(nearest)
