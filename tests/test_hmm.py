"""The known-entropy language: exact NLL, entropy rate, validation."""

import itertools

import numpy as np
import pytest

from scaling_utils.synthetic import (HMMSource, SourceError, markov_chain, markov_entropy_rate,
                                     preset_source, random_hmm, stationary_distribution)


def test_forward_nll_equals_brute_force_enumeration():
    src = random_hmm(3, 2, 0.7, 0.7, seed=1)
    tokens = np.array([[0, 1, 1, 0, 1]])
    nll = src.nll(tokens)[0]
    # p(x_1..x_t) by summing over every hidden path
    def joint(prefix):
        total = 0.0
        for path in itertools.product(range(3), repeat=len(prefix)):
            p = src.initial[path[0]] * src.emission[path[0], prefix[0]]
            for t in range(1, len(prefix)):
                p *= src.transition[path[t - 1], path[t]] * src.emission[path[t], prefix[t]]
            total += p
        return total
    probs = [joint(tokens[0, :t + 1]) for t in range(tokens.shape[1])]
    expected = -np.log(np.array(probs) / np.array([1.0] + probs[:-1]))
    np.testing.assert_allclose(nll, expected, rtol=1e-10)


def test_markov_chain_entropy_rate_matches_closed_form():
    rng = np.random.default_rng(0)
    t = rng.dirichlet(np.full(5, 0.5), size=5)
    chain = markov_chain(t)
    estimate = chain.entropy_rate(n_sequences=200, length=600, burn_in=100, seed=3)
    exact = markov_entropy_rate(t)
    assert abs(estimate.value - exact) < 3 * estimate.stderr + 1e-3, (estimate, exact)


def test_samples_follow_the_stationary_distribution():
    src = random_hmm(4, 3, 1.0, 1.0, seed=2)
    x = src.sample(2000, 50, seed=0)
    expected = stationary_distribution(src.transition) @ src.emission
    freq = np.bincount(x.ravel(), minlength=3) / x.size
    np.testing.assert_allclose(freq, expected, atol=0.01)  # SE about 0.002 per symbol
    np.testing.assert_array_equal(x, src.sample(2000, 50, seed=0))


def test_sparse_preset_has_a_learnable_gap_between_unigram_and_exact_loss():
    src = preset_source("sparse128", seed=0)
    windowed = src.windowed_entropy(64, n_sequences=500, seed=1)
    x = src.sample(500, 64, seed=2)
    freq = np.bincount(x.ravel(), minlength=src.n_symbols) / x.size
    unigram = -(freq[freq > 0] * np.log(freq[freq > 0])).sum()
    assert unigram - windowed.value > 0.5  # room for students to learn
    assert windowed.stderr < 0.02


@pytest.mark.parametrize("transition,emission,message", [
    ([[0.5, 0.6], [0.5, 0.5]], [[1, 0], [0, 1]], "rows must sum to 1"),
    ([[1.0, 0.0], [0.5, 0.5]], [[1, 0], [0, 1], [1, 0]], "one emission row per hidden state"),
    ([[1.0, 0.0, 0.0], [0.5, 0.5, 0]], [[1], [1]], "must be square"),
    ([[1.5, -0.5], [0.5, 0.5]], [[1, 0], [0, 1]], "non-negative"),
])
def test_invalid_sources_are_rejected(transition, emission, message):
    with pytest.raises(SourceError, match=message):
        HMMSource(np.array(transition), np.array(emission))


def test_out_of_vocabulary_tokens_are_rejected():
    with pytest.raises(SourceError, match="tokens must lie"):
        preset_source("tiny").nll(np.array([[0, 99]]))


def test_float32_nll_is_within_a_micro_nat_of_float64():
    src = preset_source("sparse128", seed=0)
    x = src.sample(50, 256, seed=0)
    np.testing.assert_allclose(src.nll(x, dtype=__import__("torch").float32), src.nll(x), atol=2e-6)


def test_sampling_emits_before_it_moves():
    # from a known first state: token 0 ~ emission[0], token 1 ~ (transition[0] @ emission)
    src = random_hmm(4, 3, 1.0, 1.0, seed=5)
    started = HMMSource(src.transition, src.emission, initial=np.eye(4)[0])
    x = started.sample(20000, 2, seed=1)
    np.testing.assert_allclose(np.bincount(x[:, 0], minlength=3) / 20000, src.emission[0], atol=0.015)
    np.testing.assert_allclose(np.bincount(x[:, 1], minlength=3) / 20000,
                               src.transition[0] @ src.emission, atol=0.015)  # SE about 0.0035


def test_states_come_with_the_same_tokens_and_beliefs_are_the_exact_posterior():
    src = random_hmm(3, 2, 0.7, 0.7, seed=1)
    tokens, states = src.sample_with_states(4000, 5, seed=2)
    np.testing.assert_array_equal(tokens, src.sample(4000, 5, seed=2))
    np.testing.assert_allclose(np.bincount(states[:, 0], minlength=3) / 4000, src.initial, atol=0.03)
    beliefs = src.beliefs(tokens)
    np.testing.assert_allclose(beliefs.sum(-1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(beliefs.argmax(-1), src.filtered_states(tokens))
    # P(z_1 = z | x_1) by Bayes' rule, checked against the sampled states' frequencies
    posterior = src.initial * src.emission[:, tokens[0, 0]]
    np.testing.assert_allclose(beliefs[0, 0], posterior / posterior.sum(), rtol=1e-12)
    first = tokens[:, 0] == tokens[0, 0]
    np.testing.assert_allclose(np.bincount(states[first, 0], minlength=3) / first.sum(),
                               beliefs[0, 0], atol=0.04)  # SE below 0.011


def test_reducible_chain_has_no_default_start():
    with pytest.raises(SourceError, match="no unique stationary"):
        HMMSource(np.eye(2), np.eye(2))
