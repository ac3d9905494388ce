import math

import pytest

from sweep.config import compose
from sweep.plan.hparams import batch_size

SEQ = 128


def test_the_batch_grows_as_the_square_root_of_the_tokens_so_steps_grow_too():
    train = compose().train
    small, large = 1e6, 1e8
    assert batch_size(small, SEQ, train) == round(train.ref_tokens / (SEQ * train.target_steps))
    ratio = batch_size(large, SEQ, train) / batch_size(small, SEQ, train)
    assert ratio == pytest.approx(math.sqrt(large / small), rel=0.1)
    steps = [d / (SEQ * batch_size(d, SEQ, train)) for d in (small, large)]
    assert steps[1] == pytest.approx(10 * steps[0], rel=0.1)


def test_an_exponent_of_one_gives_every_run_the_same_steps():
    train = compose(["train.batch_exponent=1", "train.target_steps=600"]).train
    for tokens in (2e6, 2e7):
        assert tokens / (SEQ * batch_size(tokens, SEQ, train)) == pytest.approx(600, rel=0.05)


def test_a_run_too_short_for_min_steps_gets_a_smaller_batch_down_to_one_sequence():
    train = compose(["train.min_batch_size=8"]).train
    assert batch_size(3e5, SEQ, train) == math.floor(3e5 / (SEQ * train.min_steps))
    assert batch_size(1e4, SEQ, train) == 1


def test_a_fixed_batch_is_kept():
    assert batch_size(1e9, SEQ, compose(["train.batch_size=7"]).train) == 7
