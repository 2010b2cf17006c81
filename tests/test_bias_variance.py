"""Theorem 2 tables: B(P), V(P, D), convergence flags and returns per doubling."""

import numpy as np
import pandas as pd
import pytest

from scaling_utils import bias_variance


def _table(rows):
    return pd.DataFrame(rows, columns=["P", "D", "seed", "data_mode", "loss"])


def test_decompose_splits_known_losses():
    eps = 1.0
    # L = eps + 0.5 (P=10) or 0.2 (P=100) + 1/D-like terms; the largest D gives B exactly
    rows = [(P, D, s, "fresh", eps + b + v + 0.001 * s)
            for P, b in ((10, 0.5), (100, 0.2)) for D, v in ((1e3, 0.3), (1e4, 0.0))
            for s in range(2)]
    cells = bias_variance.decompose(_table(rows), eps)
    big_d = cells[cells.D == 1e4].set_index("P")
    assert big_d.bias.to_dict() == pytest.approx({10: 0.5005, 100: 0.2005})
    small_d = cells[cells.D == 1e3].set_index("P")
    assert small_d.variance_term.to_dict() == pytest.approx({10: 0.3, 100: 0.3})
    assert not cells.converged.any()  # a 0.3-nat step is far beyond the seed noise


def test_a_single_data_size_is_never_called_converged():
    rows = [(10, 1e3, s, "fresh", 2.0 + 0.01 * s) for s in range(3)]
    cells = bias_variance.decompose(_table(rows), 1.0)
    assert not cells.converged.any()


def test_repeated_runs_are_kept_out_of_the_decomposition():
    rows = [(10, 1e3, 0, "fresh", 2.0), (10, 1e4, 0, "fresh", 1.8), (10, 1e4, 0, "repeated", 1.9)]
    cells = bias_variance.decompose(_table(rows), 1.0)
    assert len(cells) == 2 and cells.loss.max() == 2.0


def test_gain_per_doubling():
    cells = pd.DataFrame({"P": [10, 10, 10], "D": [1e3, 2e3, 8e3], "loss": [3.0, 2.8, 2.6]})
    gains = bias_variance.gain_per_doubling(cells, "D")
    np.testing.assert_allclose(gains.gain_per_doubling, [0.2, 0.1])
