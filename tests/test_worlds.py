"""The simulated-world harness: shares add up, false verdicts are counted against the world's
truth, and a calibrated interval keeps a one-sided rule's false rate near its nominal 2.5 %."""

import numpy as np
import pytest

from scaling_utils import verdicts, worlds
from scaling_utils.worlds import FAILS, HOLDS, World


def mean_above_zero(true_mean: float, n: int):
    """Claim: a mean is positive; a normal-theory 95 % interval from n draws."""
    def simulate(seed: int):
        x = np.random.default_rng(seed).normal(true_mean, 1.0, n)
        half = 1.96 * x.std(ddof=1) / np.sqrt(n)
        return verdicts.above("mean", "the mean is positive", x.mean(), x.mean() - half,
                              x.mean() + half, 0.0, "more draws")
    return simulate


def test_measure_counts_false_verdicts_against_the_truth():
    simulated = [World("mean", "holds", HOLDS, "mean 0.5", mean_above_zero(0.5, 100)),
              World("mean", "fails", FAILS, "mean 0", mean_above_zero(0.0, 100)),
              World("mean", "underpowered", HOLDS, "mean 0.05", mean_above_zero(0.05, 20))]
    table = worlds.measure(simulated, n_sets=400, seed=1, sequential=False)
    shares = table[["supported", "contradicted", "undetermined"]].sum(axis=1)
    assert np.allclose(shares, 1.0)
    holds, fails, weak = table.itertuples()
    assert holds.supported > 0.99 and holds.false_rate == holds.contradicted
    # at the boundary of the claim a 95 % interval wrongly supports it 2.5 % of the time;
    # the standard error of a rate near 0.025 over 400 sets is 0.008
    assert fails.false_rate == fails.supported == pytest.approx(0.025, abs=0.025)
    assert fails.false_upper > fails.false_rate
    assert weak.undetermined > 0.8


def test_a_world_stops_once_its_false_rate_is_settled_and_the_rest_run_to_the_end():
    simulated = [World("mean", "clear", HOLDS, "mean 1", mean_above_zero(1.0, 50)),
                 World("mean", "boundary", FAILS, "mean 0", mean_above_zero(0.0, 50)),
                 World("mean", "wrong", FAILS, "mean 1", mean_above_zero(1.0, 50))]
    table = worlds.measure(simulated, n_sets=400, seed=2)
    clear, boundary, wrong = table.itertuples()
    # the first look comes after 100 sets, then every 50 (7 looks up to 400): no false verdict
    # in 100 ends the interval at 0.05 / 7 per tail at 0.048, below 5 % (after 50 it would be
    # 0.094); a world where every verdict is false is settled at the first look too
    assert (clear.n_sets, wrong.n_sets) == (100, 100) and wrong.false_rate == 1.0
    # a rate near 2.5 % takes longer to tell from 5 %: 2 false in 200 here
    assert boundary.n_sets == 200 and boundary.false_rate == 0.01
    full = worlds.measure(simulated, n_sets=400, seed=2, sequential=False)
    assert (full.n_sets == 400).all() and full.supported[0] == clear.supported
    assert worlds.settled(0, 100, 7) and not worlds.settled(0, 50, 7)
    assert worlds.settled(10, 50) and not worlds.settled(3, 50)


def test_a_world_must_say_whether_the_claim_holds():
    with pytest.raises(ValueError, match="truth"):
        worlds.measure([World("m", "x", "maybe", "", mean_above_zero(0, 10))], n_sets=2)




def test_the_shared_noise_mix_has_unit_variance_and_the_stated_share():
    rng = np.random.default_rng(0)
    shared, own = rng.standard_normal(200_000), rng.standard_normal((2, 200_000))
    mixed = worlds.mix_shared(shared, own, 0.8)
    assert mixed.var(1) == pytest.approx([1.0, 1.0], abs=0.01)  # SE of a variance: 0.003
    assert np.corrcoef(mixed)[0, 1] == pytest.approx(0.8, abs=0.01)
    assert worlds.mix_shared(shared.astype(np.float32), own.astype(np.float32), 0.5).dtype == np.float32
