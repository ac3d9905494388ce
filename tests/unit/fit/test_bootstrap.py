import numpy as np
import pandas as pd

from sweep.fit.bootstrap import bootstrap, draw
from sweep.fit.errors import FitError


def test_refits_that_fail_or_overflow_are_dropped_and_counted():
    runs = pd.DataFrame({"loss": np.linspace(2.0, 3.0, 10)})
    calls = iter(range(100))

    def refit(sample: pd.DataFrame) -> float:
        i = next(calls)
        if i % 4 == 0:
            raise FitError("too few points")
        if i % 4 == 1:
            return float(np.exp(np.float64(1e4)))  # overflows to inf
        if i % 4 == 2:
            raise OverflowError("cannot convert float infinity to integer")
        return float(sample["loss"].mean())

    refits = bootstrap(runs, refit, 20, valid=np.isfinite)
    assert (len(refits), refits.attempted, refits.dropped) == (5, 20, 15)
    assert all(np.isfinite(list(refits)))
    assert refits.note("approach3") == "approach3: 15 of 20 bootstrap refits dropped (failed or overflowed)"
    assert bootstrap(runs, lambda s: 1.0, 3).note("approach3") is None


def test_the_draws_are_the_same_however_they_are_batched():
    runs = pd.DataFrame({"loss": np.linspace(2.0, 3.0, 30), "budget": np.repeat([1.0, 2.0, 3.0], 10)})
    draws = draw(runs, 25, seed=4, by="budget", seed_noise=0.01)
    (whole,) = draws.batches(elements=10**9)
    batches = list(draws.batches(elements=30 * 4))  # 4 resamples a batch: 7 batches, the last of 1
    assert [len(b) for b in batches] == [4] * 6 + [1]
    assert np.array_equal(np.concatenate([b.rows for b in batches]), whole.rows)
    assert np.array_equal(np.concatenate([b.loss_factor for b in batches]), whole.loss_factor)
    budget = runs["budget"].to_numpy()[whole.rows]
    assert all(
        (budget[:, lo:hi] == b).all() for lo, hi, b in zip(whole.bounds[:-1], whole.bounds[1:], [1, 2, 3], strict=True)
    )


def test_a_batch_never_holds_more_rows_than_asked_for_however_many_resamples():
    runs = pd.DataFrame({"loss": np.linspace(2.0, 3.0, 1000)})
    sizes = [b.rows.size for b in draw(runs, 10_000, seed=0).batches(elements=250_000)]
    assert len(sizes) == 40 and max(sizes) == 250_000 and sum(sizes) == 10_000 * 1000
