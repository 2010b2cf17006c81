"""Theorem 3 analysis on inputs with known answers."""

import dataclasses

import numpy as np
import pytest

from scaling_utils import snr_scaling, train
from scaling_utils.capture import final_representations
from scaling_utils.stats import SNRResult, snr
from scaling_utils.synthetic import preset_source


def fake_estimate(value, boot):
    return SNRResult(value, value, 1.0, np.quantile(boot, 0.025), np.quantile(boot, 0.975), 100, 4,
                     boot)


def test_snr_exponent_recovers_a_known_slope_with_fixed_effects():
    rng = np.random.default_rng(0)
    d = np.tile([1e3, 1e4, 1e5], 2)
    size = np.repeat([1, 2], 3)
    true = 0.5 * d ** 0.7 * np.where(size == 2, 3.0, 1.0)  # different prefactor per size
    noise = rng.normal(0, 0.02, (300, 6))
    estimates = [fake_estimate(t, t * np.exp(noise[:, i])) for i, t in enumerate(true)]
    fit = snr_scaling.snr_exponent(d, estimates, by=size)
    assert fit.exponent == pytest.approx(0.7, abs=1e-9)
    assert fit.ci_low < 0.7 < fit.ci_high and fit.ci_high - fit.ci_low < 0.05
    pooled = snr_scaling.snr_exponent(d, estimates)  # ignoring size biases nothing here: same D grid
    assert pooled.exponent == pytest.approx(0.7, abs=1e-9)
    assert snr_scaling.snr_verdict(fit) == "grows, but slower than claimed"
    unresolved = dataclasses.replace(fit, exponent=0.02, ci_low=-0.27, ci_high=0.47)
    assert "CI includes 0" in snr_scaling.snr_verdict(unresolved)
    flat = dataclasses.replace(fit, exponent=-0.1, ci_low=-0.2, ci_high=-0.01)
    assert snr_scaling.snr_verdict(flat) == "does not grow"


def test_snr_exponent_is_not_estimable_with_negative_snr():
    estimates = [fake_estimate(v, np.full(10, v)) for v in (-0.1, 0.2, 0.4)]
    assert np.isnan(snr_scaling.snr_exponent([1, 2, 4], estimates).exponent)


def test_student_snr_reads_the_final_representation_against_filtered_states():
    source = preset_source("tiny", 1)
    tokens, _, _ = train.evaluation_set(source, 32, 16, seed=5)
    model = train.build_student(train.StudentSpec(1, 16, 2), source.n_symbols, 16).eval()
    result = snr_scaling.student_snr(model, source, tokens, min_position=2, n_boot=20, seed=3)
    features = final_representations(model, tokens)[:, 2:]
    expected = snr(features.reshape(-1, 16), source.filtered_states(tokens)[:, 2:].ravel(),
                   np.repeat(np.arange(32), 14), n_boot=20, seed=3)
    assert result.snr == pytest.approx(expected.snr)
    assert result.ci_low == pytest.approx(expected.ci_low)
    assert result.n_samples == 32 * 14
