"""Runs generated from a known law, for checking what a fit or a comparison recovers (tests, bench/):
an IsoFLOP grid whose losses are the law's, off it by multiplicative noise."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sweep.fit.forms import Chinchilla


def isoflop_runs(
    law: Chinchilla, budgets, sizes: int = 5, span: float = 8.0, noise: float = 0.0, seed: int = 0
) -> pd.DataFrame:
    """`sizes` sizes per budget, log-spaced over `span` around the law's optimal N, D = C / 6N, each
    loss law(N, D) x exp(N(0, noise)); columns run_id, N, D, C, loss, budget."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in budgets:
        for n in law.optimal_params(c) * span ** np.linspace(-0.5, 0.5, sizes):
            d = c / (6 * n)
            loss = float(law.loss(n, d)) * np.exp(rng.normal(0, noise))
            rows.append({"run_id": f"r{len(rows):04d}", "N": n, "D": d, "C": c, "loss": loss, "budget": c})
    return pd.DataFrame(rows)


def compute_scaled(law: Chinchilla, k: float) -> Chinchilla:
    """The law of a variant worth k times the compute: L'(N, D) = L(sqrt(k) N, sqrt(k) D), so that its
    compute-optimal loss at C is the law's at kC (6 sqrt(k)N sqrt(k)D = 6kND)."""
    return Chinchilla(law.E, law.A * k ** (-law.alpha / 2), law.B * k ** (-law.beta / 2), law.alpha, law.beta)


def crossing_law(law: Chinchilla, at: float) -> Chinchilla:
    """A law with the same floor E and 15% steeper exponents whose compute-optimal frontier meets law's
    at compute `at` (counted as 6ND): worse below it, better above. Scaling A and B together scales
    the frontier's reducible part alone (the allocation depends on their ratio only)."""
    from sweep.fit.compare import Frontiers

    steeper = Chinchilla(law.E, law.A, law.B, law.alpha * 1.15, law.beta * 1.15)
    scale = (Frontiers.of([law]).loss([at])[0, 0] - law.E) / (Frontiers.of([steeper]).loss([at])[0, 0] - law.E)
    return Chinchilla(law.E, steeper.A * scale, steeper.B * scale, steeper.alpha, steeper.beta)
