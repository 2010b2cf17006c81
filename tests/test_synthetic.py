"""The i.i.d. attention control satisfies Theorem 1's assumptions: the estimators must see 1/n."""

import numpy as np
import pytest

from scaling_utils.chapters import t1_clt as clt
from scaling_utils.synthetic import iid_attention_control


@pytest.fixture(scope="module")
def control():
    return iid_attention_control(1200, clt.length_grid(4, 1024), dim=16, seed=0, n_groups=24,
                                 n_projections=8)


def test_control_variance_falls_as_one_over_n(control):
    fits = clt.variance_scaling(control, fit_from=64).fits.set_index("site")
    for site in ("attention.0", "block.0"):
        # within the pre-asymptotic margin; seed-to-seed spread of the exponent is about 0.01
        assert fits.loc[site, "covers_claim"], fits.loc[site]
        assert abs(fits.loc[site, "exponent"] + 1) < clt.CLAIM_MARGIN


def test_control_attention_is_diffuse(control):
    ratio = control.n_eff[0, :, 0] / control.lengths
    assert np.all(ratio > 0.3) and np.all(ratio <= 1)


def test_control_becomes_gaussian(control):
    table = clt.gaussianity({"control": (control, ["attention.0", "block.0"])}, n_null=1000, seed=0)
    at_max = table.query("n == 1024")
    # 16 tests at the 5 % level after FDR control: expect no rejections
    assert at_max.bh_reject.sum() <= 1
    ks = table.groupby("n").ks.median()
    assert ks.loc[1024] < clt.ks_null_quantile(1200, q=0.95)


@pytest.mark.parametrize("profile", ["smoke", "cpu"])
def test_control_passes_at_the_settings_the_book_uses(profile):
    from scaling_utils.profiles import profile_values
    p = profile_values("theorem1_clt", profile)
    control = iid_attention_control(p["synthetic_samples"],
                                    clt.length_grid(p["min_length"], p["synthetic_max_length"]),
                                    dim=p["synthetic_dim"], seed=p["seed"], n_groups=p["n_groups"])
    fit = clt.variance_scaling(control, fit_from=p["fit_from"]).fits
    attention = fit.set_index("site").loc["attention.0"]
    assert clt.reading(attention.ci_low, attention.ci_high) == "consistent with 1/n", attention
