"""Parametric scaling-law fits: L(N, D) = E + A / N^alpha + B / D^beta (Hoffmann et al. 2022,
"approach 3"), a variant whose data term depends on model size, and their comparison.

The fit minimises the Huber loss (delta 1e-3) between log L and its prediction in log-sum-exp
form, log L = LSE(a - alpha log N, b - beta log D, e) with A = e^a, B = e^b, E = e^e, by L-BFGS
with analytic gradients.  It starts from a grid of points: the objective is evaluated at every
grid point at once and L-BFGS is run from the best few, which finds the same optimum as running
it from all of them at a fraction of the cost.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import optimize, special

HUBER_DELTA = 1e-3
E_FLOOR = 1e-3  # lower bound of a free E; a fit that ends there has not identified E
# The Huber objective is tiny and flat near its optimum; scipy's default tolerances stop
# L-BFGS early (biasing the fit and collapsing bootstrap intervals), so they are tightened.
_LBFGS = dict(method="L-BFGS-B", jac=True,
              options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 5000, "maxcor": 20})
# the additive law's parameters; the coupled variant adds gamma (data term ~ N^gamma / D^beta)
ADDITIVE = ("a", "b", "e", "alpha", "beta")
COUPLED = ADDITIVE + ("gamma",)


class ScalingDataError(ValueError):
    """Scaling-law data that cannot be fitted (empty, malformed, non-positive)."""


@dataclass(frozen=True)
class ChinchillaFit:
    """Fitted L(N, D) = E + A/N^alpha + B N^gamma / D^beta (gamma = 0 for the additive law).

    ``ci`` maps each parameter name to its bootstrap percentile interval; ``objective`` is the
    summed Huber loss at the optimum, ``aic`` an information criterion from the Gaussian
    likelihood of the log residuals.
    """

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    gamma: float = 0.0
    E_fixed: bool = False
    E_at_bound: bool = False  # the free E ran to its lower bound: not identified by the data
    rmse: float = np.nan  # root-mean-square residual of log L
    objective: float = np.nan
    aic: float = np.nan
    n_points: int = 0
    ci: dict = field(default_factory=dict)

    def predict(self, N, D) -> np.ndarray:
        N, D = np.asarray(N, float), np.asarray(D, float)
        return self.E + self.A / N ** self.alpha + self.B * N ** self.gamma / D ** self.beta

    def reducible(self, N, D) -> tuple[np.ndarray, np.ndarray]:
        """The capacity term A/N^alpha and the data term B N^gamma / D^beta separately."""
        N, D = np.asarray(N, float), np.asarray(D, float)
        return self.A / N ** self.alpha, self.B * N ** self.gamma / D ** self.beta


def fit_chinchilla(N, D, L, E: float | None = None, coupled: bool = False, n_boot: int = 0,
                   seed: int = 0, n_starts: int = 32, ci: float = 0.95) -> ChinchillaFit:
    """Fit the parametric law to losses ``L`` of models with ``N`` parameters trained on ``D``
    tokens.  ``E`` given: held fixed (e.g. a known entropy).  ``coupled``: the data term gets a
    factor N^gamma, so that gamma = 0 is the additive law.  ``n_boot`` > 0 adds bootstrap CIs
    (resampling points, each refit started from the point estimate).  A free E is bounded
    below by ``E_FLOOR``; ending there means the data do not identify it (``E_at_bound``)."""
    N, D, L = _check(N, D, L)
    fixed = {} if coupled else {"gamma": 0.0}
    if E is not None:
        fixed["e"] = np.log(E)
    free = [p for p in (COUPLED if coupled else ADDITIVE) if p not in fixed]
    x = (np.log(N), np.log(D), np.log(L))
    bounds = [(np.log(E_FLOOR), np.log(L.min())) if p == "e" else (None, None) for p in free]
    theta = _best_of_grid(x, free, fixed, n_starts, bounds)
    at_bound = E is None and theta[free.index("e")] <= np.log(E_FLOOR) + 1e-6
    params = dict(zip(free, theta), **fixed)
    objective = _objective(theta, x, free, fixed)[0]
    intervals = {}
    if n_boot:
        rng = np.random.default_rng(seed)
        reps = []
        for _ in range(n_boot):
            idx = rng.integers(0, len(L), len(L))
            xb = tuple(v[idx] for v in x)
            sol = optimize.minimize(_objective, theta, args=(xb, free, fixed), bounds=bounds,
                                    **_LBFGS)
            reps.append(_natural(dict(zip(free, sol.x), **fixed)))
        lo, hi = (1 - ci) / 2, (1 + ci) / 2
        for key in reps[0]:
            values = np.array([r[key] for r in reps])
            # a parameter the data do not identify has no meaningful interval
            intervals[key] = (np.nan, np.nan) if at_bound else tuple(np.quantile(values, [lo, hi]))
    nat = _natural(params)
    residual = x[2] - _log_prediction(params, x)
    k = len(free)
    # Gaussian AIC of the residuals at the Huber optimum (an approximation: the fit is not
    # least squares, so small differences between nested laws carry little weight)
    aic = len(L) * np.log(np.mean(residual ** 2)) + 2 * k
    return ChinchillaFit(nat["E"], nat["A"], nat["B"], nat["alpha"], nat["beta"], nat["gamma"],
                         E is not None, bool(at_bound), float(np.sqrt(np.mean(residual ** 2))),
                         float(objective), float(aic), len(L), intervals)


@dataclass(frozen=True)
class LawComparison:
    """Additive against coupled data term: information criteria and cross-validated error."""

    additive: ChinchillaFit
    coupled: ChinchillaFit
    aic_difference: float  # coupled minus additive: negative favours the coupled law
    cv_rmse_additive: float  # root-mean-square error of log L on held-out folds
    cv_rmse_coupled: float


def compare_laws(N, D, L, E: float | None = None, folds: int = 5, seed: int = 0) -> LawComparison:
    """Fit both laws and compare them by AIC and by K-fold held-out error on log L (NaN when a
    fold would leave fewer than 6 points to fit).  Folds hold whole (N, D) cells, so that runs
    of one cell that differ only in their seed are never split between fitting and testing (the
    held-out error would be optimistic)."""
    N, D, L = _check(N, D, L)
    additive = fit_chinchilla(N, D, L, E=E)
    coupled = fit_chinchilla(N, D, L, E=E, coupled=True)
    fold_of = cell_folds(N, D, folds, seed)
    if min((fold_of != k).sum() for k in range(folds)) < 6:  # too few points to refit
        return LawComparison(additive, coupled, coupled.aic - additive.aic, np.nan, np.nan)
    errors = {False: [], True: []}
    for k in range(folds):
        train, test = fold_of != k, fold_of == k
        for is_coupled in (False, True):  # grid starts: the full-data fit saw the held-out fold
            fit = fit_chinchilla(N[train], D[train], L[train], E=E, coupled=is_coupled, n_starts=8)
            errors[is_coupled].append(np.log(fit.predict(N[test], D[test])) - np.log(L[test]))
    rmse = {c: float(np.sqrt(np.mean(np.concatenate(e) ** 2))) for c, e in errors.items()}
    return LawComparison(additive, coupled, coupled.aic - additive.aic, rmse[False], rmse[True])


def cell_folds(N, D, folds: int, seed: int = 0) -> np.ndarray:
    """A fold index per point, assigned to whole (N, D) cells at random."""
    _, cell = np.unique(np.c_[np.asarray(N, float), np.asarray(D, float)], axis=0,
                        return_inverse=True)
    return (np.random.default_rng(seed).permutation(cell.max() + 1) % folds)[cell.ravel()]


# Besiroglu et al. (2024) fit 240 of the 245 digitised points: the five with the highest loss
# are dropped (small models trained on few tokens, far from the fitted regime).
EPOCH_DROPPED = 5


def load_epoch_chinchilla(path: str | Path, keep_all: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read published points in the column format of Epoch AI's digitised Chinchilla data
    (``Model Size``, ``Training FLOP``, ``loss``) and return N, D = FLOP / (6 N), L.  As in
    Besiroglu et al. (2024), the :data:`EPOCH_DROPPED` highest-loss points are left out unless
    ``keep_all``."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise ScalingDataError(f"{path} does not exist; pass the path of the CSV you downloaded.")
    try:
        table = pd.read_csv(path)
    except Exception as err:  # empty file, binary, bad quoting
        raise ScalingDataError(f"{path} is not a readable CSV file ({err}).") from err
    needed = ["Model Size", "Training FLOP", "loss"]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise ScalingDataError(f"{path} lacks the column(s) {missing}; expected {needed} "
                               f"(found {list(table.columns)}).")
    table = table[needed].apply(pd.to_numeric, errors="coerce").dropna()
    if table.empty:
        raise ScalingDataError(f"{path} has no numeric rows in {needed}.")
    if not keep_all:
        table = table.drop(table["loss"].nlargest(EPOCH_DROPPED).index)
    N = table["Model Size"].to_numpy(float)
    return _check(N, table["Training FLOP"].to_numpy(float) / (6 * N), table["loss"].to_numpy(float))


# the published refits the book sets beside ours (point estimates as printed in the papers)
# Kaplan et al. (2020), eqs. (1.1)-(1.3): L(N) ~ N^-alpha_N, L(D) ~ D^-alpha_D,
# L(C_min) ~ C_min^-alpha_C (each with the other resources unconstrained).
KAPLAN_EXPONENTS = dict(alpha_N=0.076, alpha_D=0.095, alpha_C=0.050)

PUBLISHED = {
    "Hoffmann et al. 2022": dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28),
    "Besiroglu et al. 2024": dict(E=1.8172, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658),
}


def _check(N, D, L):
    arrays = [np.asarray(v, float).ravel() for v in (N, D, L)]
    if len({a.size for a in arrays}) != 1:
        raise ScalingDataError(f"N, D and L differ in length ({[a.size for a in arrays]}).")
    if arrays[0].size < 6:
        raise ScalingDataError(f"need at least 6 points to fit a scaling law, got {arrays[0].size}.")
    for name, a in zip("NDL", arrays):
        if not np.isfinite(a).all() or (a <= 0).any():
            raise ScalingDataError(f"{name} must be finite and positive.")
    return arrays


def _grid(free) -> np.ndarray:
    """Starting grid of Hoffmann et al. / Besiroglu et al. for the free parameters."""
    values = {"a": np.arange(0, 26, 5.0), "b": np.arange(0, 26, 5.0),
              "e": np.arange(-1, 1.6, 0.5), "alpha": np.arange(0, 2.1, 0.5),
              "beta": np.arange(0, 2.1, 0.5), "gamma": np.array([-0.5, 0.0, 0.5])}
    return np.array(list(itertools.product(*(values[p] for p in free))))


def _terms(params: dict, x) -> np.ndarray:
    """The three log-terms (capacity, data, entropy), stacked on a last axis; parameters may be
    arrays (grid points x 1) that broadcast against the data."""
    log_n, log_d, _ = x
    return np.stack(np.broadcast_arrays(
        params["a"] - params["alpha"] * log_n,
        params["b"] + params["gamma"] * log_n - params["beta"] * log_d,
        params["e"] + 0 * log_n), axis=-1)


def _log_prediction(params: dict, x) -> np.ndarray:
    return special.logsumexp(_terms(params, x), axis=-1)


def _huber(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    small = np.abs(r) <= HUBER_DELTA
    value = np.where(small, 0.5 * r ** 2, HUBER_DELTA * (np.abs(r) - 0.5 * HUBER_DELTA))
    grad = np.where(small, r, HUBER_DELTA * np.sign(r))
    return value, grad


def _objective(theta, x, free, fixed):
    """Summed Huber loss of log L and its gradient in the free parameters."""
    params = dict(zip(free, theta), **fixed)
    log_n, log_d, log_l = x
    terms = _terms(params, x)
    lse = special.logsumexp(terms, axis=-1)
    weights = np.exp(terms - lse[:, None])  # softmax = d lse / d term
    value, dr = _huber(lse - log_l)
    partial = {"a": weights[:, 0], "alpha": -weights[:, 0] * log_n,
               "b": weights[:, 1], "beta": -weights[:, 1] * log_d,
               "gamma": weights[:, 1] * log_n, "e": weights[:, 2]}
    grad = np.array([(dr * partial[p]).sum() for p in free])
    return value.sum(), grad


def _best_of_grid(x, free, fixed, n_starts, bounds) -> np.ndarray:
    grid = _grid(free)
    params = {**{p: grid[:, i, None] for i, p in enumerate(free)}, **fixed}
    start_values = _huber(_log_prediction(params, x) - x[2])[0].sum(1)
    best, best_value = None, np.inf
    for start in grid[np.argsort(start_values)[:n_starts]]:
        start = np.array([np.clip(v, lo if lo is not None else -np.inf, hi if hi is not None else np.inf)
                          for v, (lo, hi) in zip(start, bounds)])
        sol = optimize.minimize(_objective, start, args=(x, free, fixed), bounds=bounds, **_LBFGS)
        if sol.fun < best_value:
            best, best_value = sol.x, sol.fun
    return best


def _natural(params: dict) -> dict:
    return {"E": float(np.exp(params["e"])), "A": float(np.exp(params["a"])),
            "B": float(np.exp(params["b"])), "alpha": float(params["alpha"]),
            "beta": float(params["beta"]), "gamma": float(params.get("gamma", 0.0))}
