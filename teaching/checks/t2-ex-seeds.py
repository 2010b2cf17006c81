"""Exercise t2-ex-seeds: resampling k runs shows (k - 1) / k of the variance of a new mean."""
import numpy as np
from otter.test_files import test_case

OK_FORMAT = False
name = "t2-ex-seeds"
points = 1


@test_case(points=1)
def test_bootstrap_share(bootstrap_share):
    assert np.isclose(bootstrap_share, 2 / 3, rtol=0.01), \
        "the resampled mean's variance is (1/k) mean(d_i^2) = ((k - 1)/k) s^2 / k"
