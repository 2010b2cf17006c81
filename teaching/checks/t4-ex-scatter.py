"""Exercise t4-ex-scatter: thresholds a factor of three apart lie ln 3 apart in ln theta."""
import numpy as np
from otter.test_files import test_case

OK_FORMAT = False
name = "t4-ex-scatter"
points = 1


@test_case(points=1)
def test_threshold_spread(threshold_spread):
    assert threshold_spread > 0, "give the distance, a positive number"
    assert np.isclose(threshold_spread, np.log(3), rtol=0.01), \
        "thresholds a factor of three apart are ln 3 apart in ln theta"
