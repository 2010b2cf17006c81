"""Power laws y = offset + A x^b fitted on log scales, with bootstrap intervals over groups."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

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
