"""Student training: determinism, learning, resumable cached grids."""

import numpy as np
import pytest
import torch

from scaling_utils import runs, train
from scaling_utils.synthetic import preset_source
from scaling_utils.train import StudentSpec, TrainConfig

SOURCE = preset_source("tiny", seed=1)  # exact loss about 1.07 nats, unigram entropy 1.40
EVAL, EPS, EPS_SE = train.evaluation_set(SOURCE, 64, 16, seed=99)


def _config(**kw):
    base = dict(spec=StudentSpec(1, 16, 2), D=16 * 16 * 40, vocab_size=SOURCE.n_symbols,
                context=16, batch_size=16, n_evals=2)
    return TrainConfig(**{**base, **kw})


def test_seeded_training_is_deterministic_on_cpu():
    a = train.train_student(_config(seed=3), SOURCE, EVAL, device="cpu")
    b = train.train_student(_config(seed=3), SOURCE, EVAL, device="cpu")
    np.testing.assert_array_equal(a.curve_loss, b.curve_loss)
    c = train.train_student(_config(seed=4), SOURCE, EVAL, device="cpu")
    assert not np.array_equal(a.curve_loss, c.curve_loss)


def test_student_learns_towards_the_exact_loss():
    result = train.train_student(_config(D=16 * 16 * 150, learning_rate=1e-2), SOURCE, EVAL,
                                 device="cpu")
    sample = SOURCE.sample(2000, 16, seed=5)
    freq = np.bincount(sample.ravel(), minlength=SOURCE.n_symbols) / sample.size
    unigram = -(freq[freq > 0] * np.log(freq[freq > 0])).sum()
    assert result.final_loss < unigram - 0.15  # it learned context, not only frequencies
    assert result.final_loss > EPS - 3 * EPS_SE  # and cannot beat the source
    model = train.load_student(result)
    assert train.evaluate(model, EVAL) == pytest.approx(result.final_loss, rel=1e-6)


def test_repeated_data_mode_cycles_a_fixed_dataset():
    config = _config(data_mode="repeated", dataset_tokens=16 * 16 * 2)
    batches = train._Batches(config, SOURCE)
    seen = {batches.next(SOURCE).tobytes() for _ in range(8)}
    distinct_rows = {row.tobytes() for b in seen for row in np.frombuffer(b, dtype=np.int64).reshape(16, 16)}
    assert len(distinct_rows) <= 32
    with pytest.raises(ValueError, match="dataset_tokens"):
        _config(data_mode="repeated")


def test_killed_grid_resumes_without_recomputing(cache_folder, monkeypatch):
    configs = [_config(seed=s) for s in range(3)]
    calls = []
    real = train.train_budgets

    def flaky(runs, *args, **kwargs):
        calls.append(runs[0].seed)
        if runs[0].seed == 1 and calls.count(1) == 1:
            raise KeyboardInterrupt  # the grid is killed during its second run
        return real(runs, *args, **kwargs)

    monkeypatch.setattr(train, "train_budgets", flaky)
    with pytest.raises(KeyboardInterrupt):
        runs.run_grid(configs, SOURCE, EVAL, device="cpu", progress=False)
    results = runs.run_grid(configs, SOURCE, EVAL, device="cpu", progress=False)
    assert calls == [0, 1, 1, 2]  # run 0 was read back from the cache
    assert [r.config.seed for r in results] == [0, 1, 2]


def test_size_spec_is_checked():
    with pytest.raises(ValueError, match="divisible"):
        StudentSpec(1, 10, 3)
    with pytest.raises(ValueError, match="less than one batch"):
        _config(D=10)


def test_cpu_runs_are_keyed_by_the_thread_count(cache_folder):
    source = preset_source("tiny", seed=1)
    eval_tokens, _, _ = train.evaluation_set(source, 16, 16, seed=9)
    config = [train.TrainConfig(train.StudentSpec(1, 8, 2), D=16 * 16 * 2,
                                vocab_size=source.n_symbols, context=16, batch_size=16, n_evals=1)]
    before = torch.get_num_threads()
    try:
        for threads in (1, 2, 1):
            torch.set_num_threads(threads)
            runs.run_grid(config, source, eval_tokens, device="cpu", progress=False)
    finally:
        torch.set_num_threads(before)
    assert len(list((cache_folder / "train").glob("*.npz"))) == 2  # the third run was a hit


def _wsd(D_steps, **kw):
    return [_config(D=16 * 16 * steps, schedule="wsd", warmup_steps=2, **kw) for steps in D_steps]


def test_learning_rate_schedules():
    cosine, [wsd] = _config(D=16 * 16 * 100), _wsd([100])
    assert [cosine.learning_rate_factor(s) for s in (0, 4)] == [0.2, 1.0]  # warmup: 5 steps
    assert cosine.learning_rate_factor(99) == pytest.approx(0.1, abs=1e-3)
    assert wsd.decay_start == 80  # the last 20 % of the steps
    assert [wsd.learning_rate_factor(s) for s in (0, 1, 50, 79, 80)] == [0.5, 1, 1, 1, 1]
    assert wsd.learning_rate_factor(99) == pytest.approx(1 - np.sqrt(19 / 20))
    with pytest.raises(ValueError, match="schedule"):
        _config(schedule="linear")


def test_log_spaced_evaluations_start_where_a_student_can_have_learned():
    config = _config(D=16 * 16 * 781, n_evals=14, eval_spacing="log")
    steps = config.eval_steps()
    assert steps[0] == config.log_first_step == 16 and steps[-1] == 781
    ratios = np.diff(np.log(steps))  # evenly spaced in ln D, 1.35 apart (from step 1: 1.67)
    assert np.allclose(ratios, np.log(781 / 16) / 13, atol=0.05)
    assert _config(D=16 * 16 * 10, n_evals=4, eval_spacing="log").eval_steps() == [10]


def test_wsd_branches_are_the_runs_trained_alone():
    """One trunk with a decay branch per D gives every run bit for bit, curve and weights."""
    configs = _wsd([20, 40, 80], n_evals=3, keep_checkpoints=True)
    branched = train.train_budgets(configs, SOURCE, EVAL, device="cpu")
    for config, run in zip(configs, branched):
        alone = train.train_student(config, SOURCE, EVAL, device="cpu")
        np.testing.assert_array_equal(run.curve_tokens, alone.curve_tokens)
        np.testing.assert_array_equal(run.curve_loss, alone.curve_loss)
        for name, tensor in alone.state.items():
            assert torch.equal(run.state[name], tensor), name
        assert len(run.checkpoints) == len(alone.checkpoints) == 3
    assert branched[0].final_loss > branched[-1].final_loss  # more data, lower loss
    with pytest.raises(ValueError, match="differ only in D"):
        train.train_budgets([configs[0], _config(seed=5)], SOURCE, EVAL, device="cpu")


def test_grid_trains_one_trunk_per_size_and_seed(cache_folder, monkeypatch):
    configs = _wsd([20, 40]) + _wsd([20, 40], seed=1) + [_config(seed=2)]
    trunks = []
    real = train.train_budgets

    def counted(runs, *args, **kwargs):
        trunks.append(sorted(r.D // 256 for r in runs))
        return real(runs, *args, **kwargs)

    monkeypatch.setattr(train, "train_budgets", counted)
    results = runs.run_grid(configs, SOURCE, EVAL, device="cpu", progress=False)
    assert sorted(trunks) == [[20, 40], [20, 40], [40]]
    assert [(r.config.D // 256, r.config.seed) for r in results] == [(20, 0), (40, 0), (20, 1),
                                                                    (40, 1), (40, 2)]
    again = runs.run_grid(configs, SOURCE, EVAL, device="cpu", progress=False)
    assert len(trunks) == 3  # all read back
    for a, b in zip(results, again):
        np.testing.assert_array_equal(a.curve_loss, b.curve_loss)
