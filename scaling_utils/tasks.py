"""Capabilities with exact success metrics, for Theorem 4: in-context copying (induction),
associative recall and modular addition, in one token vocabulary.

A :class:`TaskSuite` is a training source like :class:`~scaling_utils.synthetic.HMMSource`
(``sample``, ``n_symbols``, ``digest``): every sequence is one instance of a randomly chosen
task, padded to the suite's context.  :func:`measure_capability` scores a model on fresh
instances with a discontinuous metric (exact match of the whole answer) and continuous ones
(per-token log-probability, token accuracy, edit distance of the greedy answer), and returns
the representations that predict each answer token, for the signal-to-noise ratio.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np
import torch

from .capture import final_representation

PAD, COPY, RECALL, MODULAR, SEP, EQUALS = range(6)
N_SPECIAL = 6
TASKS = ("copy", "recall", "modular")


@dataclass(frozen=True)
class TaskExamples:
    """Instances of one task: ``tokens`` (n x context), the answer at columns
    ``answer_start .. answer_start + answer_length - 1`` of every row."""

    task: str
    tokens: np.ndarray
    answer_start: int
    answer_length: int

    @property
    def answers(self) -> np.ndarray:
        return self.tokens[:, self.answer_start:self.answer_start + self.answer_length]


@dataclass(frozen=True)
class TaskSuite:
    """The three tasks over an alphabet of ``alphabet`` symbols (token ids from N_SPECIAL on).

    copy:    [COPY] x_1..x_m [SEP] x_1..x_m               (answer: the repeat, m = copy_length)
    recall:  [RECALL] k_1 v_1 .. k_q v_q [SEP] k_j v_j      (answer: v_j; distinct keys)
    modular: [MODULAR] a b [EQUALS] (a + b) mod p          (answer: the sum; p = modulus)
    Copying and recall are solved in context (they need an induction-style circuit); modular
    addition must be learned from the data (a table of p^2 facts).
    """

    alphabet: int = 16
    copy_length: int = 6
    recall_pairs: int = 6
    modulus: int = 7
    tasks: tuple = TASKS

    def __post_init__(self):
        unknown = set(self.tasks) - set(TASKS)
        if unknown or not self.tasks:
            raise ValueError(f"unknown task(s) {sorted(unknown)}; choose from {TASKS}.")
        if self.recall_pairs > self.alphabet:
            raise ValueError(f"recall_pairs ({self.recall_pairs}) needs that many distinct keys; "
                             f"the alphabet has {self.alphabet}.")
        if self.modulus > self.alphabet:
            raise ValueError(f"modulus ({self.modulus}) must not exceed the alphabet ({self.alphabet}).")

    @property
    def n_symbols(self) -> int:
        """Vocabulary size (special tokens and the alphabet)."""
        return N_SPECIAL + self.alphabet

    @property
    def context(self) -> int:
        """Length of every sequence: the longest task instance."""
        lengths = {"copy": 2 * self.copy_length + 2, "recall": 2 * self.recall_pairs + 4,
                   "modular": 5}
        return max(lengths[t] for t in self.tasks)

    def chance(self, task: str) -> float:
        """Exact-match accuracy of a model that knows the format but guesses the symbols."""
        return {"copy": self.alphabet ** -self.copy_length, "recall": 1 / self.alphabet,
                "modular": 1 / self.modulus}[task]

    def digest(self) -> str:
        """Content hash for cache keys."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]

    def examples(self, task: str, n: int, seed: int) -> TaskExamples:
        """``n`` independent instances of ``task`` (seeded), padded to :attr:`context`."""
        if task not in self.tasks:
            raise ValueError(f"task {task!r} is not in this suite {self.tasks}.")
        rng = np.random.default_rng([seed, TASKS.index(task)])
        rows = np.full((n, self.context), PAD, dtype=np.int64)
        a = self.alphabet
        if task == "copy":
            m = self.copy_length
            segment = rng.integers(0, a, (n, m)) + N_SPECIAL
            rows[:, 0], rows[:, 1:m + 1], rows[:, m + 1] = COPY, segment, SEP
            rows[:, m + 2:2 * m + 2] = segment
            return TaskExamples(task, rows, m + 2, m)
        if task == "recall":
            q = self.recall_pairs
            keys = np.argsort(rng.random((n, a)), 1)[:, :q] + N_SPECIAL  # distinct per row
            values = rng.integers(0, a, (n, q)) + N_SPECIAL
            pick = rng.integers(0, q, n)
            rows[:, 0] = RECALL
            rows[:, 1:2 * q + 1:2], rows[:, 2:2 * q + 2:2] = keys, values
            rows[:, 2 * q + 1] = SEP
            rows[:, 2 * q + 2] = keys[np.arange(n), pick]
            rows[:, 2 * q + 3] = values[np.arange(n), pick]
            return TaskExamples(task, rows, 2 * q + 3, 1)
        p = self.modulus
        x, y = rng.integers(0, p, n), rng.integers(0, p, n)
        rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3] = MODULAR, x + N_SPECIAL, y + N_SPECIAL, EQUALS
        rows[:, 4] = (x + y) % p + N_SPECIAL
        return TaskExamples(task, rows, 4, 1)

    def sample(self, n_sequences: int, length: int, seed: int) -> np.ndarray:
        """Training sequences: each row an instance of a task drawn uniformly (``length`` must
        equal :attr:`context`)."""
        if length != self.context:
            raise ValueError(f"this task suite makes sequences of {self.context} tokens; set the "
                             f"training context to {self.context}, got {length}.")
        rng = np.random.default_rng(seed)
        which = rng.integers(0, len(self.tasks), n_sequences)
        rows = np.empty((n_sequences, length), dtype=np.int64)
        for i, task in enumerate(self.tasks):
            chosen = np.flatnonzero(which == i)
            rows[chosen] = self.examples(task, len(chosen), int(rng.integers(2 ** 62))).tokens
        return rows


@dataclass(frozen=True)
class CapabilityMeasurement:
    """One model on one task.  Per example: ``exact`` (the whole answer right, teacher-forced
    argmax, which equals greedy decoding's exact match), ``logprob`` (mean log-probability of
    the answer tokens), ``token_accuracy``, ``edit_distance`` (Levenshtein distance of the
    greedily generated answer to the truth, divided by its length).  Per answer token:
    ``features`` (the final representation that predicts it), ``labels`` and ``groups``
    (example index)."""

    task: str
    exact: np.ndarray
    logprob: np.ndarray
    token_accuracy: np.ndarray
    edit_distance: np.ndarray
    features: np.ndarray
    labels: np.ndarray
    groups: np.ndarray


def measure_capability(model, examples: TaskExamples, batch_size: int = 512) -> CapabilityMeasurement:
    """Score ``model`` on ``examples`` (see :class:`CapabilityMeasurement`)."""
    device = next(model.parameters()).device
    start, length = examples.answer_start, examples.answer_length
    answer_cols = np.arange(start - 1, start + length - 1)  # positions that predict the answer
    parts = {k: [] for k in ("exact", "logprob", "accuracy", "edit", "features")}
    model.eval()
    with torch.inference_mode():
        for lo in range(0, len(examples.tokens), batch_size):
            ids = torch.as_tensor(examples.tokens[lo:lo + batch_size], device=device)
            hidden, logits = final_representation(model, ids)
            logp = torch.log_softmax(logits[:, answer_cols].double(), -1)
            truth = ids[:, start:start + length]
            correct = logp.argmax(-1) == truth
            parts["exact"].append(correct.all(1).cpu().numpy())
            parts["accuracy"].append(correct.double().mean(1).cpu().numpy())
            parts["logprob"].append(logp.gather(-1, truth[..., None])[..., 0].mean(1).cpu().numpy())
            parts["features"].append(hidden[:, answer_cols].reshape(-1, hidden.shape[-1]).double().cpu().numpy())
            generated = _greedy(model, ids[:, :start], length) if length > 1 else logp.argmax(-1)
            parts["edit"].append(np.array([edit_distance(g, t) / length for g, t in
                                           zip(generated.cpu().numpy(), truth.cpu().numpy())]))
    n = len(examples.tokens)
    return CapabilityMeasurement(
        examples.task, np.concatenate(parts["exact"]), np.concatenate(parts["logprob"]),
        np.concatenate(parts["accuracy"]), np.concatenate(parts["edit"]),
        np.concatenate(parts["features"]), examples.answers.ravel().copy(),
        np.repeat(np.arange(n), length))


def _greedy(model, prompt: torch.Tensor, n_new: int) -> torch.Tensor:
    """Append ``n_new`` argmax tokens to ``prompt`` (no cache: the prompts are short)."""
    ids = prompt
    for _ in range(n_new):
        next_token = model(input_ids=ids, use_cache=False, logits_to_keep=1).logits[:, -1].argmax(-1)
        ids = torch.cat([ids, next_token[:, None]], 1)
    return ids[:, prompt.shape[1]:]


def edit_distance(a, b) -> int:
    """Levenshtein distance between two sequences (insertions, deletions, substitutions)."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]
