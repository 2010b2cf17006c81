"""Exercise t1-ex-neff: the pooled effective sample size is the harmonic mean of the windows'."""
import numpy as np
from otter.test_files import test_case

OK_FORMAT = False
name = "t1-ex-neff"
points = 1


@test_case(points=1)
def test_pooled_neff(neff_pooled):
    per_window = np.array([4.0, 1 / (0.7**2 + 3 * 0.1**2)])  # 1 / sum of squared weights
    assert not np.isclose(neff_pooled, per_window.mean(), rtol=0.01), \
        "that is the mean of the windows' n_eff; average their reciprocals instead"
    assert np.isclose(neff_pooled, 1 / np.mean(1 / per_window), rtol=0.01), \
        "the pooled n_eff is 1 / mean(1 / n_eff) over the windows"
