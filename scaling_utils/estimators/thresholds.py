"""Logistic threshold fits of success against ln x: success = chance + (1 - chance)
sigmoid(k (ln x - ln theta)), with bootstrap intervals over groups and binomial deviances."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import special

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
        with np.errstate(invalid="ignore"):  # a row without data stays NaN and stops
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
