"""Estimators: streaming moments, power-law fits with bootstrap CIs over groups, normality tests
with the correct null when mean and variance are estimated, multiple-testing corrections, and
the effective context of an attention row."""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np
import torch
from scipy import optimize, special


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
    return 1.0 / (weights ** 2).sum(-1)
