"""The title question's numbers: the compute-optimal allocation of a Chinchilla law, the data
that multiplies a power-law SNR, and their readings."""

import math

import numpy as np
import pandas as pd
import pytest

from scaling_utils import ceiling
from scaling_utils.published import LARGEST_RUN, PUBLISHED, TEXT_STOCK

HOFFMANN = PUBLISHED["Hoffmann et al. 2022"]


@pytest.mark.parametrize("law", PUBLISHED.values())
def test_the_optimum_is_the_lowest_loss_at_fixed_compute(law):
    C = LARGEST_RUN["flop"]
    at = ceiling.compute_optimal(law, C)
    assert 6 * at.N * at.D == pytest.approx(C, rel=1e-12)
    for factor in (0.9, 0.99, 1.01, 1.1):  # any other split of the same compute is worse
        N = at.N * factor
        D = C / (6 * N)
        other = law["E"] + law["A"] / N ** law["alpha"] + law["B"] / D ** law["beta"]
        assert other > at.loss
    # the reducible loss falls as C^-(alpha beta / (alpha + beta)) along the optimum
    c = ceiling.reducible_exponent(law)
    ratio = ceiling.compute_optimal(law, 10 * C).above_floor / at.above_floor
    assert ratio == pytest.approx(10 ** -c, rel=1e-9)
    assert ceiling.compute_optimal(law, ceiling.compute_to_halve(law) * C).above_floor == \
        pytest.approx(at.above_floor / 2, rel=1e-9)
    # compute_for_tokens inverts D*(C)
    assert ceiling.compute_optimal(law, ceiling.compute_for_tokens(law, at.D)).D == \
        pytest.approx(at.D, rel=1e-9)


def test_the_refit_trains_about_20_tokens_per_parameter_and_the_original_more():
    # Besiroglu et al.'s refit agrees with Hoffmann et al.'s rule of about 20 tokens per
    # parameter; the original parametric fit does not (the inconsistency the refit reports),
    # and its ratio grows with compute as C^((alpha - beta) / (alpha + beta))
    C = LARGEST_RUN["flop"]
    refit = ceiling.compute_optimal(PUBLISHED["Besiroglu et al. 2024"], C)
    assert 10 < refit.D / refit.N < 30
    at, later = (ceiling.compute_optimal(HOFFMANN, c) for c in (C, 10 * C))
    a, b = HOFFMANN["alpha"], HOFFMANN["beta"]
    assert (later.D / later.N) / (at.D / at.N) == pytest.approx(10 ** ((a - b) / (a + b)))
    assert ceiling.gain_per_doubling(HOFFMANN, 1e22) > ceiling.gain_per_doubling(HOFFMANN, 1e25) > 0


def test_doubling_a_power_law_snr_takes_a_power_of_two_times_the_data():
    assert ceiling.data_to_multiply_snr(1.0) == 2.0
    assert ceiling.data_to_multiply_snr(0.5) == 4.0
    assert ceiling.data_to_multiply_snr(0.0) == math.inf
    table = ceiling.readings_table(0.1, 0.08, 0.12, {"k = 1": 1.0})
    first = table.iloc[0]
    # the interval maps through the decreasing 2^(1/k): its ends swap
    assert first.ci_low == pytest.approx(2 ** (1 / 0.12)) and first.ci_high == pytest.approx(2 ** 12.5)
    assert table.iloc[1]["data to double the SNR"] == 2.0


def test_the_published_table_puts_the_stock_beyond_the_largest_run():
    table = ceiling.published_table()
    assert list(table.law) == list(PUBLISHED)
    assert (table["above the floor"] > 0).all()
    assert (table["stock low (x run)"] < table["stock reached (x run)"]).all()
    assert (table["stock reached (x run)"] < table["stock high (x run)"]).all()
    assert TEXT_STOCK["ci_low"] < TEXT_STOCK["tokens"] < TEXT_STOCK["ci_high"]


def test_readings_say_what_the_intervals_allow():
    cells = pd.DataFrame({"P": [1, 2], "D": [10.0, 10.0], "variance_term": [0.1, 0.3],
                          "variance_ci_low": [0.09, 0.28], "variance_ci_high": [0.11, 0.32],
                          "bias": [0.8, 0.5], "bias_ci_low": [0.78, 0.45],
                          "bias_ci_high": [0.82, 0.55]})
    shares = ceiling.data_term_share(cells)
    np.testing.assert_allclose(shares["V share"], [0.1 / 0.9, 0.3 / 0.8])
    returns = pd.DataFrame({"P": [2, 2], "D_from": [10.0, 20.0], "gain_per_doubling": [0.05, 0.08]})
    result = ceiling.CeilingResult(ceiling.published_table(), returns, shares,
                                   ceiling.readings_table(0.1, 0.08, 0.12, {}))
    assert result.variance_reading() == "in this grid it does not dominate"
    assert result.returns_reading().startswith("grows")
    overlapping = shares.assign(**{"V ci_high": [0.11, 0.46]})
    assert "cannot tell" in ceiling.CeilingResult(result.published, returns, overlapping,
                                                   result.snr).variance_reading()
    texts = result.texts()
    assert texts["t0c_run_flop_text"] == "3.8 × 10²⁵" and "$" not in "".join(texts.values())


def test_headroom_is_the_data_that_would_reach_the_ceiling_at_each_size_exponent():
    grid = pd.DataFrame({"P": [1, 1, 1, 2, 2], "D": [10, 100, 100, 100, 100],
                         "snr_white": [1.0, 4.0, 6.0, 20.0, 20.0]})
    per_size = pd.DataFrame({"P": [2, 1], "whitened_exponent": [0.25, 0.5],
                             "whitened_ci_low": [0.2, 0.0], "whitened_ci_high": [0.5, 0.6]})
    table = ceiling.headroom_table(grid, per_size, ceiling=80.0)
    assert list(table.P) == [1, 2]  # by size; the largest D only, seeds averaged
    np.testing.assert_allclose(table["share of the ceiling"], [5 / 80, 20 / 80])
    np.testing.assert_allclose(table["data to reach the ceiling"], [16.0 ** 2, 4.0 ** 4])
    # the exponent's interval mapped through (ceiling / J)^(1/k): a larger k needs less data
    assert table.ci_low.iloc[1] == pytest.approx(4.0 ** 2) and table.ci_high.iloc[1] == 4.0 ** 5
    assert table.ci_high.iloc[0] == math.inf  # an interval reaching k = 0 never gets there
    # a run at or above the estimated ceiling needs no more data; a non-positive SNR says nothing
    edge = ceiling.headroom_table(grid.assign(snr_white=[1.0, 90.0, 90.0, 0.0, 0.0]), per_size, 80.0)
    assert edge["data to reach the ceiling"].iloc[0] == 1.0
    assert np.isnan(edge["data to reach the ceiling"].iloc[1])
    result = ceiling.CeilingResult(ceiling.published_table(), pd.DataFrame(), pd.DataFrame(),
                                   ceiling.readings_table(0.1, 0.08, 0.12, {}), table)
    assert result.headroom_reading().startswith("the largest student is part of the way")


def test_powers_of_ten_are_plain_text():
    assert ceiling.powers_of_ten(3.8e25) == "3.8 × 10²⁵"
    assert ceiling.powers_of_ten(9.996e13) == "1 × 10¹⁴"
    assert ceiling.powers_of_ten(2.5e-3) == "2.5 × 10⁻³"
    # a multiple no positive exponent gives (a growth in D of 0 or less) is said in words
    assert ceiling.powers_of_ten(math.inf) == "infinitely many"
