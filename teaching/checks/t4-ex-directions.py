"""Exercise t4-ex-directions: under isotropic noise the trace ratio sees r / d of the readout's SNR."""
import numpy as np
from otter.test_files import test_case

OK_FORMAT = False
name = "t4-ex-directions"
points = 1


@test_case(points=1)
def test_trace_ratio_at_switch(trace_ratio_at_switch):
    assert set(trace_ratio_at_switch) == {32, 128}, "one fraction for d = 32 and one for d = 128"
    assert np.isclose(trace_ratio_at_switch[32], 4 / 32) and \
        np.isclose(trace_ratio_at_switch[128], 4 / 128), \
        "the trace ratio divides by the noise in all d directions, the readout by that in r"
