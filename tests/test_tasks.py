"""Capability tasks produce what they claim, and the metrics score known answers correctly."""

import numpy as np
import pytest
import torch

from scaling_utils import tasks
from scaling_utils.tasks import N_SPECIAL, TaskSuite, edit_distance, measure_capability

SUITE = TaskSuite(alphabet=10, copy_length=4, recall_pairs=3, modulus=5)


def test_copy_task_second_half_equals_first():
    ex = SUITE.examples("copy", 50, seed=0)
    m = SUITE.copy_length
    assert (ex.tokens[:, 0] == tasks.COPY).all() and (ex.tokens[:, m + 1] == tasks.SEP).all()
    assert np.array_equal(ex.tokens[:, 1:m + 1], ex.answers)
    assert ex.answers.min() >= N_SPECIAL


def test_recall_answer_is_the_value_of_the_queried_key():
    ex = SUITE.examples("recall", 50, seed=1)
    q = SUITE.recall_pairs
    for row in ex.tokens:
        keys, values = row[1:2 * q + 1:2], row[2:2 * q + 2:2]
        assert len(set(keys)) == q  # distinct keys
        query, answer = row[2 * q + 2], row[2 * q + 3]
        assert answer == values[list(keys).index(query)]


def test_modular_answer_is_the_sum():
    ex = SUITE.examples("modular", 100, seed=2)
    a, b, c = (ex.tokens[:, i] - N_SPECIAL for i in (1, 2, 4))
    assert np.array_equal(c, (a + b) % SUITE.modulus)
    assert (ex.tokens[:, 3] == tasks.EQUALS).all() and (ex.tokens[:, 5:] == tasks.PAD).all()


def test_sample_mixes_tasks_and_checks_the_context():
    rows = SUITE.sample(300, SUITE.context, seed=3)
    assert rows.shape == (300, SUITE.context) and rows.max() < SUITE.n_symbols
    counts = np.bincount(rows[:, 0], minlength=4)[[tasks.COPY, tasks.RECALL, tasks.MODULAR]]
    assert counts.min() > 60  # about 100 of each
    assert np.array_equal(rows, SUITE.sample(300, SUITE.context, seed=3))
    with pytest.raises(ValueError, match="set the training context"):
        SUITE.sample(3, SUITE.context + 1, seed=0)
    with pytest.raises(ValueError, match="unknown task"):
        TaskSuite(tasks=("copy", "sorting"))


def test_edit_distance():
    assert edit_distance([1, 2, 3], [1, 2, 3]) == 0
    assert edit_distance([1, 2, 3], [1, 3]) == 1
    assert edit_distance([1, 2, 3], [3, 2, 1]) == 2
    assert edit_distance([], [1, 2]) == 2


class Oracle(torch.nn.Module):
    """A stand-in 'model' that knows the copy answer: its logits put all mass on the token
    m + 1 positions back, and its representation is the one-hot of that token."""

    def __init__(self, vocab, m):
        super().__init__()
        self.vocab, self.m = vocab, m
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        outer = self

        class Base(torch.nn.Module):
            def forward(self, input_ids, use_cache=False):
                shifted = torch.roll(input_ids, outer.m, 1)  # position t outputs x_{t-m}
                hidden = torch.nn.functional.one_hot(shifted, outer.vocab).float() * 10
                return type("Out", (), {"last_hidden_state": hidden})()

        self.base_model = Base()
        self.head = torch.nn.Identity()

    def get_output_embeddings(self):
        return self.head

    def forward(self, input_ids, use_cache=False, logits_to_keep=0):
        hidden = self.base_model(input_ids).last_hidden_state
        return type("Out", (), {"logits": hidden[:, -1:] if logits_to_keep else hidden})()


def test_measure_capability_scores_a_perfect_copier():
    m = SUITE.copy_length
    # position t (0-based) predicts token t + 1; the answer token at t + 1 equals the token at
    # t + 1 - (m + 1) = t - m, so the oracle reads m positions back from t
    oracle = Oracle(SUITE.n_symbols, m)
    ex = SUITE.examples("copy", 40, seed=4)
    result = measure_capability(oracle, ex)
    assert result.exact.all() and (result.token_accuracy == 1).all()
    assert (result.edit_distance == 0).all()
    assert result.features.shape == (40 * m, SUITE.n_symbols)
    assert np.array_equal(result.labels, ex.answers.ravel())
