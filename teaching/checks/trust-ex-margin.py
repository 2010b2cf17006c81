"""Exercise trust-ex-margin: a margin buys decisions, not errors."""
import numpy as np
from otter.test_files import test_case

OK_FORMAT = False
name = "trust-ex-margin"
points = 1


@test_case(points=1)
def test_limits(false_supported_limit, undetermined_limit):
    assert false_supported_limit <= 1, "a rate as a fraction (0.05, not 5)"
    assert np.isclose(false_supported_limit, 0.025), \
        "at the band's edge the interval lies inside only when its upper end misses: one tail"
    assert np.isclose(undetermined_limit, 0), "at the true value the interval shrinks into the band"
