"""Theorem 1 analysis helpers: grids, verdict wording, position-loss fit."""

import numpy as np
import pytest

from scaling_utils import clt
from scaling_utils.capture import CaptureResult


def test_length_grid_is_geometric_and_ends_at_max():
    assert clt.length_grid(4, 32).tolist() == [4, 8, 16, 32]
    assert clt.length_grid(4, 48).tolist() == [4, 8, 16, 32, 48]
    with pytest.raises(ValueError, match="min_length <= max_length"):
        clt.length_grid(64, 32)


@pytest.mark.parametrize("ci,expected", [
    ((-1.03, -0.97), "consistent with 1/n"),
    ((-0.99, -0.96), "consistent with 1/n"),  # within the margin, not containing -1
    ((-1.2, -0.9), "inconclusive (CI too wide)"),
    ((-1.3, 0.1), "inconclusive (CI too wide)"),
    ((np.nan, np.nan), "not estimable"),
    ((-1.5, -1.1), "falls faster than 1/n"),
    ((-0.6, -0.3), "falls, but slower than 1/n"),
    ((-0.1, 0.1), "no decay detected"),
    ((0.1, 0.3), "grows with n"),
])
def test_verdict_reads_the_interval(ci, expected):
    assert clt.verdict(*ci) == expected


def test_position_loss_recovers_a_known_decay():
    rng = np.random.default_rng(0)
    t = np.arange(1, 256)
    loss = 2.5 + 1.5 * t ** -0.55 + rng.normal(0, 0.02, (16, t.size))
    result = CaptureResult(np.array([4]), (), {}, 16, "", position_loss=loss)
    fit = clt.position_loss(result, n_boot=50, seed=0)
    assert fit.ci_low <= 0.55 <= fit.ci_high
    assert fit.loss_infinity == pytest.approx(2.5, abs=0.05)


def test_precision_check_accepts_identical_runs_and_flags_moved_exponents():
    import copy

    import torch

    from scaling_utils.capture import capture_statistics
    from scaling_utils.models import tiny_llama

    model = tiny_llama(seed=0)
    rng = np.random.default_rng(0)
    lengths = [2, 4, 8, 16, 32]
    windows = rng.integers(0, 97, (32, 32))
    ref = capture_statistics(model, windows, lengths, n_groups=8, progress=False)
    same = clt.precision_check(ref, ref, "tf32", n_boot=50)
    assert same.unchanged and same.max_difference == 0
    assert set(same.table.columns) == {"site", "float32", "tf32", "difference"}
    bf16 = capture_statistics(copy.deepcopy(model).to(torch.bfloat16), windows, lengths,
                              n_groups=8, progress=False)
    assert clt.precision_check(bf16, ref, "bfloat16", n_boot=50).max_difference > 0
    # Other windows move each exponent by about sqrt(2) standard errors (~0.7 CI half-widths),
    # far beyond the tolerance of a tenth of a half-width: the check must refuse.
    other = capture_statistics(model, rng.integers(0, 97, (32, 32)), lengths, n_groups=8,
                               progress=False)
    assert not clt.precision_check(other, ref, "bfloat16", n_boot=50).unchanged


def test_student_fits_measure_every_site_of_each_student(cache_folder):
    from scaling_utils import train
    from scaling_utils.synthetic import preset_source

    source = preset_source("tiny", seed=1)
    eval_tokens, _, _ = train.evaluation_set(source, 16, 16, seed=9)
    configs = [train.TrainConfig(train.StudentSpec(*size), tokens=16 * 16 * 4,
                                 vocab_size=source.n_symbols, context=16, batch_size=16, n_evals=1)
               for size in ((1, 8, 2), (2, 8, 2))]
    runs = train.run_grid(configs, source, eval_tokens, device="cpu", progress=False)
    fits = clt.student_fits(runs, source, n_windows=16, min_length=2, n_groups=4, n_boot=20)
    assert list(fits.variant.unique()) == ["student 1x8", "student 2x8"]
    per_student = fits.groupby("variant").site.nunique()
    assert per_student["student 2x8"] > per_student["student 1x8"]  # one more block
    assert np.isfinite(fits.exponent).all()
    assert (fits.P > 0).all()
