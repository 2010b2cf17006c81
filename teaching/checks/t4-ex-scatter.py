"""Exercise t4-ex-scatter: a pooled curve is at least as wide as the spread of the thresholds."""
import numpy as np
from otter.test_files import test_case

OK_FORMAT = False
name = "t4-ex-scatter"
points = 1


@test_case(points=1)
def test_least_pooled_width(least_pooled_width):
    assert np.isclose(least_pooled_width, np.log(3)), \
        "thresholds a factor of three apart are ln 3 apart in ln theta"
