"""Exercise t3-ex-bias: with no signal the plug-in SNR is about (1 - 1/K) / n."""
import numpy as np
from otter.test_files import test_case

OK_FORMAT = False
name = "t3-ex-bias"
points = 2


@test_case(points=1)
def test_expected_snr(expected_snr):
    assert np.isclose(expected_snr, 0.75 / 50, rtol=0.01), "(1 - 1/K) / n with K = 4, n = 50"


@test_case(points=1)
def test_n_below_one_percent(n_below_one_percent):
    assert int(n_below_one_percent) == n_below_one_percent, "a number of samples is whole"
    assert n_below_one_percent == 76, "(1 - 1/4) / n < 0.01 first holds at n = 76"
