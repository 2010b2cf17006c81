"""Estimators against known answers (fixed seeds; tolerances from the estimators' spread)."""

import numpy as np
import pytest
import torch

from scaling_utils.estimators import intervals, moments, normality, power_laws, snr, thresholds


def _averages_of_iid_vectors(n_windows=400, dim=8, lengths=(2, 4, 8, 16, 32, 64), seed=0):
    """Per-window squared deviation of the mean of the first n of 64 i.i.d. vectors (causal-
    prefix sampling, so values of one window at different n are correlated)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_windows, max(lengths), dim))
    prefix_means = np.cumsum(x, 1) / np.arange(1, max(lengths) + 1)[None, :, None]
    y = np.stack([(prefix_means[:, n - 1] ** 2).sum(-1) for n in lengths], 1)  # mu = 0
    return np.tile(lengths, (n_windows, 1)), y, np.repeat(np.arange(n_windows), len(lengths))


def test_power_law_of_iid_averages_has_exponent_minus_one():
    x, y, groups = _averages_of_iid_vectors()
    fit = power_laws.fit_power_law(x, y, groups, n_boot=400, seed=1)
    assert fit.covers(-1.0)
    assert abs(fit.exponent + 1) < 0.1  # SE of the slope here is about 0.03
    assert fit.ci_high - fit.ci_low < 0.3
    assert fit.prefactor == pytest.approx(8.0, rel=0.15)  # tr Cov = dim for one vector


def test_power_law_ci_excludes_a_wrong_exponent():
    x, y, groups = _averages_of_iid_vectors()
    y_slow = y * x ** 0.5  # now variance ~ n^-0.5
    fit = power_laws.fit_power_law(x, y_slow, groups, n_boot=300, seed=1)
    assert not fit.covers(-1.0)
    assert fit.covers(-0.5)


def test_group_bootstrap_uses_the_correlation_within_windows():
    # each window multiplies all its lengths by one shared factor, which cancels in the slope:
    # resampling whole windows sees that, resampling single observations does not
    rng = np.random.default_rng(3)
    n_w, lengths = 200, np.array([1, 2, 4, 8, 16])
    shared = rng.lognormal(0, 0.5, n_w)[:, None]
    y = shared * lengths[None, :] ** -1.0 * rng.lognormal(0, 0.05, (n_w, len(lengths)))
    x = np.tile(lengths, (n_w, 1))
    g = np.repeat(np.arange(n_w), len(lengths))
    grouped = power_laws.fit_power_law(x, y, g, n_boot=300, seed=0)
    naive = power_laws.fit_power_law(x, y, None, n_boot=300, seed=0)
    assert grouped.covers(-1.0)
    assert (naive.ci_high - naive.ci_low) > (grouped.ci_high - grouped.ci_low)


def test_offset_power_law_recovers_known_parameters():
    rng = np.random.default_rng(0)
    t = np.arange(1, 257)
    n_g = 20
    y = 3.0 + 2.0 * t[None, :] ** -0.6 + rng.normal(0, 0.05, (n_g, t.size))
    fit = power_laws.fit_power_law(np.tile(t, (n_g, 1)), y, np.repeat(np.arange(n_g), t.size),
                              n_boot=100, seed=0, offset=True)
    assert fit.exponent == pytest.approx(-0.6, abs=0.05)
    assert fit.offset == pytest.approx(3.0, abs=0.05)
    assert fit.covers(-0.6)


def test_power_law_rejects_bad_input():
    with pytest.raises(ValueError, match="distinct x"):
        power_laws.fit_power_law([1, 1], [1, 2])
    with pytest.raises(ValueError, match="positive"):
        power_laws.fit_power_law([0, 1, 2], [1, 2, 3])


def test_lilliefors_false_positive_rate_is_alpha():
    # 2000 normal samples of size 50: rejections at 5 % are Binomial(2000, 0.05): SD 0.005
    rng = np.random.default_rng(7)
    result = normality.normality_tests(rng.normal(3.0, 2.0, (50, 2000)), n_null=2000, seed=1)
    assert abs((result.ks_pvalue < 0.05).mean() - 0.05) < 0.02
    assert abs((result.ad_pvalue < 0.05).mean() - 0.05) < 0.02


def test_normality_tests_detect_skewed_data():
    rng = np.random.default_rng(0)
    result = normality.normality_tests(rng.exponential(size=(200, 20)), n_null=1000, seed=0)
    assert (result.ks_pvalue < 0.05).mean() > 0.9
    assert (result.ad_pvalue < 0.05).mean() > 0.9


def test_multiple_testing_corrections_match_hand_computation():
    p = np.array([0.01, 0.04, 0.03, 0.5])
    np.testing.assert_allclose(normality.holm(p), [0.04, 0.09, 0.09, 0.5])
    np.testing.assert_allclose(normality.benjamini_hochberg(p), [0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.5])


def test_pooled_effective_context_is_the_harmonic_mean_that_predicts_the_variance():
    # two kinds of rows: uniform over 100 tokens and all weight on one token; a weighted average
    # of i.i.d. unit-variance terms has variance sum a^2, so the mean variance over rows is
    # mean(sum a^2) = 1 / n_eff with n_eff the harmonic mean (about 2), not the mean (50.5)
    rows = np.stack([np.full(100, 0.01), np.eye(100)[0]])
    concentration = snr.attention_concentration(rows)
    np.testing.assert_allclose(concentration, [0.01, 1.0])
    rng = np.random.default_rng(0)
    values = rng.standard_normal((20000, 2, 100))
    variance = ((rows[None] * values).sum(-1) ** 2).mean()
    assert 1 / concentration.mean() == pytest.approx(1 / variance, rel=0.03)  # SE about 1 %
    assert (1 / concentration).mean() > 25 / variance


def test_streaming_moments_equal_exact_statistics():
    rng = np.random.default_rng(0)
    data = rng.normal(2.0, 3.0, (37, 3, 5))  # windows x lengths x dim
    acc = moments.MomentAccumulator(4, 3, 5, torch.device("cpu"), torch.eye(5)[:, :2])
    for start in range(0, 37, 8):  # uneven batches
        ids = torch.arange(start, min(start + 8, 37))
        acc.update(torch.as_tensor(data[start:start + 8]), ids % 4, ids, torch.arange(3))
    m = acc.result()
    np.testing.assert_allclose(m.mean, data.mean(0))
    exact = ((data - data.mean(0)) ** 2).sum(-1).sum(0) / (37 - 1)
    np.testing.assert_allclose(moments.total_variance(m).variance, exact)
    np.testing.assert_allclose(m.projections, data[:, :, :2])
    dropped = moments.total_variance(m, exclude_dims=np.array([0, 4])).variance
    np.testing.assert_allclose(dropped, ((data[..., 1:4] - data[..., 1:4].mean(0)) ** 2).sum(-1).sum(0) / 36)


def test_massive_dims_finds_the_large_coordinates():
    rng = np.random.default_rng(0)
    data = rng.normal(size=(20, 2, 10))
    data[..., 7] += 100
    data[..., 2] -= 50
    acc = moments.MomentAccumulator(2, 2, 10, torch.device("cpu"))
    ids = torch.arange(20)
    acc.update(torch.as_tensor(data), ids % 2, ids, torch.arange(2))
    assert list(moments.massive_dims(acc.result(), 2)) == [7, 2]


def test_constant_columns_are_not_rejected_and_corrections_skip_nan():
    rng = np.random.default_rng(0)
    samples = np.column_stack([rng.normal(size=40), np.ones(40)])
    result = normality.normality_tests(samples, n_null=200, seed=0)
    assert np.isfinite(result.ks_pvalue[0]) and np.isnan(result.ks_pvalue[1])
    np.testing.assert_allclose(normality.holm([0.01, np.nan, 0.04]), [0.02, np.nan, 0.04])
    np.testing.assert_allclose(normality.benjamini_hochberg([0.01, np.nan, 0.04]), [0.02, np.nan, 0.04])


def test_offset_fit_of_a_rising_curve_is_not_estimable():
    x = np.arange(1, 20)
    fit = power_laws.fit_power_law(x, 1 + 0.1 * x, offset=True, n_boot=20)
    assert np.isnan(fit.exponent) and np.isnan(fit.ci_low)


def test_hierarchical_bootstrap_gives_a_cell_mean_the_variance_of_new_runs():
    # three runs per cell: resampling them alone gives their mean 2/3 of the variance s^2 / 3
    # of a mean of three new runs; the adjusted residuals restore it (the mean of the
    # resampled cell mean stays the cell mean)
    values = np.array([1.0, 2.0, 4.0, 10.0, 10.0, 13.0])
    cell = np.array([0, 0, 0, 1, 1, 1])
    reps = intervals.hierarchical_bootstrap(values, cell, n_boot=40_000, seed=0)
    means = np.stack([reps[:, cell == c].mean(1) for c in (0, 1)], 1)
    for c in (0, 1):
        v = values[cell == c]
        # 40 000 replicates: the relative SE of a variance is about sqrt(2 / 40 000) = 0.7 %
        assert means[:, c].var() == pytest.approx(v.var(ddof=1) / 3, rel=0.03)
        assert means[:, c].mean() == pytest.approx(v.mean(), abs=0.02)
    assert intervals.runs_per_cell(cell) == 3


def test_hierarchical_bootstrap_adds_the_sequence_replicates_of_each_drawn_run():
    values = np.array([1.0, 1.0, 5.0, 5.0])
    cell = np.array([0, 0, 1, 1])
    shift = np.arange(6.0)  # replicate b moves every run by b (a shared resample of sequences)
    reps = intervals.hierarchical_bootstrap(values, cell, 6, seed=1, replicates=values[:, None] + shift)
    np.testing.assert_allclose(reps, np.array([1, 1, 5, 5.0]) + shift[:, None])  # runs agree
    with pytest.raises(ValueError, match="runs x n_boot"):
        intervals.hierarchical_bootstrap(values, cell, 5, replicates=np.zeros((4, 6)))
    weights = intervals.sequence_weights(10, 3, seed=0)
    np.testing.assert_allclose(weights.sum(1), 1.0)


# --------------------------------------------------------------------------- batched logistic fits

def _scipy_logistic(log_x, hits, trials, chance, max_slope=np.inf):
    """Reference maximum likelihood of the logistic threshold curve: L-BFGS-B from several
    starts (bounded slope when ``max_slope`` is finite)."""
    from scipy import optimize, special

    def nll(params):
        a, k = params
        p = np.clip(chance + (1 - chance) * special.expit(k * (log_x - a)), 1e-12, 1 - 1e-12)
        return -(hits * np.log(p) + (trials - hits) * np.log1p(-p)).sum()

    span = np.ptp(log_x)
    bound = min(max_slope, thresholds.SLOPE_CAP)
    starts = [(c, np.clip(s * 8 / span, -bound, bound))
              for c in np.quantile(log_x, [0.25, 0.5, 0.75]) for s in (1, -1)]
    return min((optimize.minimize(nll, st, method="L-BFGS-B",
                                  bounds=[(None, None), (-bound, bound)]) for st in starts),
               key=lambda r: r.fun)


@pytest.mark.long
def test_batched_logistic_fit_reaches_the_maximum_likelihood():
    rng = np.random.default_rng(0)
    for rep in range(20):
        n = int(rng.integers(6, 40))
        log_x = np.sort(rng.uniform(-3, 3, n))
        chance = float(rng.choice([0.0, 1 / 16, 0.25]))
        trials = rng.integers(1, 300, n).astype(float)
        p = chance + (1 - chance) / (1 + np.exp(-rng.choice([-3, 1, 4, 20]) * (log_x - rng.normal())))
        hits = rng.binomial(trials.astype(int), p).astype(float)
        for bound in (np.inf, 1.0):
            fit = thresholds.fit_logistic(log_x, hits, trials, chance, max_slope=bound)
            ref = _scipy_logistic(log_x, hits, trials, chance, bound)
            mine = thresholds.binomial_deviance(hits, trials, fit.predict(log_x, chance)[0]).sum() / 2
            saturated = thresholds.binomial_deviance(hits, trials, np.clip(hits / trials, 1e-12, 1 - 1e-12)).sum() / 2
            # never worse than the reference optimiser by more than its own tolerance
            assert mine - saturated <= ref.fun - _saturated_nll(hits, trials) + 1e-5
            assert abs(fit.slope[0]) <= bound + 1e-9


def _saturated_nll(hits, trials):
    frac = hits / trials
    with np.errstate(divide="ignore", invalid="ignore"):
        return -(np.where(hits > 0, hits * np.log(frac), 0)
                 + np.where(hits < trials, (trials - hits) * np.log1p(-frac), 0)).sum()


def test_batched_fits_equal_one_at_a_time_and_per_set_bounds_apply():
    rng = np.random.default_rng(1)
    log_x = np.linspace(-2, 2, 12)
    hits = rng.binomial(100, 1 / (1 + np.exp(-3 * log_x)), (5, 12)).astype(float)
    together = thresholds.fit_logistic(log_x, hits, 100.0, 0.0, max_slope=[np.inf, 1, np.inf, 1, 2])
    for i, bound in enumerate([np.inf, 1, np.inf, 1, 2]):
        alone = thresholds.fit_logistic(log_x, hits[i], 100.0, 0.0, max_slope=bound)
        assert together.slope[i] == pytest.approx(alone.slope[0], rel=1e-6)
        assert together.log_theta[i] == pytest.approx(alone.log_theta[0], abs=1e-6)
    assert np.all(np.abs(together.slope[[1, 3]]) <= 1 + 1e-12)  # the true k = 3 is cut to 1
    assert together.slope[0] == pytest.approx(3, rel=0.25)  # 1200 attempts: k within ~3 SE


def test_rows_without_attempts_are_absent_and_separated_outcomes_stay_finite():
    log_x = np.linspace(-2, 2, 10)
    hits = np.r_[np.zeros(5), np.full(5, 50.0)]
    trials = np.full(10, 50.0)
    fit = thresholds.fit_logistic(log_x, hits, trials)
    assert np.isfinite(fit.log_theta[0]) and abs(fit.slope[0]) <= thresholds.SLOPE_CAP
    assert fit.deviance[0] == pytest.approx(0, abs=1e-3)
    masked = thresholds.fit_logistic(log_x, np.r_[hits[:8], 0, 0], np.r_[trials[:8], 0, 0])
    dropped = thresholds.fit_logistic(log_x[:8], hits[:8], trials[:8])
    assert masked.log_theta[0] == pytest.approx(dropped.log_theta[0], abs=1e-4)


def test_binomial_deviance_by_hand():
    # 3 of 10 at p = 0.5: 2 [3 ln(0.3 / 0.5) + 7 ln(0.7 / 0.5)]
    assert thresholds.binomial_deviance(3.0, 10.0, 0.5) == pytest.approx(
        2 * (3 * np.log(0.6) + 7 * np.log(1.4)))
    assert thresholds.binomial_deviance(0.0, 0.0, 0.3) == 0.0


def test_resampling_rows_keeps_the_runs_of_one_trunk_together():
    from scaling_utils.estimators.intervals import hierarchical_bootstrap, resample_rows, row_df

    # two sizes x three D x three seeds: cell = (size, D), row = (size, seed)
    size, D, seed = (a.ravel() for a in np.meshgrid(range(2), range(3), range(3), indexing="ij"))
    cell, row = size * 3 + D, size * 3 + seed
    drawn = resample_rows(cell, row, 500, seed=0)
    # each drawn run lies in the slot's cell, and one slot's draws share their row across D
    assert (cell[drawn] == cell).all()
    for s in range(2):
        for k in range(3):
            slots = np.flatnonzero((size == s) & (seed == k))
            assert (row[drawn[:, slots]] == row[drawn[:, slots[:1]]]).all()
    assert row_df(cell, row) == 4
    # values that are one number per row: the rows' spread, not an independent one per cell
    values = np.random.default_rng(1).standard_normal(6)[row]
    reps = hierarchical_bootstrap(values, cell, 200, seed=0, row=row)
    by_row = [reps[:, row == r] for r in range(6)]
    assert all(np.ptp(r, axis=1).max() < 1e-12 for r in by_row)  # a row stays one number
