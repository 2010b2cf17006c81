"""Exercise t6-ex-floor: a pure power law fitted near the floor has a smaller exponent."""
import numpy as np
from otter.test_files import test_case

OK_FORMAT = False
name = "t6-ex-floor"
points = 1


@test_case(points=1)
def test_fitted_a(fitted_a):
    D = np.logspace(9, 12, 20)
    L = 1.69 + 410.7 * D**-0.28
    slopes = 0.28 * (L - 1.69) / L  # the local slope: beta times the excess fraction
    assert fitted_a > 0, "give a, the size of the slope (log L falls with log D)"
    assert fitted_a < 0.28, "the fitted exponent is smaller than beta"
    assert slopes.min() < fitted_a < slopes.max(), "a line's slope lies among the local slopes"
    assert np.isclose(fitted_a, -np.polyfit(np.log(D), np.log(L), 1)[0], rtol=0.01), \
        "fit log L against log D by least squares at the 20 points"
