"""LR schedules: cosine and WSD (warmup, stable, decay), step by step."""

import math

import pytest

from models.schedules import Schedule


def test_cosine_warms_up_then_falls_to_the_floor():
    s = Schedule(total_steps=100, warmup_steps=10, min_ratio=0.1)
    assert s.multiplier(0) == pytest.approx(0.1)
    assert s.multiplier(9) == pytest.approx(1.0)
    assert s.multiplier(10) == pytest.approx(1.0)
    assert s.multiplier(55) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert s.multipliers()[-1] == pytest.approx(0.1, abs=1e-3)


@pytest.mark.parametrize("shape", ["linear", "one_minus_sqrt"])
def test_wsd_holds_the_peak_until_its_decay_then_reaches_the_floor(shape):
    s = Schedule(total_steps=100, warmup_steps=10, min_ratio=0.1, kind="wsd", decay_steps=20, decay_shape=shape)
    m = s.multipliers()
    assert s.decay_start == 80
    assert all(m[10:80] == 1.0)
    assert m[80] < 1.0 and m[-1] == pytest.approx(0.1)
    assert all(m[81:] < m[80:-1])  # strictly falling through the decay
    halfway = 0.5 if shape == "linear" else math.sqrt(0.5)
    assert m[89] == pytest.approx(1 - 0.9 * halfway)


def test_a_trunk_has_no_decay_and_1_sqrt_falls_faster_early():
    trunk = Schedule(100, 10, 0.1, "wsd", 0)
    assert all(trunk.multipliers()[10:] == 1.0)
    linear, root = (Schedule(100, 10, 0.1, "wsd", 20, shape).multiplier(84) for shape in ("linear", "one_minus_sqrt"))
    assert root < linear


def test_an_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="unknown schedule"):
        Schedule(100, 10, 0.1, "step")
