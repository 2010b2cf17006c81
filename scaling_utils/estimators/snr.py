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


WHITENED_VERSION = 2  # bump when a change to whitened_snr changes its numbers (cache keys)
JACKKNIFE_BLOCKS = 64  # blocks of groups the whitened SNR's bias correction leaves out in turn
SINGULAR_SHARE = 1e-6  # 1 - rho^2 below which a direction has no within-class noise (J infinite)


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
                 ci: float = 0.95, min_per_class: int = 10, chunk: int = 25,
                 jackknife_blocks: int = JACKKNIFE_BLOCKS) -> WhitenedSNR:
    """Between-class power in the metric of the within-class noise, J = tr(Sigma_W^-1 Sigma_B):
    the sum over discriminant directions of their signal-to-noise ratio.  Unlike the trace
    ratio of :func:`snr` it is unchanged by any invertible linear map of the features (up to the
    rank cutoff below), so the scale and rotation a width gives a representation do not enter;
    with isotropic noise it is d times the trace ratio.

    With m samples, K classes and rank d, the plug-in J is first corrected to
    J_1 = J_plug (m - K - d - 1) / (m - K) - (K - 1) d / m: E[W^-1] of the pooled within-class
    Wishart, and the noise Sigma_W (K - 1) / m that the class means carry into Sigma_B (exact for
    independent Gaussian samples of one covariance).  The bias of order 1/m that is left
    (samples correlated within a group, which leave fewer degrees of freedom than m; classes of
    unequal spread; non-Gaussian features) is removed by the jackknife over
    ``jackknife_blocks`` blocks of groups (group i in block i mod B):
    J = B J_1 - (B - 1) mean_b J_1(without block b); 0 keeps J_1.  Classes with fewer than
    ``min_per_class`` samples are dropped (a class of a few samples can lose its mean with one
    block).  The features are first scaled to unit variance per coordinate (one that does not
    vary is dropped) and reduced to the span of their covariance (eigenvalues above 1e-10 of
    the largest), so constant or redundant coordinates (a belief vector summing to one) do not
    make Sigma_W singular.  The bootstrap resamples ``groups`` (default each sample), its
    replicates J_1, and is re-centred on the estimate, as in :func:`snr`.  Where the
    within-class scatter is singular on the features' span (a direction whose within-class
    share of the variance, 1 - rho^2, is below ``SINGULAR_SHARE``: a task with a few distinct
    inputs) J is infinite, with no interval; a resample singular in that sense is missing, and
    a jackknife block whose removal makes it so leaves J_1 as the estimate."""
    x = np.asarray(features, float)
    y = np.asarray(labels).ravel()
    if x.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"features must be (samples x dims) with one label per sample; got "
                         f"{x.shape} and {y.shape}.")
    if jackknife_blocks == 1 or jackknife_blocks < 0:
        raise ValueError(f"jackknife_blocks must be 0 (no jackknife) or at least 2; got "
                         f"{jackknife_blocks}.")
    _, y, counts = np.unique(y, return_inverse=True, return_counts=True)
    keep = counts[y] >= max(min_per_class, 2)
    x, y = x[keep], np.unique(y[keep], return_inverse=True)[1]
    g = np.arange(len(keep)) if groups is None else np.asarray(groups).ravel()
    g = np.unique(g[keep], return_inverse=True)[1]
    k = int(y.max()) + 1 if len(y) else 0
    if k < 2:
        raise ValueError(f"need at least two classes with {max(min_per_class, 2)} or more "
                         f"samples; got class counts {counts.tolist()[:20]}.")
    z = _span(x)  # samples x d, d the rank
    d = z.shape[1]
    if d == 0:
        raise ValueError("the features are constant: there is no dimension to measure J in.")
    if len(y) <= k + d + 1:
        raise ValueError(f"need more samples than classes + dimensions + 1 ({k} + {d} + 1) to "
                         f"estimate the within-class covariance; got {len(y)}.")
    n_groups = int(g.max()) + 1
    blocks = min(jackknife_blocks, n_groups) if jackknife_blocks else 1
    # the full sample and each block left out, from per-block sums: row 0 weighs every block
    weights = np.vstack([np.ones(blocks), 1.0 - np.eye(blocks)]) if blocks > 1 else np.ones((1, 1))
    j = _whitened_each(weights, _whitened_sums(z, y, g % blocks, blocks, k))
    if np.isnan(j[0]):
        # no noise at all along some direction (e.g. a task with a few distinct inputs, each a
        # point): the classes separate perfectly there and J is infinite, not a large number
        return WhitenedSNR(np.inf, np.nan, np.nan, int(len(y)), k, d)
    # a block whose removal leaves a singular scatter: the jackknife cannot be formed
    jack = j[1:]
    point = float(j[0] if len(jack) == 0 or np.isnan(jack).any()
                  else blocks * j[0] - (blocks - 1) * jack.mean())
    rng = np.random.default_rng(seed)
    reps = []
    sums = _whitened_sums(z, y, g, n_groups, k) if n_boot else None
    for start in range(0, n_boot, chunk):  # chunks bound memory at chunk x dims^2
        reps.append(_whitened_each(_resample_weights(rng, n_groups, min(chunk, n_boot - start)),
                                   sums))
    boot, lo, hi = _recentred_interval(reps, point, ci)
    return WhitenedSNR(point, float(lo), float(hi), int(len(y)), k, d, boot)


def _whitened_sums(z: np.ndarray, y: np.ndarray, g: np.ndarray, n_groups: int, k: int):
    """Counts (groups x K), sums (groups x K x d) and Gram matrices (groups x d x d) of the
    samples per group: all that J of any reweighting of the groups needs."""
    n_cells, sums = _cell_sums(g, y, n_groups, k, np.ones(len(y)), z)
    return n_cells, sums, _group_grams(z, g, n_groups)


def _whitened_each(weights: np.ndarray, sums) -> np.ndarray:
    """:func:`_whitened_j` of every row of ``weights``, NaN for a row whose within-class
    scatter cannot be factorised (tried one by one when a batch fails)."""
    with np.errstate(all="ignore"):
        j = _or_missing(lambda w: _whitened_j(w, *sums), weights)
        if len(weights) > 1 and np.isnan(j).all():
            j = np.concatenate([_or_missing(lambda w: _whitened_j(w, *sums), w[None])
                                for w in weights])
    return j


def _whitened_j(weights: np.ndarray, n_cells, sums, grams) -> np.ndarray:
    """J_1 (the Wishart- and mean-noise-corrected J) of each row of ``weights`` over groups;
    NaN where the within-class scatter is singular (see :func:`whitened_snr`)."""
    n_groups, k, d = sums.shape
    n = weights @ n_cells  # reps x K
    s = (weights @ sums.reshape(n_groups, -1)).reshape(len(weights), k, d)
    total = (weights @ grams.reshape(n_groups, -1)).reshape(len(weights), d, d)
    present = n > 0
    scaled = s / np.sqrt(np.where(present, n, 1.0))[..., None]
    explained = np.matmul(scaled.transpose(0, 2, 1), scaled)  # sum_c s_c s_c^T / n_c
    m = n.sum(1)
    classes_present = present.sum(1)
    outer = (lambda v: v[:, :, None] * v[:, None, :])(s.sum(1) / m[:, None])
    within = total - explained  # the within-class and between-class scatter
    between = explained - m[:, None, None] * outer
    # tr(S_W^-1 S_B) = sum_i rho_i^2 / (1 - rho_i^2) is at least the largest term: between 0
    # and 1 / SINGULAR_SHARE - 1 no direction can be singular, outside it the eigenvalues decide
    ratio = np.trace(np.linalg.solve(within, between), axis1=1, axis2=2)
    suspect = ~((ratio >= 0) & (ratio < 1 / SINGULAR_SHARE - 1))
    if suspect.any():
        share = _least_within_share(within[suspect], (within + between)[suspect])
        ratio[np.flatnonzero(suspect)[share <= SINGULAR_SHARE]] = np.nan
    dof = m - classes_present
    return ratio * (dof - d - 1) / m - (classes_present - 1) * d / m


def _span(x: np.ndarray) -> np.ndarray:
    """The features centred, scaled to unit variance per coordinate (a coordinate that does
    not vary beyond 1e-9 of its size is dropped) and projected on the span of their
    covariance (eigenvalues above 1e-10 of the largest): coordinates in which J is defined."""
    centred = x - x.mean(0)
    sd = centred.std(0)
    varies = sd > 1e-9 * np.abs(x).max(0)
    centred = centred[:, varies] / sd[varies]
    values, vectors = np.linalg.eigh(centred.T @ centred)
    return centred @ vectors[:, values > 1e-10 * values.max()] if len(values) else centred


def _least_within_share(within: np.ndarray, scatter: np.ndarray) -> np.ndarray:
    """min over directions v of v^T W v / v^T T v (batched): the least share of a direction's
    variance that lies within the classes, 1 - rho_max^2 of the features with the labels."""
    chol = np.linalg.cholesky(scatter)
    half = np.linalg.solve(chol, within)
    return np.linalg.eigvalsh(np.linalg.solve(chol, half.transpose(0, 2, 1)))[:, 0]


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
