"""Approach 3's optimiser reaches the exhaustive optimum: on every problem of bench/fit_cases.py
(Epoch's data whole and with budgets held out, 240 generated two-term laws, 40 one-term laws), the
objective of `fit_terms` is at most 1e-6 relative above that of a full L-BFGS-B polish of all of
Chinchilla's grid starts (cached in tests/data/fit_cases.npz: an hour to recompute)."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from sweep.fit import parametric
from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("fit_cases", REPO / "bench" / "fit_cases.py")
fit_cases = sys.modules.setdefault("fit_cases", importlib.util.module_from_spec(spec))  # dataclasses look it up
spec.loader.exec_module(fit_cases)


@pytest.fixture(scope="module")
def cases():
    return fit_cases.load()


def test_the_cache_holds_the_problems_the_generator_makes_today(cases):
    generated = fit_cases.problems()
    assert [p.name for p, _ in cases] == [p.name for p in generated]
    assert all(
        np.array_equal(c.loss, g.loss) and np.array_equal(c.x, g.x) for (c, _), g in zip(cases, generated, strict=True)
    )
    assert sum(p.name.startswith("law") for p, _ in cases) >= 200


@pytest.mark.slow
def test_every_problem_reaches_the_exhaustive_optimum(cases):
    missed = []
    for problem, reference in cases:
        _, objective = parametric.fit_terms(problem.x, problem.loss, fit_cases.DELTA)
        if fit_cases.missed(objective, reference):
            missed.append(f"{problem.name}: {objective:.8g} vs {reference:.8g}")
    assert not missed, "\n".join(missed)
