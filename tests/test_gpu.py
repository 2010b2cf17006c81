"""On a CUDA GPU (skipped without one): capture and training give the CPU's numbers to float32
precision (the gpu profile's largest students are tried in test_gpu_profile.py)."""

import numpy as np
import pytest
import torch

from scaling_utils import capture, train
from scaling_utils.estimators.moments import total_variance
from scaling_utils.models import matmul_precision, tiny_llama
from scaling_utils.synthetic import preset_source

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

LENGTHS = [2, 4, 8, 16, 32]
SOURCE = preset_source("tiny", seed=1)
EVAL, EPS, EPS_SE = train.evaluation_set(SOURCE, 64, 16, seed=99)


def _capture(device):
    model = tiny_llama(attn_implementation="eager", seed=0, max_context=32).to(device)
    windows = np.random.default_rng(0).integers(0, 97, (24, 32))
    with matmul_precision("float32"):
        return capture.capture_statistics(model, windows, LENGTHS, batch_size=8, n_groups=3,
                                          n_projections=2, attention_weights=True,
                                          position_loss=True, progress=False)


def test_capture_on_the_gpu_gives_the_cpu_statistics():
    """Float32 activations summed in float64: the two devices differ by float32 rounding (about
    1e-7 relative per activation), far inside rtol 1e-4."""
    cpu, gpu = _capture("cpu"), _capture("cuda")
    for site in cpu.moments:
        np.testing.assert_allclose(total_variance(gpu.moments[site]).variance,
                                   total_variance(cpu.moments[site]).variance, rtol=1e-4)
    np.testing.assert_allclose(gpu.n_eff, cpu.n_eff, rtol=1e-4)
    np.testing.assert_allclose(gpu.position_loss, cpu.position_loss, rtol=1e-4)


def _config(**kw):
    base = dict(spec=train.StudentSpec(1, 16, 2), D=16 * 16 * 150, vocab_size=SOURCE.n_symbols,
                context=16, batch_size=16, n_evals=3, learning_rate=1e-2, seed=3)
    return train.TrainConfig(**{**base, **kw})


def test_training_on_the_gpu_learns_what_it_learns_on_the_cpu():
    """Same initial weights and batches (both drawn on the CPU); only float32 arithmetic
    differs, so 150 steps end within 0.02 nats of each other, far below the learning itself
    (the loss falls by more than 0.15 nats below the unigram entropy)."""
    with matmul_precision("float32"):
        cpu = train.train_student(_config(), SOURCE, EVAL, device="cpu")
        gpu = train.train_student(_config(), SOURCE, EVAL, device="cuda")
    sample = SOURCE.sample(2000, 16, seed=5)
    freq = np.bincount(sample.ravel(), minlength=SOURCE.n_symbols) / sample.size
    unigram = -(freq[freq > 0] * np.log(freq[freq > 0])).sum()
    assert cpu.final_loss < unigram - 0.15  # the learning the tolerance below is small against
    assert np.isfinite(gpu.curve_loss).all()
    assert abs(gpu.final_loss - cpu.final_loss) < 0.02, (gpu.final_loss, cpu.final_loss)
    assert gpu.final_loss > EPS - 3 * EPS_SE  # it cannot beat the source
