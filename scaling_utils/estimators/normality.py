"""Normality tests with mean and variance estimated from the data (Lilliefors null by
simulation) and multiple-testing corrections."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import special

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


@functools.lru_cache(maxsize=32)
def ks_power(m: int, level: float, df: float = 5.0, n_sim: int = 1000, n_null: int = 10000,
             seed: int = 0) -> float:
    """Power of one direction's Lilliefors test at ``level`` against a Student t with ``df``
    degrees of freedom (heavier tails than the normal, at the same scale after standardising):
    the share of ``n_sim`` such samples of size m whose KS statistic exceeds the (1 - level)
    quantile of the Monte-Carlo null."""
    null_ks, _ = normality_null(m, n_null, seed)
    critical = np.quantile(null_ks, 1 - level)
    ks, _ = _ks_ad(np.random.default_rng([seed, m, 1]).standard_t(df, (m, n_sim)))
    return float((ks > critical).mean())


def samples_for_power(level: float, power: float = 0.8, start: int = 8, largest: int = 8192,
                      **options) -> int | None:
    """The smallest sample size on the doubling grid from ``start`` at which :func:`ks_power`
    reaches ``power`` (None if not by ``largest``): how many samples a test needs to see the
    departure."""
    m = start
    while m <= largest:
        if ks_power(m, level, **options) >= power:
            return m
        m *= 2
    return None


@functools.lru_cache(maxsize=16)
def normality_null(m: int, n_null: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """KS and AD statistics of ``n_null`` standard-normal samples of size m, each standardised
    by its own mean and sd: the null distribution when both are estimated."""
    rng = np.random.default_rng([seed, m])
    ks, ad = [], []
    for start in range(0, n_null, 500):  # chunks bound memory at 500 x m
        k, a = _ks_ad(rng.standard_normal((m, min(500, n_null - start))))
        ks.append(k)
        ad.append(a)
    ks, ad = np.concatenate(ks), np.concatenate(ad)
    ks.setflags(write=False)  # kept for the next test of the same size: read-only
    ad.setflags(write=False)
    return ks, ad


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
