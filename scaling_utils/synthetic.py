"""Synthetic sources with known answers.

``HMMSource``: a language whose exact next-token probabilities are computable (forward
algorithm), so its irreducible loss is known rather than fitted (Theorem 2).

``iid_attention_control``: one softmax-attention layer with a fixed query over i.i.d. bounded
tokens, followed by a bounded Lipschitz FFN.  It satisfies the assumptions (A1)-(A4) of
Theorem 1 (with truly independent blocks), so its output variance must fall as 1/n and its
projections must become Gaussian: the control that shows the estimators can see the claim
when it holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .cache import array_digest
from .capture import CaptureResult, Site
from .estimators.moments import MomentAccumulator


def iid_attention_control(n_samples: int, lengths, dim: int = 32, seed: int = 0,
                          n_groups: int = 16, n_projections: int = 4, score_scale: float = 0.5,
                          batch_size: int = 256) -> CaptureResult:
    """Outputs of one attention layer (site 'attention.0') and its FFN (site 'block.0').

    r~(n) = sum_{j<n} a_j V x_j with a = softmax(q . K x_j) over i.i.d. tokens x_j uniform on
    [-sqrt 3, sqrt 3]^d (mean 0, unit variance, bounded) and a fixed query q scaled so that the
    scores have standard deviation ``score_scale``; r(n) = W2 tanh(W1 r~(n)).  Larger score
    scales concentrate attention (n_eff/n ~ exp(-scale^2)) and lengthen the pre-asymptotic
    range.  Every prefix length comes from one sequence through cumulative sums, as in a causal
    model; n_eff = (sum e_j)^2 / sum e_j^2 per sample, pooled over samples as 1 / mean(1 / n_eff)
    (the harmonic mean, as in the capture of a real model).
    """
    lengths = np.asarray(sorted(set(int(n) for n in lengths)))
    n_max = int(lengths[-1])
    gen = torch.Generator().manual_seed(seed)

    def normal(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64)

    w_key, w_value = normal(dim, dim) / dim ** 0.5, normal(dim, dim) / dim ** 0.5
    query = normal(dim)
    query *= score_scale / (w_key @ query).norm()  # score SD = |K q| for unit-variance tokens
    w_in, w_out = normal(dim, 4 * dim) / dim ** 0.5, normal(4 * dim, dim) / (4 * dim) ** 0.5
    directions = normal(dim, n_projections)
    directions /= directions.norm(dim=0, keepdim=True)
    device = torch.device("cpu")
    sites = (Site("attention.0", "attention", 0, "synthetic.attention"),
             Site("block.0", "block", 0, "synthetic.ffn"))
    acc = {s.name: MomentAccumulator(n_groups, len(lengths), dim, device, directions) for s in sites}
    concentration_sum = np.zeros(len(lengths))  # sum over samples of sum_j a_j^2
    index = torch.as_tensor(lengths - 1)
    for start in range(0, n_samples, batch_size):
        b = min(batch_size, n_samples - start)
        x = (torch.rand(b, n_max, dim, generator=gen, dtype=torch.float64) * 2 - 1) * 3 ** 0.5
        scores = (x @ w_key) @ query  # b x n_max
        e = torch.exp(scores - scores.amax(1, keepdim=True))  # stable; ratios unchanged
        attended = torch.cumsum(e[..., None] * (x @ w_value), 1) / torch.cumsum(e, 1)[..., None]
        r_att = attended[:, index]  # b x K x dim
        r_ffn = torch.tanh(r_att @ w_in) @ w_out
        concentration_sum += (torch.cumsum(e ** 2, 1) / torch.cumsum(e, 1) ** 2)[:, index].sum(0).numpy()
        ids = torch.arange(start, start + b)
        for site, values in zip(sites, (r_att, r_ffn)):
            acc[site.name].update(values, ids % n_groups, ids, torch.arange(len(lengths)))
    n_eff = (n_samples / concentration_sum)[None, :, None]  # layers x lengths x heads
    return CaptureResult(lengths, sites, {k: a.result() for k, a in acc.items()}, n_samples,
                         "fixed query vector", n_eff=n_eff, n_eff_no_sink=n_eff)


# --------------------------------------------------------------------------- known-entropy language

PRESETS = {
    # 128 hidden states, 64 symbols, sparse rows: students of 3 K..400 K non-embedding parameters
    # show a real capacity gap on it (see the Theorem 2 chapter)
    "sparse128": dict(n_states=128, n_symbols=64, transition_concentration=0.02,
                      emission_concentration=0.03),
    # a small source for tests and the smoke profile
    "tiny": dict(n_states=8, n_symbols=6, transition_concentration=0.1, emission_concentration=0.1),
}


def mixture_means(n_classes: int, dim: int, snr: float, rng: np.random.Generator) -> np.ndarray:
    """Centred class means whose SNR against unit isotropic noise is ``snr`` for equal class
    frequencies: mean_c ||mu_c||^2 / dim = snr."""
    means = rng.standard_normal((n_classes, dim))
    means -= means.mean(0)
    return means * np.sqrt(snr * dim / (means ** 2).sum(1).mean())


def gaussian_mixture(means: np.ndarray, per_class: int, rng: np.random.Generator):
    """``per_class`` samples of each class, mean ``means[c]`` plus unit normal noise: (x, labels)."""
    labels = np.repeat(np.arange(len(means)), per_class)
    return means[labels] + rng.standard_normal((len(labels), means.shape[1])), labels


class SourceError(ValueError):
    """A transition/emission specification that is not a valid hidden Markov model."""


@dataclass(frozen=True)
class EntropyEstimate:
    """An entropy (nats per token) estimated by Monte Carlo, with its standard error."""

    value: float
    stderr: float


@dataclass(frozen=True)
class HMMSource:
    """A hidden Markov model over tokens whose exact conditional probabilities are computable.

    ``transition[i, j] = P(z_{t+1}=j | z_t=i)``, ``emission[i, v] = P(x_t=v | z_t=i)``, both
    row-stochastic; ``initial`` defaults to the stationary distribution of the hidden chain.
    A Markov chain over tokens is the case of an identity emission (:func:`markov_chain`).
    """

    transition: np.ndarray
    emission: np.ndarray
    initial: np.ndarray | None = None

    def __post_init__(self):
        t = _stochastic("transition", self.transition)
        e = _stochastic("emission", self.emission)
        if t.shape[0] != t.shape[1]:
            raise SourceError(f"transition must be square, got shape {t.shape}.")
        if e.shape[0] != t.shape[0]:
            raise SourceError(f"emission has {e.shape[0]} rows but there are {t.shape[0]} states; "
                              "give one emission row per hidden state.")
        init = stationary_distribution(t) if self.initial is None else \
            _stochastic("initial", np.atleast_2d(self.initial))[0]
        if init.shape[0] != t.shape[0]:
            raise SourceError(f"initial has {init.shape[0]} entries for {t.shape[0]} states.")
        object.__setattr__(self, "transition", t)
        object.__setattr__(self, "emission", e)
        object.__setattr__(self, "initial", init)

    @property
    def n_states(self) -> int:
        return self.transition.shape[0]

    @property
    def n_symbols(self) -> int:
        return self.emission.shape[1]

    def digest(self) -> str:
        """Content hash of the matrices, for cache keys."""
        return array_digest(self.transition, self.emission, self.initial)

    def sample(self, n_sequences: int, length: int, seed: int) -> np.ndarray:
        """``n_sequences`` independent token sequences of ``length``, each started from
        ``initial`` (int64 array, n_sequences x length)."""
        return self.sample_with_states(n_sequences, length, seed)[0]

    def sample_with_states(self, n_sequences: int, length: int,
                           seed: int) -> tuple[np.ndarray, np.ndarray]:
        """The tokens of :meth:`sample` (the same ones for the same seed) and the hidden state
        that emitted each of them (both int64, n_sequences x length)."""
        rng = np.random.default_rng(seed)
        cum_t, cum_e = np.cumsum(self.transition, 1), np.cumsum(self.emission, 1)
        cum_t[:, -1] = cum_e[:, -1] = 1.0  # guard against rounding in the last bin
        state = np.searchsorted(np.cumsum(self.initial), rng.random(n_sequences), side="right")
        state = np.minimum(state, self.n_states - 1)
        tokens = np.empty((n_sequences, length), dtype=np.int64)
        states = np.empty((n_sequences, length), dtype=np.int64)
        u_emit, u_move = rng.random((length, n_sequences)), rng.random((length, n_sequences))
        for t in range(length):
            states[:, t] = state
            tokens[:, t] = (cum_e[state] <= u_emit[t, :, None]).sum(1)
            state = (cum_t[state] <= u_move[t, :, None]).sum(1)
        return tokens, states

    def nll(self, tokens: np.ndarray, dtype: torch.dtype = torch.float64) -> np.ndarray:
        """Exact -log p(x_t | x_<t) in nats for every token of every row (rows start from
        ``initial``), by the scaled forward algorithm: the filtered state distribution is
        renormalised each step and the log of each normaliser is the token's log-probability.
        ``dtype=torch.float32`` is about three times faster, within about 1e-6 nats of float64."""
        return self._forward(tokens, dtype, keep_states=False)[0]

    def filtered_states(self, tokens: np.ndarray) -> np.ndarray:
        """argmax_z P(z_t = z | x_1..x_t) for every position: the hidden state that the prefix
        makes most probable (the "true pattern" a model could know, for Theorem 3's SNR)."""
        return self._forward(tokens, torch.float64, keep_states=True)[1].argmax(-1)

    def beliefs(self, tokens: np.ndarray) -> np.ndarray:
        """P(z_t = z | x_1..x_t) for every position and state (sequences x length x states):
        the exact belief state, everything the prefix says about the hidden state."""
        return self._forward(tokens, torch.float64, keep_states=True)[1]

    def _forward(self, tokens, dtype, keep_states: bool):
        tokens = np.atleast_2d(np.asarray(tokens))
        if tokens.min() < 0 or tokens.max() >= self.n_symbols:
            raise SourceError(f"tokens must lie in [0, {self.n_symbols}).")
        n, length = tokens.shape
        emission_t = torch.as_tensor(self.emission.T, dtype=dtype).contiguous()  # V x S rows
        transition = torch.as_tensor(self.transition, dtype=dtype)
        ids = torch.as_tensor(tokens.T.copy())  # length x n, contiguous per step
        belief = torch.as_tensor(self.initial, dtype=dtype).repeat(n, 1)
        joint = torch.empty_like(belief)
        norms = torch.empty(length, n, dtype=dtype)
        states = torch.empty(length, n, self.n_states, dtype=dtype) if keep_states else None
        for t in range(length):  # in place: the loop is bound by memory traffic
            torch.mul(belief, emission_t.index_select(0, ids[t]), out=joint)
            torch.sum(joint, 1, out=norms[t])
            joint.mul_(norms[t].reciprocal().unsqueeze(1))
            if keep_states:
                states[t] = joint
            torch.matmul(joint, transition, out=belief)
        nll = -torch.log(norms.T).double().numpy()
        return nll, (states.transpose(0, 1).double().numpy() if keep_states else None)

    def windowed_entropy(self, context: int, n_sequences: int = 2000, seed: int = 0) -> EntropyEstimate:
        """Mean exact loss of a window of ``context`` tokens started from ``initial``: the best
        loss any model that sees only that window can reach (its irreducible loss)."""
        per_sequence = self.nll(self.sample(n_sequences, context, seed)).mean(1)
        return EntropyEstimate(float(per_sequence.mean()),
                               float(per_sequence.std(ddof=1) / np.sqrt(n_sequences)))

    def entropy_rate(self, n_sequences: int = 200, length: int = 2000, burn_in: int = 500,
                     seed: int = 0) -> EntropyEstimate:
        """Entropy rate H = lim E[-log p(x_t | x_<t)] estimated from long sequences (positions
        after ``burn_in``), with the standard error across independent sequences."""
        per_sequence = self.nll(self.sample(n_sequences, length, seed))[:, burn_in:].mean(1)
        return EntropyEstimate(float(per_sequence.mean()),
                               float(per_sequence.std(ddof=1) / np.sqrt(n_sequences)))


def markov_chain(transition: np.ndarray, initial: np.ndarray | None = None) -> HMMSource:
    """A Markov chain over tokens as an HMM with identity emission."""
    transition = np.asarray(transition, float)
    return HMMSource(transition, np.eye(transition.shape[0]), initial)


def markov_entropy_rate(transition: np.ndarray) -> float:
    """Closed form for a Markov chain: H = -sum_i pi_i sum_j T_ij log T_ij."""
    t = _stochastic("transition", transition)
    pi = stationary_distribution(t)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(t > 0, np.log(t), 0.0)
    return float(-(pi[:, None] * t * logs).sum())


def random_hmm(n_states: int, n_symbols: int, transition_concentration: float,
               emission_concentration: float, seed: int) -> HMMSource:
    """Rows drawn from symmetric Dirichlet distributions; small concentrations give sparse,
    low-entropy rows (a structured language) and large ones near-uniform rows."""
    rng = np.random.default_rng(seed)
    transition = rng.dirichlet(np.full(n_states, transition_concentration), size=n_states)
    emission = rng.dirichlet(np.full(n_symbols, emission_concentration), size=n_states)
    # Dirichlet draws with tiny concentration can underflow to all-zero rows; repair them
    for matrix in (transition, emission):
        bad = ~np.isfinite(matrix).all(1) | (matrix.sum(1) <= 0)
        matrix[bad] = np.eye(matrix.shape[1])[rng.integers(0, matrix.shape[1], bad.sum())]
        matrix /= matrix.sum(1, keepdims=True)
    return HMMSource(transition, emission)


def preset_source(name: str, seed: int = 0) -> HMMSource:
    """A named random source (see ``PRESETS``)."""
    if name not in PRESETS:
        raise SourceError(f"unknown source preset {name!r}; choose one of {sorted(PRESETS)}.")
    return random_hmm(**PRESETS[name], seed=seed)


def stationary_distribution(transition: np.ndarray) -> np.ndarray:
    """pi with pi T = pi (the left eigenvector for eigenvalue 1, normalised)."""
    values, vectors = np.linalg.eig(transition.T)
    if np.sum(np.abs(values - 1) < 1e-9) != 1:
        raise SourceError("the hidden chain has no unique stationary distribution (it is "
                          "reducible); give `initial` explicitly or use an irreducible chain.")
    pi = np.real(vectors[:, np.argmin(np.abs(values - 1))])
    pi = pi / pi.sum()
    if (pi < -1e-12).any() or np.abs(pi @ transition - pi).max() > 1e-10:
        raise SourceError("could not compute a stationary distribution; give `initial` explicitly.")
    return np.clip(pi, 0, None) / np.clip(pi, 0, None).sum()


def _stochastic(name: str, matrix) -> np.ndarray:
    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2 or 0 in m.shape:
        raise SourceError(f"{name} must be a non-empty 2-D array, got shape {m.shape}.")
    if not np.isfinite(m).all() or (m < 0).any():
        raise SourceError(f"{name} must have finite, non-negative entries.")
    sums = m.sum(1)
    if not np.allclose(sums, 1.0, atol=1e-8):
        worst = int(np.argmax(np.abs(sums - 1)))
        raise SourceError(f"{name} rows must sum to 1 (row {worst} sums to {sums[worst]:.6g}); "
                          "normalise with m / m.sum(1, keepdims=True).")
    return m
