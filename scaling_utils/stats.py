"""Estimators: streaming moments, power-law fits with bootstrap CIs over groups, normality tests
with the correct null when mean and variance are estimated, multiple-testing corrections, the
effective context of an attention row, a bias-corrected signal-to-noise ratio of labelled
representations, and logistic threshold fits with a data-collapse score."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd
import torch
from scipy import optimize, sparse, special


# --------------------------------------------------------------------------- streaming moments

@dataclass(frozen=True)
class Moments:
    """Per-group sums of vectors observed at K context lengths.

    ``count[g, k]`` windows of group g contributed at length index k; ``total[g, k]`` and
    ``total_sq[g, k]`` are their float64 sums and sums of squares per coordinate.
    ``projections`` (windows x K x m) keeps the vectors projected on m fixed unit directions,
    for normality tests; ``window_group`` gives each row's group.
    """

    count: np.ndarray
    total: np.ndarray
    total_sq: np.ndarray
    projections: np.ndarray | None = None
    window_group: np.ndarray | None = None

    @property
    def mean(self) -> np.ndarray:
        """Mean vector per length index, shape (K, D)."""
        return self.total.sum(0) / self.count.sum(0)[:, None]


class MomentAccumulator:
    """Accumulates :class:`Moments` batch by batch on any torch device, in float64.

    Memory is (groups x lengths x width), independent of the number of windows (apart from
    the optional m-dimensional projections kept for normality tests).
    """

    def __init__(self, n_groups: int, n_lengths: int, dim: int, device: torch.device,
                 directions: torch.Tensor | None = None):
        shape = (n_groups, n_lengths, dim)
        if device.type == "mps":  # MPS has no float64: reduce on the CPU instead
            device = torch.device("cpu")
        self.count = torch.zeros(n_groups, n_lengths, dtype=torch.float64, device=device)
        self.total = torch.zeros(shape, dtype=torch.float64, device=device)
        self.total_sq = torch.zeros(shape, dtype=torch.float64, device=device)
        self.directions = None if directions is None else directions.to(device, torch.float64)
        self._projections: dict[int, dict[int, np.ndarray]] = {}
        self._window_group: dict[int, int] = {}

    def update(self, values: torch.Tensor, groups: torch.Tensor, windows: torch.Tensor,
               length_index: torch.Tensor) -> None:
        """Add ``values`` (batch x k x D), seen at the length indices ``length_index`` (k,),
        for windows with ids ``windows`` (batch,) in groups ``groups`` (batch,)."""
        v = values.detach().to(self.total.device, torch.float64)
        groups = groups.to(self.total.device)
        ones = torch.ones(v.shape[:2], dtype=torch.float64, device=v.device)
        if torch.equal(length_index.cpu(), torch.arange(self.count.shape[1])):  # all at once
            self.total.index_add_(0, groups, v)
            self.total_sq.index_add_(0, groups, v * v)
            self.count.index_add_(0, groups, ones)
        else:
            for j, k in enumerate(length_index.tolist()):
                self.total[:, k].index_add_(0, groups, v[:, j])
                self.total_sq[:, k].index_add_(0, groups, v[:, j] * v[:, j])
                self.count[:, k].index_add_(0, groups, ones[:, j])
        if self.directions is not None:
            proj = (v @ self.directions).cpu().numpy()  # batch x k x m
            for b, (w, g) in enumerate(zip(windows.tolist(), groups.tolist())):
                row = self._projections.setdefault(w, {})
                for j, k in enumerate(length_index.tolist()):
                    row[k] = proj[b, j]
                self._window_group[w] = g

    def result(self) -> Moments:
        projections = window_group = None
        if self.directions is not None and self._projections:
            ids = sorted(self._projections)
            n_lengths, m = self.count.shape[1], self.directions.shape[1]
            projections = np.full((len(ids), n_lengths, m), np.nan)
            for i, w in enumerate(ids):
                for k, vec in self._projections[w].items():
                    projections[i, k] = vec
            window_group = np.array([self._window_group[w] for w in ids])
        return Moments(self.count.cpu().numpy(), self.total.cpu().numpy(),
                       self.total_sq.cpu().numpy(), projections, window_group)


@dataclass(frozen=True)
class GroupVariance:
    """Total variance tr Cov = E||r - mu||^2 per length, and its per-group pieces.

    ``variance[k]`` is the unbiased estimate over all windows; ``by_group[g, k]`` is the mean
    squared deviation of group g's windows from the overall mean (the bootstrap resamples these).
    """

    variance: np.ndarray
    by_group: np.ndarray
    kept_dims: np.ndarray


def total_variance(moments: Moments, exclude_dims: np.ndarray | None = None) -> GroupVariance:
    """E||r - mu||^2 from grouped sums: sum_w ||r_w - mu||^2 = S2 - 2 mu.S1 + c ||mu||^2 per group.

    ``exclude_dims`` removes coordinates (e.g. massive activations) before summing.
    """
    dim = moments.total.shape[-1]
    keep = np.ones(dim, bool)
    if exclude_dims is not None and len(exclude_dims):
        keep[np.asarray(exclude_dims)] = False
    count, s1, s2 = moments.count, moments.total[..., keep], moments.total_sq[..., keep]
    n = count.sum(0)
    mu = s1.sum(0) / n[:, None]
    dev = s2.sum(-1) - 2 * np.einsum("gkd,kd->gk", s1, mu) + count * (mu ** 2).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        by_group = dev / count
    variance = dev.sum(0) / (n - 1)
    return GroupVariance(variance, by_group, np.flatnonzero(keep))


def massive_dims(moments: Moments, k: int) -> np.ndarray:
    """The k coordinates with the largest root-mean-square value (massive activations)."""
    rms = np.sqrt(moments.total_sq.sum((0, 1)) / moments.count.sum())
    return np.argsort(rms)[::-1][:k]


# --------------------------------------------------------------------------- power laws

@dataclass(frozen=True)
class PowerLawFit:
    """y = offset + prefactor * x**exponent, with a bootstrap percentile CI for the exponent."""

    exponent: float
    intercept: float  # log(prefactor)
    ci_low: float
    ci_high: float
    offset: float = 0.0
    x: np.ndarray | None = None
    y: np.ndarray | None = None
    n_boot: int = 0
    bootstrap_unit: str = "observation"

    @property
    def prefactor(self) -> float:
        return float(np.exp(self.intercept))

    def covers(self, exponent: float) -> bool:
        return bool(self.ci_low <= exponent <= self.ci_high)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.offset + self.prefactor * np.asarray(x, float) ** self.exponent


def fit_power_law(x, y, groups=None, n_boot: int = 1000, seed: int = 0,
                  ci: float = 0.95, offset: bool = False) -> PowerLawFit:
    """Fit y ~ x**b (or y ~ c + a x**b with ``offset=True``) to the mean of y at each distinct x.

    Without offset: ordinary least squares of log mean(y) on log x.  With ``groups``, the
    bootstrap resamples whole groups (e.g. windows, whose values at different x are
    correlated); otherwise it resamples observations within each x.
    """
    x, y = np.asarray(x, float).ravel(), np.asarray(y, float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in size ({x.size} vs {y.size}).")
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    levels, level_of = np.unique(x, return_inverse=True)
    if len(levels) < (4 if offset else 2):
        raise ValueError(f"need at least {4 if offset else 2} distinct x values, got "
                         f"{len(levels)}: widen the range of x (e.g. lower fit_from or raise "
                         "max_length).")
    if np.any(levels <= 0):
        raise ValueError("x must be positive for a power law.")
    fit_curve = _fit_offset_power if offset else _fit_pure_power

    def means(weights: np.ndarray) -> np.ndarray:
        return np.bincount(level_of, weights * y, len(levels)) / np.bincount(level_of, weights, len(levels))

    point_means = means(np.ones_like(y))
    point = fit_curve(levels, point_means)
    rng = np.random.default_rng(seed)
    if groups is not None:
        groups = np.asarray(groups).ravel()[ok]
        labels, group_of = np.unique(groups, return_inverse=True)
        draws = (np.bincount(rng.integers(0, len(labels), len(labels)), minlength=len(labels))[group_of]
                 for _ in range(n_boot))
        unit = "group"
    else:
        draws = (_resample_within(level_of, rng) for _ in range(n_boot))
        unit = "observation"
    reps = []
    for w in draws:
        m = means(w.astype(float))
        if np.all(np.isfinite(m)) and (offset or np.all(m > 0)):
            reps.append(fit_curve(levels, m)[0])
    reps = [r for r in reps if np.isfinite(r)]
    lo, hi = np.quantile(reps, [(1 - ci) / 2, (1 + ci) / 2]) if reps else (np.nan, np.nan)
    exponent, intercept, off = point
    return PowerLawFit(float(exponent), float(intercept), float(lo), float(hi), float(off),
                       levels, point_means, len(reps), unit)


# --------------------------------------------------------------------------- training runs

def resample_runs(cell, n_boot: int, seed: int = 0) -> np.ndarray:
    """Replicates x runs: for every replicate, the run drawn (with replacement, from the runs of
    the same cell, e.g. the seeds of one (P, D) point) into each run's slot."""
    cell = np.asarray(cell).ravel()
    rng = np.random.default_rng(seed)
    drawn = np.empty((n_boot, len(cell)), int)
    for level in np.unique(cell):
        members = np.flatnonzero(cell == level)
        drawn[:, members] = members[rng.integers(0, len(members), (n_boot, len(members)))]
    return drawn


def hierarchical_bootstrap(values, cell, n_boot: int, seed: int = 0,
                           replicates=None) -> np.ndarray:
    """Two-level bootstrap of one value per training run: replicates x runs.

    First level: the runs of each cell (the seeds of one grid point) are resampled with
    replacement.  Second level: each drawn run enters with its value in the replicate's
    resample of sequences, ``replicates[run, b]`` (runs x n_boot; aligned across runs, because
    all runs are measured on the same held-out sequences, so replicate b resamples the same
    sequences for every run); without it, runs enter with ``values``.  With k runs in a cell,
    the resampled mean of k draws has (k - 1)/k of the variance of a mean of k new runs, so each
    run's deviation from its cell's mean is inflated by sqrt(k/(k - 1)) first (the adjusted
    residuals of Davison and Hinkley 1997, section 3.7): the interval keeps 95 % coverage
    with three runs per cell (tests).  A cell with one run cannot show the spread between runs
    (``runs_per_cell`` says when that happens)."""
    values = np.asarray(values, float).ravel()
    reps = (np.broadcast_to(values[:, None], (len(values), n_boot)) if replicates is None
            else np.asarray(replicates, float))
    if reps.shape != (len(values), n_boot):
        raise ValueError(f"replicates must be runs x n_boot = {(len(values), n_boot)}, got "
                         f"{reps.shape}.")
    _, cell_id = np.unique(np.asarray(cell).ravel(), return_inverse=True)
    counts = np.bincount(cell_id)
    member = np.zeros((len(values), len(counts)))
    member[np.arange(len(values)), cell_id] = 1.0
    centre = ((reps.T @ member) / counts)[:, cell_id]  # replicate x run: its cell's mean
    inflate = np.where(counts > 1, np.sqrt(counts / np.maximum(counts - 1, 1)), 1.0)[cell_id]
    drawn = np.take_along_axis(reps.T, resample_runs(cell_id, n_boot, seed), axis=1)
    return centre + inflate * (drawn - centre)


def between_run_df(cell) -> int:
    """Degrees of freedom of the spread between runs: sum over cells of (runs - 1)."""
    counts = np.unique(np.asarray(cell).ravel(), return_counts=True)[1]
    return int((counts - 1).sum())


def stretched_interval(replicates, df: int | None = None, ci: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap replicates, its ends moved away from the replicates'
    median by t_{df} / z (the Student quantile over the normal one at the same level) when the
    variance the replicates carry is estimated with few degrees of freedom ``df`` (three runs
    in each of twelve cells: df = 24, a 5 % wider interval).  The percentile interval alone
    treats that variance as known and covers less than it says (tests)."""
    from scipy import stats as sps

    values = np.asarray(replicates, float)
    values = values[np.isfinite(values)]
    if not len(values):
        return np.nan, np.nan
    lo, mid, hi = np.quantile(values, [(1 - ci) / 2, 0.5, (1 + ci) / 2])
    if df:
        factor = sps.t.ppf((1 + ci) / 2, df) / sps.norm.ppf((1 + ci) / 2)
        lo, hi = mid - factor * (mid - lo), mid + factor * (hi - mid)
    return float(lo), float(hi)


def runs_per_cell(cell) -> int:
    """The smallest number of runs in any cell: below 2, no interval can contain the spread
    between training runs."""
    return int(np.unique(np.asarray(cell).ravel(), return_counts=True)[1].min())


def sequence_weights(n_sequences: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """Replicates x sequences: how often each held-out sequence is drawn in each bootstrap
    replicate, divided by the number of sequences (rows sum to 1, so ``weights @ x`` is the
    resampled mean of a per-sequence quantity x)."""
    drawn = np.random.default_rng(seed).integers(0, n_sequences, (n_boot, n_sequences))
    drawn += np.arange(n_boot)[:, None] * n_sequences  # one block of counts per replicate
    counts = np.bincount(drawn.ravel(), minlength=n_boot * n_sequences)
    return counts.reshape(n_boot, n_sequences) / n_sequences


def _resample_within(level_of: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Counts of an i.i.d. resample drawn separately within each x level."""
    counts = np.zeros(len(level_of))
    for lev in np.unique(level_of):
        idx = np.flatnonzero(level_of == lev)
        counts += np.bincount(rng.choice(idx, idx.size), minlength=len(level_of))
    return counts


def _fit_pure_power(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    slope, intercept = np.polyfit(np.log(x), np.log(y), 1)
    return slope, intercept, 0.0


def _fit_offset_power(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least squares of y = c + A x**b by variable projection: for each b the best (c, A) is a
    linear fit, so only the exponent b (in [-5, 0]) is searched numerically."""
    def linear_fit(b):
        design = np.column_stack([np.ones_like(x), x ** b])
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        return coef, ((design @ coef - y) ** 2).sum()

    def loss(b):
        coef, sse = linear_fit(b)
        return sse if coef[1] > 0 else np.inf

    grid = np.linspace(-5, -1e-3, 60)
    losses = np.array([loss(b) for b in grid])
    if not np.isfinite(losses).any():  # y does not decrease with x: no decaying power law fits
        return np.nan, np.nan, np.nan
    start = grid[np.argmin(losses)]
    sol = optimize.minimize_scalar(loss, bounds=(max(-5, start - 0.1), min(-1e-3, start + 0.1)),
                                   method="bounded", options={"xatol": 1e-6})
    (c, amplitude), _ = linear_fit(sol.x)
    return sol.x, np.log(max(amplitude, 1e-300)), c


# --------------------------------------------------------------------------- normality

@dataclass(frozen=True)
class NormalityResult:
    """Per-column tests of normality with mean and variance estimated from the data.

    ``ks``: Kolmogorov-Smirnov distance to the fitted normal (the Lilliefors statistic);
    ``ad``: Anderson-Darling A^2.  p-values come from a Monte-Carlo null of the same
    statistics computed on normal samples of the same size standardised the same way.
    """

    ks: np.ndarray
    ks_pvalue: np.ndarray
    ad: np.ndarray
    ad_pvalue: np.ndarray
    n: int
    n_null: int


def _ks_ad(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """KS and AD statistics of each column after standardising it by its own mean and sd."""
    m = samples.shape[0]
    z = (samples - samples.mean(0)) / samples.std(0, ddof=1)
    z = np.sort(z, axis=0)
    cdf = np.clip(special.ndtr(z), 1e-300, 1 - 1e-16)
    i = np.arange(1, m + 1)[:, None]
    ks = np.maximum((i / m - cdf).max(0), (cdf - (i - 1) / m).max(0))
    ad = -m - ((2 * i - 1) * (np.log(cdf) + np.log1p(-cdf[::-1]))).sum(0) / m
    return ks, ad


def normality_tests(samples: np.ndarray, n_null: int = 2000, seed: int = 0) -> NormalityResult:
    """Lilliefors-type KS and Anderson-Darling tests for each column of ``samples`` (m x k)."""
    samples = np.asarray(samples, float)
    if samples.ndim == 1:
        samples = samples[:, None]
    m = samples.shape[0]
    if m < 5:
        raise ValueError(f"normality tests need at least 5 samples, got {m}.")
    with np.errstate(invalid="ignore", divide="ignore"):
        ks, ad = _ks_ad(samples)  # a constant column gives NaN: no test, not a rejection
    null_ks, null_ad = normality_null(m, n_null, seed)
    ks_p = np.where(np.isfinite(ks), (1 + (null_ks[None, :] >= ks[:, None]).sum(1)) / (n_null + 1), np.nan)
    ad_p = np.where(np.isfinite(ad), (1 + (null_ad[None, :] >= ad[:, None]).sum(1)) / (n_null + 1), np.nan)
    return NormalityResult(ks, ks_p, ad, ad_p, m, n_null)


def normality_null(m: int, n_null: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """KS and AD statistics of ``n_null`` standard-normal samples of size m, each standardised
    by its own mean and sd: the null distribution when both are estimated."""
    rng = np.random.default_rng([seed, m])
    ks, ad = [], []
    for start in range(0, n_null, 500):  # chunks bound memory at 500 x m
        k, a = _ks_ad(rng.standard_normal((m, min(500, n_null - start))))
        ks.append(k)
        ad.append(a)
    return np.concatenate(ks), np.concatenate(ad)


def holm(pvalues) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (family-wise error control); NaN stays NaN and does
    not count as a test."""
    return _adjust(pvalues, lambda p: np.maximum.accumulate((len(p) - np.arange(len(p))) * p))


def benjamini_hochberg(pvalues) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (false-discovery-rate control); NaN stays NaN."""
    return _adjust(pvalues, lambda p: np.minimum.accumulate(
        (p * len(p) / np.arange(1, len(p) + 1))[::-1])[::-1])


def _adjust(pvalues, step) -> np.ndarray:
    """Apply a step-wise correction to the sorted finite p-values, leaving NaN in place."""
    p = np.asarray(pvalues, float).ravel()
    out = np.full_like(p, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite])]
    out[order] = np.minimum(step(p[order]), 1.0)
    return out


# --------------------------------------------------------------------------- attention

def effective_context(weights):
    """n_eff = 1 / sum_k a_k^2 along the last axis: n for uniform attention over n tokens, 1 for
    attention on a single token.  Works on numpy arrays and torch tensors."""
    return 1.0 / attention_concentration(weights)


def attention_concentration(weights):
    """sum_k a_k^2 along the last axis, the variance factor of one attention row: a weighted
    average of i.i.d. terms of variance sigma^2 has variance sigma^2 sum_k a_k^2.  Averaged over
    rows and then inverted it gives the effective context of many rows (the harmonic mean of
    their n_eff), since the variances, not the n_eff, add: n_eff = 1 / mean(sum_k a_k^2)."""
    return (weights ** 2).sum(-1)


def compare_exponent(ci_low: float, ci_high: float, claimed: float, margin: float) -> str:
    """Equivalence-style reading of an exponent's CI against a claimed value: 'consistent'
    (the whole CI within ``margin`` of it), 'inconclusive' (the CI contains it but is wider),
    'below' or 'above' (the CI excludes it), or 'not estimable'."""
    if not (np.isfinite(ci_low) and np.isfinite(ci_high)):
        return "not estimable"
    if claimed - margin <= ci_low and ci_high <= claimed + margin:
        return "consistent"
    if ci_low <= claimed <= ci_high:
        return "inconclusive"
    return "below" if ci_high < claimed else "above"


# --------------------------------------------------------------------------- signal to noise

@dataclass(frozen=True)
class SNRResult:
    """SNR = signal_power / noise_power of representations h with known labels y.

    ``signal_power`` = sum_c pi_c ||mu_c - mu||^2 (between-class, with its finite-sample bias
    removed); ``noise_power`` = E||h - mu_y||^2 (within-class); ``bootstrap``: the SNR of each
    replicate (resampling ``groups``), from which ``ci_low``/``ci_high`` are percentiles.
    """

    snr: float
    signal_power: float
    noise_power: float
    ci_low: float
    ci_high: float
    n_samples: int
    n_classes: int
    bootstrap: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))


def snr(features, labels, groups=None, n_boot: int = 200, seed: int = 0, ci: float = 0.95,
        min_per_class: int = 2) -> SNRResult:
    """Between-class over within-class power of ``features`` (m x d) given ``labels`` (m).

    With class sums s_c, counts n_c and within-class sums of squares W_c, the plug-in
    between-class sum SSB = sum_c ||s_c||^2/n_c - ||sum_c s_c||^2/m has expectation
    sum_c n_c ||mu_c - mu||^2 + sum_c (1 - n_c/m) tr(Sigma_c): each estimated class mean carries
    tr(Sigma_c)/n_c of noise.  Subtracting the estimate W_c/(n_c-1) of tr(Sigma_c) makes the
    signal unbiased; noise = sum_c (n_c/m) W_c/(n_c-1).  Classes with fewer than
    ``min_per_class`` samples are dropped.  The bootstrap resamples ``groups`` (e.g. sequences,
    whose positions are correlated), default each sample.
    """
    x = np.asarray(features, float)
    y = np.asarray(labels).ravel()
    if x.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"features must be (samples x dims) with one label per sample; got "
                         f"{x.shape} and {y.shape}.")
    if min_per_class < 2:
        raise ValueError("min_per_class must be at least 2 (a class variance needs two samples).")
    classes, y = np.unique(y, return_inverse=True)
    g = np.arange(len(y)) if groups is None else np.unique(np.asarray(groups).ravel(),
                                                            return_inverse=True)[1]
    n_groups, k = g.max() + 1, len(classes)
    cell = g * k + y  # sufficient statistics per (group, class): counts, sums, squared norms
    onehot = sparse.csr_matrix((np.ones(len(y)), (cell, np.arange(len(y)))), shape=(n_groups * k, len(y)))
    counts = np.asarray(onehot.sum(1)).reshape(n_groups, k)
    sums = np.asarray(onehot @ x).reshape(n_groups, k, -1)
    squares = np.asarray(onehot @ (x * x).sum(1)).reshape(n_groups, k)

    def estimate(weights: np.ndarray) -> np.ndarray:  # weights: reps x groups -> (snr, signal, noise)
        n = weights @ counts
        s = np.einsum("rg,gkd->rkd", weights, sums)
        q = weights @ squares
        keep = n >= min_per_class
        n_safe = np.where(keep, n, 1.0)
        between = np.where(keep, (s * s).sum(-1) / n_safe, 0.0)
        within = np.where(keep, q - between, 0.0)
        trace = np.where(keep, within / np.maximum(n_safe - 1, 1), 0.0)
        m = (n * keep).sum(1)
        total = (s * keep[..., None]).sum(1)
        ssb = between.sum(1) - (total * total).sum(1) / m
        signal = (ssb - (keep * (1 - n / m[:, None]) * trace).sum(1)) / m
        noise = (n * trace).sum(1) / m
        return np.stack([signal / noise, signal, noise], 1)

    point = estimate(np.ones((1, n_groups)))[0]
    if int((counts.sum(0) >= min_per_class).sum()) < 2:
        raise ValueError(f"need at least two classes with {min_per_class} or more samples; got "
                         f"class counts {counts.sum(0).astype(int).tolist()[:20]}.")
    rng = np.random.default_rng(seed)
    reps = []
    for start in range(0, n_boot, 50):  # chunks bound memory at 50 x classes x dims
        b = min(50, n_boot - start)
        weights = np.stack([np.bincount(rng.integers(0, n_groups, n_groups), minlength=n_groups)
                            for _ in range(b)]).astype(float)
        reps.append(estimate(weights)[:, 0])
    # A replicate estimates the SNR of the resampled population (the empirical distribution,
    # whose SNR is the biased plug-in value), so only the spread of the replicates is used:
    # they are re-centred on the estimate.
    boot = np.concatenate(reps) if reps else np.empty(0)
    if np.isfinite(boot).any():
        boot = boot - np.nanmean(boot) + point[0]
    finite = boot[np.isfinite(boot)]
    lo, hi = np.quantile(finite, [(1 - ci) / 2, (1 + ci) / 2]) if len(finite) else (np.nan, np.nan)
    return SNRResult(float(point[0]), float(point[1]), float(point[2]), float(lo), float(hi),
                     int(len(y)), int((counts.sum(0) >= min_per_class).sum()), boot)


def plug_in_snr(features, labels) -> float:
    """The uncorrected ratio sum_c pi_c ||mean_c - mean||^2 / sum_c pi_c tr(cov_c) of sample
    means and (divide-by-n) covariances: the reference that :func:`snr` removes the bias from."""
    x = np.asarray(features, float)
    classes, y, counts = np.unique(np.asarray(labels).ravel(), return_inverse=True, return_counts=True)
    means = np.stack([x[y == c].mean(0) for c in range(len(classes))])
    weights = counts / counts.sum()
    between = (weights * ((means - x.mean(0)) ** 2).sum(1)).sum()
    within = (weights * np.array([x[y == c].var(0).sum() for c in range(len(classes))])).sum()
    return float(between / within)


# --------------------------------------------------------------------------- thresholds

LOGIT_WIDTH = 2 * np.log(9.0)  # ln x from 10 % to 90 % of the rise is LOGIT_WIDTH / |k|
# |k| is kept below this (a 10-90 % width of 0.004 in ln x): on perfectly separated outcomes
# the likelihood keeps rising as k grows, and a bound keeps the estimate finite.
SLOPE_CAP = 1e3


@dataclass(frozen=True)
class LogisticFits:
    """B maximum-likelihood fits of success = chance + (1 - chance) sigmoid(k (ln x - ln theta)):
    ``log_theta``, ``slope`` (k) and binomial ``deviance``, each of shape (B,)."""

    log_theta: np.ndarray
    slope: np.ndarray
    deviance: np.ndarray

    def predict(self, log_x, chance=0.0) -> np.ndarray:
        """Success probability of every fit at ``log_x`` ((n,) or (B, n)): shape (B, n)
        (``chance``: one level, or one per fit)."""
        z = self.slope[:, None] * (np.asarray(log_x, float) - self.log_theta[:, None])
        chance = np.broadcast_to(np.asarray(chance, float), self.slope.shape)[:, None]
        return chance + (1 - chance) * special.expit(z)

    @property
    def width(self) -> np.ndarray:
        """10-90 % width in ln x, 2 ln 9 / |k|."""
        return LOGIT_WIDTH / np.maximum(np.abs(self.slope), 1e-12)


def fit_logistic(log_x, hits, trials, chance=0.0, max_slope=None, start=None,
                 iterations: int = 100, tol: float = 1e-8) -> LogisticFits:
    """Maximum likelihood of the logistic threshold curve for B data sets at once (vectorised
    Fisher scoring with step halving; rows with ``trials`` 0 are absent from a data set).

    ``log_x`` is (n,) or (B, n), ``hits`` and ``trials`` (B, n) (or (n,) for one data set);
    ``chance`` is one level or one per data set.  ``max_slope`` (one, or one per data set;
    None or inf: no bound) bounds |k| (a width forced to at least 2 ln 9 / max_slope: the smooth
    alternative of the Theorem 4 rules); |k| never exceeds :data:`SLOPE_CAP`.  ``start``: one
    (ln theta, k) for every data set, or (B, 2); by default six starts per data set (three
    thresholds, both signs of k) and the best is kept, since with a chance level above 0 the
    likelihood need not be concave."""
    hits = np.atleast_2d(np.asarray(hits, float))
    trials = np.broadcast_to(np.asarray(trials, float), hits.shape)
    log_x = np.broadcast_to(np.asarray(log_x, float), hits.shape)
    n_sets = hits.shape[0]
    present = trials > 0
    count = present.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        center = np.where(present, log_x, 0).sum(1) / np.maximum(count, 1)
        spread = np.sqrt(np.where(present, (log_x - center[:, None]) ** 2, 0).sum(1)
                         / np.maximum(count, 1))
    scale = np.where(spread > 1e-9, spread, 1.0)
    u = np.where(present, (log_x - center[:, None]) / scale[:, None], 0.0)
    limit = np.broadcast_to(np.asarray(np.inf if max_slope is None else max_slope, float), (n_sets,))
    bound = np.minimum(SLOPE_CAP, limit) * scale
    chance = np.broadcast_to(np.asarray(chance, float), (n_sets,))

    if start is None:
        lo = np.where(present, u, np.inf).min(1)
        hi = np.where(present, u, -np.inf).max(1)
        span = np.maximum(hi - lo, 1e-6)
        starts = [(lo + q * span, sign * 8 / span) for q in (0.25, 0.5, 0.75) for sign in (1, -1)]
    else:
        start = np.broadcast_to(np.asarray(start, float), (n_sets, 2))
        starts = [((start[:, 0] - center) / scale, start[:, 1] * scale)]
    repeat = len(starts)
    b1 = np.concatenate([np.clip(k, -bound, bound) for _, k in starts])
    b0 = np.concatenate([-k_ * a for (a, _), k_ in zip(starts, np.split(b1, repeat))])
    tile = lambda v: np.tile(v, (repeat, 1)) if v.ndim == 2 else np.tile(v, repeat)  # noqa: E731
    b0, b1 = _fisher_scoring(tile(u), tile(hits), tile(trials), tile(chance)[:, None],
                             tile(bound), b0, b1, iterations, tol)
    nll = _logistic_nll(tile(u), tile(hits), tile(trials), tile(chance)[:, None], b0,
                        b1).reshape(repeat, n_sets)
    best = np.argmin(nll, 0)
    pick = best * n_sets + np.arange(n_sets)
    b0, b1, nll = b0[pick], b1[pick], nll[best, np.arange(n_sets)]
    with np.errstate(divide="ignore", invalid="ignore"):
        log_theta = np.where(b1 != 0, center - b0 / b1 * scale, np.nan)
        frac = np.where(present, hits / np.where(present, trials, 1), 0)
        saturated = np.where(hits > 0, hits * np.log(frac), 0) + \
            np.where(hits < trials, (trials - hits) * np.log1p(-frac), 0)
    deviance = 2 * (nll + np.where(present, saturated, 0).sum(1))
    empty = count == 0
    return LogisticFits(np.where(empty, np.nan, log_theta), np.where(empty, np.nan, b1 / scale),
                        np.where(empty, np.nan, deviance))


def _logistic_nll(u, hits, trials, chance, b0, b1) -> np.ndarray:
    """Negative binomial log-likelihood of each problem (``chance`` a column, (B, 1))."""
    p = chance + (1 - chance) * special.expit(b0[:, None] + b1[:, None] * u)
    p = np.minimum(np.maximum(p, 1e-12), 1 - 1e-12)
    return -(hits * np.log(p) + (trials - hits) * np.log1p(-p)).sum(1)


def _fisher_scoring(u, hits, trials, chance, bound, b0, b1, iterations, tol):
    """Maximise the binomial likelihood of z = b0 + b1 u with |b1| <= bound (an active set: at
    the bound only b0 moves), every problem at once; each step is halved until it does not
    raise the negative log-likelihood."""
    b0, b1 = b0.copy(), b1.copy()
    f = _logistic_nll(u, hits, trials, chance, b0, b1)
    active = np.flatnonzero(np.isfinite(f))
    for _ in range(iterations):
        if not len(active):
            break
        uu, h, n, c = u[active], hits[active], trials[active], chance[active]
        s = special.expit(b0[active, None] + b1[active, None] * uu)
        p = np.minimum(np.maximum(c + (1 - c) * s, 1e-12), 1 - 1e-12)
        dp = (1 - c) * s * (1 - s)
        odds = dp / (p * (1 - p))
        score = (h - n * p) * odds
        info = n * dp * odds
        info_u = info * uu
        g0, g1 = score.sum(1), (score * uu).sum(1)
        i00, i01, i11 = info.sum(1), info_u.sum(1), (info_u * uu).sum(1)
        ridge = 1e-9 * (1 + i00 + i11)
        i00, i11 = i00 + ridge, i11 + ridge
        det = i00 * i11 - i01 * i01
        s0, s1 = (i11 * g0 - i01 * g1) / det, (i00 * g1 - i01 * g0) / det
        lim = bound[active]
        old0, old1, old_f = b0[active], b1[active], f[active]
        pinned = (np.abs(old1) >= lim * (1 - 1e-12)) & (np.sign(s1) == np.sign(old1))
        s0, s1 = np.where(pinned, g0 / i00, s0), np.where(pinned, 0.0, s1)
        step = np.ones(len(active))
        for _halving in range(40):
            new0 = old0 + step * s0
            new1 = np.minimum(np.maximum(old1 + step * s1, -lim), lim)
            new_f = _logistic_nll(uu, h, n, c, new0, new1)
            worse = ~(new_f <= old_f + 1e-12 * np.abs(old_f))
            if not worse.any():
                break
            step = np.where(worse, step / 2, step)
        new0, new1, new_f = (np.where(worse, old0, new0), np.where(worse, old1, new1),
                             np.where(worse, old_f, new_f))
        moved = np.maximum(np.abs(new0 - old0), np.abs(new1 - old1))
        b0[active], b1[active], f[active] = new0, new1, new_f
        active = active[(moved > tol) & ~worse]
    return b0, b1


def binomial_deviance(hits, trials, p) -> np.ndarray:
    """Per-row binomial deviance 2 [h ln(h / (n p)) + (n - h) ln((n - h) / (n (1 - p)))] of
    ``hits`` out of ``trials`` under probabilities ``p`` (0 where trials is 0)."""
    hits, trials = np.asarray(hits, float), np.asarray(trials, float)
    p = np.clip(np.asarray(p, float), 1e-12, 1 - 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        first = np.where(hits > 0, hits * np.log(hits / (trials * p)), 0.0)
        second = np.where(trials - hits > 0, (trials - hits) * np.log((trials - hits) / (trials * (1 - p))), 0.0)
    return np.where(trials > 0, 2 * (first + second), 0.0)


@dataclass(frozen=True)
class ThresholdFit:
    """success(x) = chance + (1 - chance) * sigmoid(k (ln x - ln theta)).

    ``theta``: the x at half the rise, with a bootstrap percentile CI; ``width``: how far ln x
    moves from 10 % to 90 % of the rise (2 ln 9 / |k|; small = abrupt); ``in_range``: theta lies
    inside the observed x (otherwise it is an extrapolation); ``deviance``: binomial deviance;
    ``boot_log_theta`` and ``boot_slope``: the bootstrap replicates (for intervals of other
    functions of the fit, e.g. the width).
    """

    theta: float
    width: float
    slope: float
    ci_low: float
    ci_high: float
    chance: float
    deviance: float
    in_range: bool
    n_points: int
    n_boot: int
    boot_log_theta: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))
    boot_slope: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))

    def predict(self, x) -> np.ndarray:
        z = self.slope * (np.log(np.asarray(x, float)) - np.log(self.theta))
        return self.chance + (1 - self.chance) * special.expit(z)


def fit_threshold(x, success, trials=1, groups=None, chance: float = 0.0, n_boot: int = 200,
                  seed: int = 0, ci: float = 0.95) -> ThresholdFit:
    """Fit the logistic threshold curve to success fractions ``success`` observed at ``x`` out
    of ``trials`` attempts each (a 0/1 outcome per row when ``trials`` is 1).

    Maximum likelihood under a binomial model (:func:`fit_logistic`); ``k`` may be negative
    (success falling with x, e.g. against loss).  The CI of theta comes from a bootstrap that
    can vary on any data: without ``groups`` it redraws every row's successes from
    Binomial(trials, fitted p(x)) (the fitted curve is never exactly 0 or 1, so all-or-nothing
    rows vary too); with ``groups`` (e.g. the training run of each row) it resamples whole
    groups, then each chosen row's attempts (a group drawn m times gives its rows m times the
    attempts), so that the spread between runs enters the interval.  All replicates are fitted
    at once.
    """
    x = np.asarray(x, float).ravel()
    frac = np.asarray(success, float).ravel()
    trials = np.broadcast_to(np.asarray(trials, float), x.shape).astype(float)
    groups = None if groups is None else np.asarray(groups).ravel()
    if groups is not None and len(groups) != len(x):
        raise ValueError(f"groups has {len(groups)} entries for {len(x)} rows.")
    ok = np.isfinite(x) & np.isfinite(frac) & (x > 0) & (trials > 0)
    x, frac, trials = x[ok], np.clip(frac[ok], 0, 1), np.rint(trials[ok])
    groups = None if groups is None else groups[ok]
    if len(np.unique(x)) < 3:
        raise ValueError(f"need success at three or more distinct positive x values, got "
                         f"{len(np.unique(x))}.")
    if not 0 <= chance < 1:
        raise ValueError(f"chance must lie in [0, 1), got {chance}.")
    log_x, hits = np.log(x), frac * trials
    point = fit_logistic(log_x, hits, trials, chance)
    log_theta, k = float(point.log_theta[0]), float(point.slope[0])
    rng = np.random.default_rng(seed)
    boot_theta = boot_slope = np.empty(0)
    if n_boot > 0:
        if groups is None:
            attempts = np.broadcast_to(trials, (n_boot, len(x)))
            redrawn = rng.binomial(attempts.astype(np.int64), point.predict(log_x, chance)[0])
        else:
            labels, group_of = np.unique(groups, return_inverse=True)
            draws = rng.integers(0, len(labels), (n_boot, len(labels)))
            times = np.stack([np.bincount(d, minlength=len(labels)) for d in draws])[:, group_of]
            attempts = times * trials
            redrawn = rng.binomial(attempts.astype(np.int64), frac)
        distinct = np.array([len(np.unique(log_x[row > 0])) for row in attempts])
        reps = fit_logistic(log_x, redrawn.astype(float), attempts, chance, start=(log_theta, k))
        keep = (distinct >= 3) & np.isfinite(reps.log_theta)
        boot_theta, boot_slope = reps.log_theta[keep], reps.slope[keep]
    lo, hi = (np.quantile(boot_theta, [(1 - ci) / 2, (1 + ci) / 2]) if len(boot_theta)
              else (np.nan, np.nan))
    with np.errstate(over="ignore"):  # a flat curve puts theta far outside the data
        theta, lo, hi = np.exp([log_theta, lo, hi])
    return ThresholdFit(float(theta), float(LOGIT_WIDTH / max(abs(k), 1e-12)),
                        k, float(lo), float(hi), float(chance),
                        float(point.deviance[0]), bool(log_x.min() <= log_theta <= log_x.max()),
                        int(len(x)), int(len(boot_theta)), boot_theta, boot_slope)


@dataclass(frozen=True)
class CollapseResult:
    """How well one threshold curve in each candidate variable describes every model size.

    ``scores``: per variable, the deviance of one shared curve, the summed deviance of one curve
    per size, and ``excess`` = (shared - separate) / points (0 = a perfect collapse);
    ``best``: the variable with the smallest excess.
    """

    scores: pd.DataFrame
    best: str


def collapse_test(variables: Mapping[str, np.ndarray], success, trials, by,
                  chance: float = 0.0) -> CollapseResult:
    """Data-collapse score of each candidate variable (e.g. SNR, D, D x P, loss): fit one
    logistic threshold curve to all model sizes (``by``) together and one per size; a variable
    that puts every size on one curve loses little by sharing it."""
    by = np.asarray(by).ravel()
    success = np.asarray(success, float).ravel()
    trials = np.broadcast_to(np.asarray(trials, float), success.shape)
    rows = []
    for name, x in variables.items():
        x = np.asarray(x, float).ravel()
        shared = fit_threshold(x, success, trials, chance=chance, n_boot=0).deviance
        separate = sum(fit_threshold(x[by == b], success[by == b], trials[by == b],
                                     chance=chance, n_boot=0).deviance for b in np.unique(by))
        rows.append(dict(variable=name, shared_deviance=shared, separate_deviance=separate,
                         excess=(shared - separate) / len(x)))
    scores = pd.DataFrame(rows)
    return CollapseResult(scores, str(scores.loc[scores.excess.idxmin(), "variable"]))
