"""Exercise ceiling-ex-optimum: the reducible loss at the optimum falls as C^(-alpha beta / (alpha + beta))."""
import numpy as np
from otter.test_files import test_case

OK_FORMAT = False
name = "ceiling-ex-optimum"
points = 1


@test_case(points=1)
def test_loss_exponent(loss_exponent):
    assert loss_exponent > 0, "give a, the size of the exponent in C^(-a)"
    assert np.isclose(loss_exponent, 0.34 * 0.28 / (0.34 + 0.28), rtol=0.01), "alpha beta / (alpha + beta)"
