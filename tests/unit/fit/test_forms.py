import numpy as np
import pytest

from sweep.fit.forms import Chinchilla


def test_an_unidentified_law_has_no_optimum_instead_of_a_complex_one():
    law = Chinchilla(E=1.7, A=400.0, B=410.0, alpha=-0.1, beta=0.28)  # alpha A / (beta B) < 0
    assert "alpha = -0.1 <= 0" in law.unidentified()
    assert np.isnan(float(law.optimal_params(1e20)))
    assert np.isnan(law.optimal_params([1e18, 1e20])).all()
    assert "A = inf" in Chinchilla(E=1.7, A=float("inf"), B=410.0, alpha=0.3, beta=0.3).unidentified()


def test_an_identified_law_keeps_its_closed_form_and_overflows_to_inf():
    law = Chinchilla(E=1.7, A=400.0, B=410.0, alpha=0.34, beta=0.28)
    assert law.unidentified() is None
    g = (0.34 * 400.0 / (0.28 * 410.0)) ** (1 / 0.62)
    assert float(law.optimal_params(6e20)) == pytest.approx(g * 1e20 ** (0.28 / 0.62), rel=1e-12)
    assert np.isinf(float(Chinchilla(E=1.0, A=1e300, B=1e-300, alpha=0.01, beta=0.01).optimal_params(1e13)))
