"""The error-rate harness: shares add up, false verdicts are counted against the world's truth,
and a calibrated interval keeps a one-sided rule's false rate near its nominal 2.5 %."""

import numpy as np
import pytest

from scaling_utils import error_rates, verdicts
from scaling_utils.error_rates import FAILS, HOLDS, World


def mean_above_zero(true_mean: float, n: int):
    """Claim: a mean is positive; a normal-theory 95 % interval from n draws."""
    def simulate(seed: int):
        x = np.random.default_rng(seed).normal(true_mean, 1.0, n)
        half = 1.96 * x.std(ddof=1) / np.sqrt(n)
        return verdicts.above("mean", "the mean is positive", x.mean(), x.mean() - half,
                              x.mean() + half, 0.0, "more draws")
    return simulate


def test_measure_counts_false_verdicts_against_the_truth():
    worlds = [World("mean", "holds", HOLDS, "mean 0.5", mean_above_zero(0.5, 100)),
              World("mean", "fails", FAILS, "mean 0", mean_above_zero(0.0, 100)),
              World("mean", "underpowered", HOLDS, "mean 0.05", mean_above_zero(0.05, 20))]
    table = error_rates.measure(worlds, n_sets=400, seed=1)
    shares = table[["supported", "contradicted", "undetermined"]].sum(axis=1)
    assert np.allclose(shares, 1.0)
    holds, fails, weak = table.itertuples()
    assert holds.supported > 0.99 and holds.false_rate == holds.contradicted
    # at the boundary of the claim a 95 % interval wrongly supports it 2.5 % of the time;
    # the standard error of a rate near 0.025 over 400 sets is 0.008
    assert fails.false_rate == fails.supported == pytest.approx(0.025, abs=0.025)
    assert fails.false_upper > fails.false_rate
    assert weak.undetermined > 0.8


def test_a_world_must_say_whether_the_claim_holds():
    with pytest.raises(ValueError, match="truth"):
        error_rates.measure([World("m", "x", "maybe", "", mean_above_zero(0, 10))], n_sets=2)


def test_study_measures_every_chapter_and_reads_the_worst_rule(monkeypatch, tmp_path):
    from types import SimpleNamespace

    monkeypatch.setenv("SCALING_UTILS_CACHE", str(tmp_path))
    monkeypatch.setattr(error_rates, "CHAPTERS", {"theorem1_clt": "verdicts"})
    worlds = [World("mean", "fails", FAILS, "mean 0", mean_above_zero(0.0, 50)),
              World("mean", "holds", HOLDS, "mean 1", mean_above_zero(1.0, 50))]
    monkeypatch.setattr(verdicts, "worlds", lambda values: worlds, raising=False)
    result = error_rates.study(SimpleNamespace(profile="smoke", n_sets=40, seed=0, executor=None))
    assert list(result.table.world) == ["fails", "holds"]
    assert result.worst_world == "fails" and result.worst_rule == "Thm 1: mean"
    assert result.verdicts[0].key == "calibrated"
    again = error_rates.study(SimpleNamespace(profile="smoke", n_sets=40, seed=0,
                                              executor=None))  # cached
    assert again.table.equals(result.table)


def test_worlds_split_into_jobs_give_the_serial_table(monkeypatch, tmp_path):
    # chunks of 7 data sets on a pool of two: the rows must come back whole and in order
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setattr(error_rates, "CHAPTERS", {"theorem1_clt": "verdicts"})
    worlds = [World("mean", "fails", FAILS, "mean 0", mean_above_zero(0.0, 50)),
              World("mean", "holds", HOLDS, "mean 1", mean_above_zero(1.0, 50)),
              World("mean", "near", HOLDS, "mean 0.3", mean_above_zero(0.3, 50))]
    monkeypatch.setattr(verdicts, "worlds", lambda values: worlds, raising=False)
    monkeypatch.setattr(error_rates, "CHUNK", 7)
    monkeypatch.setenv("SCALING_UTILS_CACHE", str(tmp_path / "serial"))
    serial = error_rates.error_rate_table("smoke", 40, 3)
    monkeypatch.setenv("SCALING_UTILS_CACHE", str(tmp_path / "pool"))
    with ThreadPoolExecutor(2) as pool:
        pooled = error_rates.error_rate_table("smoke", 40, 3, pool)
    assert pooled.equals(serial)
    expected = error_rates.measure(worlds, 40, 3, chapter="theorem1_clt")
    assert serial.drop(columns="chapter").equals(expected.drop(columns="chapter"))
