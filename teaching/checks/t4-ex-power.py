"""Exercise t4-ex-power: exact match over m tokens is p^m."""
import numpy as np
from otter.test_files import test_case

OK_FORMAT = False
name = "t4-ex-power"
points = 1


@test_case(points=1)
def test_exact_match(exact_match, emerges):
    assert np.allclose(exact_match, (0.5, 0.5**8)), "exact match is p^m"
    assert emerges == 8, "the curve that stays near zero and then shoots up is m = 8"
