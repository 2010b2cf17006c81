"""Exercise t2-ex-identity: the three terms telescope to the loss."""
import numpy as np
from otter.test_files import test_case

OK_FORMAT = False
name = "t2-ex-identity"
points = 1


@test_case(points=1)
def test_terms(terms):
    assert len(terms) == 3, "three terms: (epsilon, B, V)"
    assert np.isclose(sum(terms), 3.9), "the terms add up to L"
    assert np.allclose(terms, (3.06, 0.44, 0.40)), \
        "epsilon = H, B = L_approx - H, V = L - L_approx"
