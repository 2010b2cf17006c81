"""The gpu profile, checked without a GPU: every configuration is valid, its windows fit the
offline model and are disjoint in the offline corpus, one pass fits one H100, and one training
step and one capture pass run at its shapes (on the CPU here; on a GPU where there is one, 20
steps of the largest students there)."""

import numpy as np
import pytest
import torch

from scaling_utils import capture, train
from scaling_utils.chapters.t1_clt import length_grid
from scaling_utils.data import load_corpus, random_windows, tokenize
from scaling_utils.models import load_model, tiny_llama
from scaling_utils.profiles import NOTEBOOKS, profile_values, resolve_parameters
from scaling_utils.synthetic import preset_source
from scaling_utils.tasks import TaskSuite

H100_BYTES = 80e9
WINDOW_PAGES = ("theorem1_clt", "theorem3_snr")


@pytest.fixture(scope="module")
def lm():
    return load_model(None, device="cpu", attn_implementation="eager")


@pytest.mark.parametrize("notebook", sorted(NOTEBOOKS))
def test_every_gpu_configuration_is_valid(notebook):
    resolve_parameters(notebook, {"profile": "gpu"})


@pytest.mark.parametrize("notebook", WINDOW_PAGES)
def test_gpu_windows_fit_the_model_and_are_disjoint_in_the_corpus(lm, notebook):
    values = profile_values(notebook, "gpu")
    lm.check_context(values["max_length"])
    tokens = tokenize(load_corpus(values["corpus"]), lm.tokenizer)
    windows = random_windows(tokens, values["n_windows"], values["max_length"], seed=0)  # disjoint
    assert windows.shape == (values["n_windows"], values["max_length"])


def test_one_gpu_capture_pass_fits_one_h100(lm):
    values = profile_values("theorem1_clt", "gpu")
    need = capture.forward_memory_bytes(lm.model.config, values["batch_size"],
                                        values["max_length"], eager_attention=True)
    assert need < 0.8 * H100_BYTES, f"{need / 1e9:.1f} GB for one batch"


def test_one_capture_pass_runs_at_the_gpu_length():
    """Every kind of statistic at the gpu profile's context length, on a small random model of
    the same architecture (the full model at 2,048 tokens takes minutes on a CPU)."""
    values = profile_values("theorem1_clt", "gpu")
    model = tiny_llama(max_context=values["max_length"], attn_implementation="eager")
    window = np.random.default_rng(0).integers(0, model.config.vocab_size, (2, values["max_length"]))
    result = capture.capture_statistics(
        model, window, length_grid(values["min_length"], values["max_length"]), batch_size=2,
        n_groups=2, attention_weights=True, position_loss=True, progress=False)
    assert result.lengths[-1] == values["max_length"]
    fixed = capture.capture_statistics(
        model, window, length_grid(values["min_length"], values["max_length"]), batch_size=2,
        n_groups=2, fixed_query_token=5, progress=False)
    assert fixed.lengths[-1] == values["max_length"]


def _largest_student(notebook: str, steps: int):
    """The gpu profile's largest student of ``notebook``, its source and a config of ``steps``
    training steps at the profile's batch."""
    values = profile_values(notebook, "gpu")
    if notebook == "theorem4_emergence":
        source = TaskSuite(values["alphabet"], values["copy_length"], values["recall_pairs"],
                           values["modulus"])
        context, vocab = source.context, source.n_symbols
    else:
        source = preset_source(values["source"], values["source_seed"])
        context, vocab = values["context"], source.n_symbols
    largest = max(values["sizes"], key=lambda s: s[0] * s[1] ** 2)
    config = train.TrainConfig(train.StudentSpec(*largest), D=values["batch_size"] * context * steps,
                               vocab_size=vocab, context=context, batch_size=values["batch_size"],
                               learning_rate=values["learning_rate"], seed=0, n_evals=1)
    return config, source


@pytest.mark.parametrize("notebook", ("theorem2_bias_variance", "theorem4_emergence"))
def test_one_training_step_runs_for_the_largest_gpu_student(notebook):
    config, source = _largest_student(notebook, steps=1)
    result = train.train_student(config, source, source.sample(4, config.context, seed=1),
                                 device="cpu")
    assert config.steps == 1 and np.isfinite(result.final_loss)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("notebook", ("theorem2_bias_variance", "theorem4_emergence"))
def test_the_largest_gpu_student_trains_on_a_gpu(notebook):
    config, source = _largest_student(notebook, steps=20)
    result = train.train_student(config, source, source.sample(64, config.context, seed=1),
                                 device="cuda")
    assert np.isfinite(result.curve_loss).all()
