"""Exercise t5-ex-chain: a constant ratio n_eff / n keeps the exponent and shifts the prefactor."""
import numpy as np
from otter.test_files import test_case

OK_FORMAT = False
name = "t5-ex-chain"
points = 1


@test_case(points=1)
def test_chain(snr_exponent_in_n, context_factor):
    assert np.isclose(snr_exponent_in_n, 1), "noise falling as 1 / (r n) leaves the SNR linear in n"
    assert np.isclose(context_factor, 4), "r times the SNR at every n: 1 / r times the context"
