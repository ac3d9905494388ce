import numpy as np
import pandas as pd
import pytest

from sweep.errors import UserError
from sweep.fit.forms import Chinchilla
from sweep.fit.parametric import fit_parametric


def epoch_rows(path):
    """Epoch's conventions: D = C / (6N), and drop the 5 highest-loss rows."""
    frame = pd.read_csv(path).sort_values("loss").iloc[:-5]
    n, c = frame["Model Size"].to_numpy(), frame["Training FLOP"].to_numpy()
    return n, c / (6 * n), frame["loss"].to_numpy()


def test_reproduces_epochs_huber_lbfgs_fit_on_chinchilla_data(epoch_csv):
    n, d, loss = epoch_rows(epoch_csv)
    assert len(n) == 240
    law = fit_parametric(n, d, loss, delta=1e-3).law
    # Besiroglu et al. 2024, Huber(1e-3) with L-BFGS-B over their grid of starts.
    assert pytest.approx(1.8172, rel=0.01) == law.E
    assert law.alpha == pytest.approx(0.34731, rel=0.01)
    assert law.beta == pytest.approx(0.36718, rel=0.01)


def test_recovers_known_parameters_from_noisy_synthetic_runs():
    truth = Chinchilla(E=1.7, A=400.0, B=1200.0, alpha=0.34, beta=0.30)
    rng = np.random.default_rng(0)
    n = np.exp(rng.uniform(np.log(1e7), np.log(1e10), 200))
    d = np.exp(rng.uniform(np.log(1e9), np.log(1e12), 200))
    loss = truth.loss(n, d) * np.exp(rng.normal(0, 0.002, 200))
    law = fit_parametric(n, d, loss).law
    assert pytest.approx(truth.E, rel=0.03) == law.E
    assert law.alpha == pytest.approx(truth.alpha, rel=0.1)
    assert law.beta == pytest.approx(truth.beta, rel=0.1)


def test_fewer_points_than_parameters_is_a_user_error():
    with pytest.raises(UserError, match="at least 6"):
        fit_parametric([1e6, 2e6, 4e6, 8e6, 1.6e7], [1e9] * 5, [3.0, 2.9, 2.8, 2.7, 2.6])
