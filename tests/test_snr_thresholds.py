"""The SNR estimator and the threshold fit against synthetic data with known answers."""

import numpy as np
from scipy import special
import pytest

from scaling_utils import verdicts
from scaling_utils.synthetic import gaussian_mixture, mixture_means
from scaling_utils.estimators.snr import snr, whitened_snr
from scaling_utils.estimators.thresholds import fit_threshold
from scaling_utils.synthetic import preset_source


def mixture(rng, true_snr, k=8, d=32, per_class=50):
    """Gaussian mixture with unit isotropic noise and class means of the given SNR."""
    return gaussian_mixture(mixture_means(k, d, true_snr, rng), per_class, rng)


@pytest.mark.parametrize("true_snr", [0.05, 0.5])
def test_snr_relative_bias_below_two_percent_with_fifty_per_class(true_snr):
    rng = np.random.default_rng(0)
    means_seed = rng.integers(1 << 30)
    values = []
    for _ in range(400):
        x, y = mixture(np.random.default_rng([means_seed, _]), true_snr)
        values.append(snr(x, y, n_boot=0).snr)
    values = np.array(values)
    # 400 replicates: the standard error of the mean is sd/20, well below the 2 % tolerance
    se = values.std(ddof=1) / np.sqrt(len(values)) / true_snr
    bias = values.mean() / true_snr - 1
    assert se < 0.01
    assert abs(bias) < 0.02, (bias, se)


def test_plug_in_ratio_is_biased_where_the_corrected_one_is_not():
    rng = np.random.default_rng(1)
    x, y = mixture(rng, 0.0)  # no signal at all
    result = snr(x, y, n_boot=0)
    assert abs(result.snr) < 0.01  # the plug-in value would be about (1 - 1/8) / 50 = 0.0175
    assert result.n_classes == 8 and result.n_samples == 400


def test_snr_interval_covers_the_truth_at_its_nominal_rate():
    # 200 intervals at 95 %: coverage has SE 1.5 %, so [0.90, 0.99] is a three-SE band
    hits = 0
    for rep in range(200):
        rng = np.random.default_rng([7, rep])
        x, y = mixture(rng, 0.1, k=4, d=8)
        r = snr(x, y, n_boot=verdicts.MIN_REPLICATES, seed=rep)
        # the mixture's SNR uses the empirical class frequencies, which are exact here
        hits += r.ci_low <= 0.1 <= r.ci_high
    assert 0.90 <= hits / 200 <= 0.99, hits


def test_snr_group_bootstrap_is_wider_for_correlated_samples():
    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(50), 8)
    labels = groups % 4  # each group (e.g. a sequence) holds one class
    shared = rng.standard_normal((50, 8))[groups]  # noise shared within each group
    x = np.eye(4, 8)[labels] * 0.5 + shared + 0.3 * rng.standard_normal((400, 8))
    by_sample = snr(x, labels, n_boot=200)
    by_group = snr(x, labels, groups, n_boot=200)
    assert by_group.ci_high - by_group.ci_low > by_sample.ci_high - by_sample.ci_low


def test_snr_rejects_bad_input():
    with pytest.raises(ValueError, match="one label per sample"):
        snr(np.zeros((5, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="two classes"):
        snr(np.random.default_rng(0).standard_normal((6, 2)), [0, 0, 0, 0, 0, 1])


def test_whitened_snr_is_unbiased_and_unchanged_by_a_linear_map():
    # unit isotropic noise: J = sum_c pi_c ||mu_c||^2 = d x the trace ratio (32 x 0.02); a
    # small SNR, where the correction is larger than the signal
    rng = np.random.default_rng(11)
    means = mixture_means(8, 32, 0.02, rng)
    truth = (means ** 2).sum(1).mean()
    values = np.array([whitened_snr(*gaussian_mixture(means, 50, rng), n_boot=0).snr
                       for _ in range(200)])
    se = values.std(ddof=1) / np.sqrt(len(values))
    assert abs(values.mean() - truth) < 3 * se, (values.mean(), truth, se)
    # the plug-in J (no correction) would sit (K - 1) d / m = 0.56 above at least
    assert 0.56 > 10 * se
    x, y = gaussian_mixture(means, 50, rng)
    mixed = x @ rng.standard_normal((32, 32)) + 5.0
    assert whitened_snr(mixed, y, n_boot=0).snr == pytest.approx(whitened_snr(x, y, n_boot=0).snr,
                                                                 rel=1e-8)
    # one coordinate in other units (1e-6 of the rest) is still a dimension of its own
    x[:, 0] *= 1e-6
    assert whitened_snr(x, y, n_boot=0).dims == 32


def test_whitened_snr_jackknife_removes_the_bias_of_correlated_samples():
    # the belief state of a hidden Markov language, read along sequences: positions of one
    # sequence are correlated, so the within-class covariance has fewer degrees of freedom than
    # samples and the Wishart correction alone leaves J about 13 % high at 128 sequences (measured
    # 516 against 455).  Eight samples of 128 sequences against one of 2,048: the jackknifed
    # mean within 3 of its standard errors (7 here), the first-order one above
    source = preset_source("sparse128", 0)

    def beliefs_after_eight(n_sequences, seed):  # samples, states and sequences, positions >= 8
        tokens, states = source.sample_with_states(n_sequences, 64, seed=seed)
        beliefs = source.beliefs(tokens)[:, 8:]
        return (beliefs.reshape(-1, beliefs.shape[-1]), states[:, 8:].ravel(),
                np.repeat(np.arange(n_sequences), 56))

    large = whitened_snr(*beliefs_after_eight(2048, 100), n_boot=0).snr
    jackknifed, first_order = [], []
    for seed in range(8):
        x, y, g = beliefs_after_eight(128, seed)
        jackknifed.append(whitened_snr(x, y, g, n_boot=0).snr)
        first_order.append(whitened_snr(x, y, g, n_boot=0, jackknife_blocks=0).snr)
    se = np.std(jackknifed, ddof=1) / np.sqrt(8)
    assert abs(np.mean(jackknifed) - large) < 3 * se, (np.mean(jackknifed), large, se)
    assert np.mean(first_order) - large > 3 * se, (np.mean(first_order), large, se)


def test_whitened_snr_drops_redundant_dimensions_and_covers_the_truth():
    # a copy of every coordinate and a constant one leave the rank, and J, unchanged
    rng = np.random.default_rng(12)
    x, y = mixture(rng, 0.1, k=4, d=8)
    padded = np.hstack([x, 2 * x, np.ones((len(x), 1))])
    one, two = whitened_snr(x, y, n_boot=0), whitened_snr(padded, y, n_boot=0)
    assert two.dims == 8 and two.snr == pytest.approx(one.snr, rel=1e-6)
    hits = 0  # 100 intervals at 95 %: SE 2.2 %, so [0.88, 1.0] is a three-SE band
    for rep in range(100):
        rng = np.random.default_rng([13, rep])
        means = mixture_means(4, 8, 0.1, rng)
        r = whitened_snr(*gaussian_mixture(means, 50, rng), n_boot=verdicts.MIN_REPLICATES,
                         seed=rep)
        hits += r.ci_low <= (means ** 2).sum(1).mean() <= r.ci_high
    assert hits >= 88, hits
    # a few distinct inputs, each a point: no noise along the direction that separates the
    # classes, so J is infinite (not a large number from rounding)
    points = rng.standard_normal((6, 8))
    labels = np.repeat([0, 1, 2], 2)
    assert whitened_snr(np.repeat(points, 20, 0), np.repeat(labels, 20), n_boot=10).snr == np.inf
    # ... and so with rounding noise far below the spread of the points (1 - rho^2 about 1e-14)
    jittered = np.repeat(points, 20, 0) + 1e-7 * rng.standard_normal((120, 8))
    assert whitened_snr(jittered, np.repeat(labels, 20), n_boot=10).snr == np.inf
    with pytest.raises(ValueError, match="more samples than classes"):
        whitened_snr(rng.standard_normal((12, 8)), np.repeat([0, 1, 2], 4), min_per_class=2)


def test_fit_threshold_recovers_a_known_threshold():
    rng = np.random.default_rng(0)
    x = np.geomspace(0.1, 10, 15)
    p = 0.25 + 0.75 / (1 + np.exp(-4 * (np.log(x) - np.log(2.0))))
    fit = fit_threshold(x, rng.binomial(200, p) / 200, 200, chance=0.25, n_boot=100, seed=0)
    assert fit.ci_low <= 2.0 <= fit.ci_high
    assert abs(np.log(fit.theta / 2.0)) < 0.1
    assert fit.width == pytest.approx(2 * np.log(9) / 4, rel=0.2)
    assert fit.in_range
    assert np.allclose(fit.predict([2.0]), 0.25 + 0.75 * 0.5, atol=0.03)


def test_fit_threshold_handles_falling_success_and_flags_extrapolation():
    x = np.geomspace(1, 10, 8)
    falling = 1 / (1 + np.exp(3 * (np.log(x) - np.log(3.0))))
    fit = fit_threshold(x, falling, 1000, n_boot=0)
    assert fit.slope < 0 and fit.theta == pytest.approx(3.0, rel=0.05)
    never = fit_threshold(x, np.full(8, 0.01), 100, n_boot=0)
    assert not never.in_range or never.width > 5


def test_fit_threshold_interval_varies_and_covers_with_all_or_nothing_outcomes():
    # 0/1 outcomes around a threshold of 17: the bootstrap must not be degenerate (it used to
    # redraw Binomial(1, observed 0 or 1), giving a zero-width interval) and must cover.
    theta, k, n = 17.0, 3.0, 400
    rng = np.random.default_rng(5)
    covered = []
    for r in range(60):
        x = np.exp(rng.uniform(np.log(2), np.log(150), n))
        hits = rng.random(n) < special.expit(k * (np.log(x) - np.log(theta)))
        fit = fit_threshold(x, hits.astype(float), 1, n_boot=verdicts.MIN_REPLICATES, seed=r)
        assert fit.ci_high > fit.ci_low  # never a zero-width interval
        covered.append(fit.ci_low <= theta <= fit.ci_high)
    # 60 replicates: the standard error of a 95 % coverage is 0.028; allow about 2.5 of them.
    assert 0.88 <= np.mean(covered) <= 1.0


def test_fit_threshold_groups_carry_the_spread_between_runs():
    # Runs differ: each run's threshold is the population's times a log-normal factor. Pooled
    # with the runs as groups the CI covers the population threshold; treating every attempt as
    # independent (no groups) it does not, because it ignores the spread between runs.
    theta, k, runs, tau = 5.0, 4.0, 12, 0.35
    x = np.geomspace(0.5, 50, 12)
    rng = np.random.default_rng(8)
    grouped, ungrouped = [], []
    for r in range(60):
        run_theta = theta * np.exp(tau * rng.standard_normal(runs))
        p = special.expit(k * (np.log(x)[None, :] - np.log(run_theta)[:, None]))
        success = rng.binomial(200, p) / 200
        run_of = np.repeat(np.arange(runs), len(x))
        xs = np.tile(x, runs)
        with_groups = fit_threshold(xs, success.ravel(), 200, groups=run_of, n_boot=80, seed=r)
        without = fit_threshold(xs, success.ravel(), 200, n_boot=80, seed=r)
        grouped.append(with_groups.ci_low <= theta <= with_groups.ci_high)
        ungrouped.append(without.ci_low <= theta <= without.ci_high)
    # A percentile bootstrap over 12 groups under-covers a little; 60 replicates (SE 0.028).
    assert np.mean(grouped) >= 0.85
    assert np.mean(ungrouped) <= 0.7
