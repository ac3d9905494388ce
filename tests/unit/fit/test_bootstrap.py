import numpy as np
import pandas as pd

from sweep.fit.bootstrap import bootstrap
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
