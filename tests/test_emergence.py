"""Theorem 4 analysis on inputs with known answers."""

import numpy as np
import pandas as pd
import pytest

from scaling_utils import emergence


def test_crossing_resources_interpolates_in_log_d():
    table = pd.DataFrame(dict(task="copy", size="2x64", P=1000.0, D=[100, 1000, 10000],
                              exact=[0.0, 0.25, 0.75]))
    cost = emergence.crossing_resources(table, "exact", 0.5).iloc[0]
    assert cost.D_cross == pytest.approx(np.sqrt(1000 * 10000))
    assert cost.flops_cross == pytest.approx(6 * 1000 * cost.D_cross)
    never = emergence.crossing_resources(table.assign(exact=0.1), "exact", 0.5).iloc[0]
    assert np.isnan(never.D_cross)
