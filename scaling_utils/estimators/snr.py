"""Signal-to-noise ratio of labelled representations (bias-corrected between-class over
within-class power, in the features' own coordinates or whitened by the within-class
covariance) and the variance factor of an attention row."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import sparse


def attention_concentration(weights):
    """sum_k a_k^2 along the last axis, the variance factor of one attention row: a weighted
    average of i.i.d. terms of variance sigma^2 has variance sigma^2 sum_k a_k^2.  Averaged over
    rows and then inverted it gives the effective context of many rows (the harmonic mean of
    their n_eff), since the variances, not the n_eff, add: n_eff = 1 / mean(sum_k a_k^2)."""
    return (weights ** 2).sum(-1)



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
    # sufficient statistics per (group, class): counts, sums, squared norms
    counts, sums, squares = _cell_sums(g, y, n_groups, k, np.ones(len(y)), x, (x * x).sum(1))

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
        m = np.where(m > 0, m, np.nan)  # no class kept: every ratio below is missing
        total = (s * keep[..., None]).sum(1)
        ssb = between.sum(1) - (total * total).sum(1) / m
        signal = (ssb - (keep * (1 - n / m[:, None]) * trace).sum(1)) / m
        noise = (n * trace).sum(1) / m
        # a resample with no class of min_per_class samples has no noise to divide by: its SNR
        # is missing (NaN), never an infinity that would swamp the replicates' mean
        ratio = np.divide(signal, noise, out=np.full_like(signal, np.nan),
                          where=np.nan_to_num(noise) > 0)
        return np.stack([ratio, signal, noise], 1)

    point = estimate(np.ones((1, n_groups)))[0]
    if int((counts.sum(0) >= min_per_class).sum()) < 2:
        raise ValueError(f"need at least two classes with {min_per_class} or more samples; got "
                         f"class counts {counts.sum(0).astype(int).tolist()[:20]}.")
    rng = np.random.default_rng(seed)
    reps = []
    for start in range(0, n_boot, 50):  # chunks bound memory at 50 x classes x dims
        reps.append(estimate(_resample_weights(rng, n_groups, min(50, n_boot - start)))[:, 0])
    boot, lo, hi = _recentred_interval(reps, point[0], ci)
    return SNRResult(float(point[0]), float(point[1]), float(point[2]), float(lo), float(hi),
                     int(len(y)), int((counts.sum(0) >= min_per_class).sum()), boot)


@dataclass(frozen=True)
class WhitenedSNR:
    """J = tr(Sigma_W^-1 Sigma_B) of representations with known labels, bias-corrected.

    ``dims``: the rank of the features (the dimensions J is measured in); ``bootstrap``: J of
    each replicate (resampling ``groups``), from which ``ci_low``/``ci_high`` are percentiles.
    """

    snr: float
    ci_low: float
    ci_high: float
    n_samples: int
    n_classes: int
    dims: int
    bootstrap: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))


def whitened_snr(features, labels, groups=None, n_boot: int = 200, seed: int = 0,
                 ci: float = 0.95, min_per_class: int = 2, chunk: int = 25) -> WhitenedSNR:
    """Between-class power in the metric of the within-class noise, J = tr(Sigma_W^-1 Sigma_B):
    the sum over discriminant directions of their signal-to-noise ratio.  Unlike the trace
    ratio of :func:`snr` it is unchanged by any invertible linear map of the features (up to the
    rank cutoff below), so the scale and rotation a width gives a representation do not enter;
    with isotropic noise it is d times the trace ratio.

    With m samples, K classes and rank d, the plug-in J is corrected to
    J = J_plug (m - K - d - 1) / (m - K) - (K - 1) d / m: E[W^-1] of the pooled within-class
    Wishart, and the noise Sigma_W (K - 1) / m that the class means carry into Sigma_B.  Exact
    for Gaussian classes with one covariance; classes of unequal size and spread leave a bias
    of a few per cent.  The features are first reduced to the span of their
    covariance (eigenvalues above 1e-10 of the largest), so constant or redundant coordinates
    (a belief vector summing to one) do not make Sigma_W singular.  Classes with fewer than
    ``min_per_class`` samples are dropped; the bootstrap resamples ``groups`` (default each
    sample) and is re-centred on the estimate, as in :func:`snr`.  Where the within-class
    scatter is singular on the features' span (no noise along some direction) J is infinite,
    with no interval."""
    x = np.asarray(features, float)
    y = np.asarray(labels).ravel()
    if x.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"features must be (samples x dims) with one label per sample; got "
                         f"{x.shape} and {y.shape}.")
    _, y, counts = np.unique(y, return_inverse=True, return_counts=True)
    keep = counts[y] >= max(min_per_class, 2)
    x, y = x[keep], np.unique(y[keep], return_inverse=True)[1]
    g = np.arange(len(keep)) if groups is None else np.asarray(groups).ravel()
    # without a bootstrap only the totals enter: one group holds every sample
    g = np.unique(g[keep], return_inverse=True)[1] if n_boot else np.zeros(int(keep.sum()), int)
    k = int(y.max()) + 1 if len(y) else 0
    if k < 2:
        raise ValueError(f"need at least two classes with {max(min_per_class, 2)} or more "
                         f"samples; got class counts {counts.tolist()[:20]}.")
    centred = x - x.mean(0)
    values, vectors = np.linalg.eigh(centred.T @ centred)
    basis = vectors[:, values > 1e-10 * values.max()]
    z = centred @ basis  # samples x d, d the rank
    n_groups, d = int(g.max()) + 1, z.shape[1]
    if d == 0:
        raise ValueError("the features are constant: there is no dimension to measure J in.")
    if len(y) <= k + d + 1:
        raise ValueError(f"need more samples than classes + dimensions + 1 ({k} + {d} + 1) to "
                         f"estimate the within-class covariance; got {len(y)}.")
    n_cells, sums = _cell_sums(g, y, n_groups, k, np.ones(len(y)), z)
    grams = _group_grams(z, g, n_groups)  # groups x d x d

    def estimate(weights: np.ndarray) -> np.ndarray:  # weights: reps x groups -> J per rep
        n = weights @ n_cells  # reps x K
        s = (weights @ sums.reshape(n_groups, -1)).reshape(len(weights), k, d)
        total = (weights @ grams.reshape(n_groups, -1)).reshape(len(weights), d, d)
        present = n > 0
        scaled = s / np.sqrt(np.where(present, n, 1.0))[..., None]
        explained = np.matmul(scaled.transpose(0, 2, 1), scaled)  # sum_c s_c s_c^T / n_c
        m = n.sum(1)
        classes_present = present.sum(1)
        mean = s.sum(1) / m[:, None]
        within = (total - explained) / (m - classes_present)[:, None, None]
        between = explained / m[:, None, None] - mean[:, :, None] * mean[:, None, :]
        plug = np.trace(np.linalg.solve(within, between), axis1=1, axis2=2)
        return (plug * (m - classes_present - d - 1) / (m - classes_present)
                - (classes_present - 1) * d / m)

    scaled = sums.sum(0) / np.sqrt(n_cells.sum(0))[:, None]
    within = grams.sum(0) - scaled.T @ scaled
    if np.linalg.eigvalsh(within)[0] <= 1e-10 * np.trace(within) / d:
        # no noise at all along some direction (e.g. a task with a few distinct inputs, each a
        # point): the classes separate perfectly there and J is infinite, not a large number
        return WhitenedSNR(np.inf, np.nan, np.nan, int(len(y)), k, d)
    point = float(estimate(np.ones((1, n_groups)))[0])
    rng = np.random.default_rng(seed)
    reps = []
    for start in range(0, n_boot, chunk):  # chunks bound memory at chunk x dims^2
        b = min(chunk, n_boot - start)
        weights = _resample_weights(rng, n_groups, b)
        with np.errstate(all="ignore"):
            j = _or_missing(estimate, weights)
            if b > 1 and np.isnan(j).all():  # a singular resample among them: one by one
                j = np.concatenate([_or_missing(estimate, w[None]) for w in weights])
        reps.append(j)
    boot, lo, hi = _recentred_interval(reps, point, ci)
    return WhitenedSNR(point, float(lo), float(hi), int(len(y)), k, d, boot)


def _cell_sums(groups: np.ndarray, labels: np.ndarray, n_groups: int, k: int, *columns):
    """Each column (a vector or samples x dims) summed per (group, class) cell, as arrays
    groups x classes (x dims): the sufficient statistics both SNRs resample."""
    cell = groups * k + labels
    onehot = sparse.csr_matrix((np.ones(len(labels)), (cell, np.arange(len(labels)))),
                               shape=(n_groups * k, len(labels)))
    return [np.asarray(onehot @ c).reshape(n_groups, k, *np.shape(c)[1:]) for c in columns]


def _resample_weights(rng: np.random.Generator, n_groups: int, replicates: int) -> np.ndarray:
    """How often each group is drawn in each of ``replicates`` bootstrap resamples."""
    return np.stack([np.bincount(rng.integers(0, n_groups, n_groups), minlength=n_groups)
                     for _ in range(replicates)]).astype(float)


def _recentred_interval(reps: list, point: float, ci: float):
    """The replicates re-centred on the estimate and their percentile interval.  A replicate
    estimates the SNR of the resampled population (the empirical distribution, whose SNR is the
    biased plug-in value), so only the spread of the replicates is used."""
    boot = np.concatenate(reps) if reps else np.empty(0)
    if np.isfinite(boot).any():
        boot = boot - np.nanmean(boot) + point
    finite = boot[np.isfinite(boot)]
    lo, hi = np.quantile(finite, [(1 - ci) / 2, (1 + ci) / 2]) if len(finite) else (np.nan, np.nan)
    return boot, lo, hi


def _group_grams(z: np.ndarray, g: np.ndarray, n_groups: int) -> np.ndarray:
    """sum_{i in group} z_i z_i^T for every group, as one batched product over the groups'
    samples padded with zeros to the largest group."""
    order = np.argsort(g, kind="stable")
    counts = np.bincount(g, minlength=n_groups)
    slot = np.arange(len(g)) - np.repeat(np.cumsum(counts) - counts, counts)
    padded = np.zeros((n_groups, counts.max(), z.shape[1]))
    padded[g[order], slot] = z[order]
    return np.matmul(padded.transpose(0, 2, 1), padded)


def _or_missing(estimate, weights: np.ndarray) -> np.ndarray:
    """J of each replicate; NaN for all of them if one has a singular within-class covariance
    (a resample too small to estimate it: its J is missing, never infinite)."""
    try:
        return estimate(weights)
    except np.linalg.LinAlgError:
        return np.full(len(weights), np.nan)


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
