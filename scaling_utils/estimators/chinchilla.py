"""Parametric scaling-law fits: L(N, D) = E + A / N^alpha + B / D^beta (Hoffmann et al. 2022,
"approach 3"), a variant whose data term depends on model size, and their comparison.

The fit minimises the Huber loss (delta 1e-3) between log L and its prediction in log-sum-exp
form, log L = LSE(a - alpha log N, b - beta log D, e) with A = e^a, B = e^b, E = e^e.  It starts
from a grid of points: the objective is evaluated at every grid point at once and the best few
are refined together by a damped Gauss-Newton method on the Huber objective's iteratively
reweighted least-squares form (:func:`_minimise`), which handles many starts, or many
bootstrap data sets, in one array computation.  It reaches the optimum that L-BFGS from the
same starts reaches (tests) in a few dozen steps; many data sets of one design (bootstrap
replicates, simulated worlds) are fitted at once by :func:`fit_chinchilla_batch`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, fields

import numpy as np

HUBER_DELTA = 1e-3
E_FLOOR = 1e-3  # lower bound of a free E; a fit that ends there has not identified E
# The minimiser stops a data set when its objective has improved by less than this fraction for
# _PATIENCE steps in a row (the Huber objective is tiny and flat near its optimum: a loose
# tolerance would stop early, bias the fit and collapse bootstrap intervals).
_TOLERANCE, _PATIENCE, _MAX_STEPS = 1e-11, 8, 400
# the additive law's parameters; the coupled variant adds gamma (data term ~ N^gamma / D^beta)
ADDITIVE = ("a", "b", "e", "alpha", "beta")
COUPLED = ADDITIVE + ("gamma",)


class ScalingDataError(ValueError):
    """Scaling-law data that cannot be fitted (empty, malformed, non-positive)."""


@dataclass(frozen=True)
class ChinchillaFit:
    """Fitted L(N, D) = E + A/N^alpha + B N^gamma / D^beta (gamma = 0 for the additive law).

    ``ci_low`` and ``ci_high`` map each parameter name to the ends of its bootstrap percentile
    interval; ``objective`` is the summed Huber loss at the optimum, ``aic`` an information
    criterion from the Gaussian likelihood of the log residuals.
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
    ci_low: dict = field(default_factory=dict)
    ci_high: dict = field(default_factory=dict)

    def interval(self, name: str) -> tuple[float, float]:
        """The bootstrap interval of parameter ``name`` (NaN, NaN without a bootstrap)."""
        return self.ci_low.get(name, np.nan), self.ci_high.get(name, np.nan)

    def predict(self, N, D) -> np.ndarray:
        N, D = np.asarray(N, float), np.asarray(D, float)
        with np.errstate(over="ignore"):  # a wild fit to a few held-out points predicts inf
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
    N, D, L = check_points(N, D, L)
    free, fixed = _parameters(E, coupled)
    x = (np.log(N), np.log(D), np.log(L))
    theta = _best_of_grid(x, free, fixed, n_starts)
    at_bound = E is None and theta[free.index("e")] <= np.log(E_FLOOR) + 1e-6
    params = dict(zip(free, theta), **fixed)
    objective = float(_evaluate(theta[None], x, free, fixed)[0][0])
    ci_low, ci_high = {}, {}
    if n_boot:
        rows = np.random.default_rng(seed).integers(0, len(L), (n_boot, len(L)))
        xb = tuple(v[rows] for v in x)
        thetas, _ = _minimise(np.repeat(theta[None], n_boot, 0), xb, free, fixed)
        reps = _natural({**{p: thetas[:, i] for i, p in enumerate(free)}, **fixed})
        for key, values in reps.items():
            # a parameter the data do not identify has no meaningful interval
            lo, hi = (np.nan, np.nan) if at_bound else _percentiles(values, ci)
            ci_low[key], ci_high[key] = float(lo), float(hi)
    nat = _natural(params)
    residual = x[2] - _log_prediction(params, x)
    k = len(free)
    # Gaussian AIC of the residuals at the Huber optimum (an approximation: the fit is not
    # least squares, so small differences between nested laws carry little weight)
    aic = len(L) * np.log(np.mean(residual ** 2)) + 2 * k
    return ChinchillaFit(nat["E"], nat["A"], nat["B"], nat["alpha"], nat["beta"], nat["gamma"],
                         E is not None, bool(at_bound), float(np.sqrt(np.mean(residual ** 2))),
                         objective, float(aic), len(L), ci_low, ci_high)


@dataclass(frozen=True)
class BatchFit:
    """The parametric law fitted to many data sets of one design at once (bootstrap replicates,
    simulated worlds): each field holds one value per data set."""

    E: np.ndarray
    A: np.ndarray
    B: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    gamma: np.ndarray
    E_at_bound: np.ndarray
    objective: np.ndarray

    def take(self, index) -> "BatchFit":
        """The fits of the data sets ``index`` (an integer gives one data set's values)."""
        return BatchFit(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def predict(self, N, D) -> np.ndarray:
        """Predicted losses, data sets x points."""
        N, D = np.asarray(N, float), np.asarray(D, float)
        c = lambda v: v[:, None]
        with np.errstate(over="ignore"):  # a wild replicate predicts inf, not an error
            return c(self.E) + c(self.A) / N ** c(self.alpha) + c(self.B) * N ** c(self.gamma) / D ** c(self.beta)


def fit_chinchilla_batch(N, D, L, E=None, coupled: bool = False,
                         start: ChinchillaFit | BatchFit | None = None,
                         n_starts: int = 8) -> BatchFit:
    """Fit the law to every row of ``L`` (data sets x points, all at the points ``N``, ``D``).
    ``E``: None (free), one value, or one value per data set (held fixed).  ``start``: a fit
    whose parameters start every data set (a bootstrap from its point estimate), or a BatchFit
    with one start per data set; without it, each data set starts from its own best
    ``n_starts`` grid points, as in :func:`fit_chinchilla`."""
    N, D = (np.asarray(v, float).ravel() for v in (N, D))
    L = np.atleast_2d(np.asarray(L, float))
    if L.shape[1] != N.size or D.size != N.size:
        raise ScalingDataError(f"L must be data sets x {N.size} points, got {L.shape}.")
    if not (np.isfinite(L).all() and (L > 0).all()):
        raise ScalingDataError("L must be finite and positive.")
    n_sets = len(L)
    e_fixed = None if E is None else np.log(np.broadcast_to(np.asarray(E, float), (n_sets,)))
    free, fixed = _parameters(None if E is None else 1.0, coupled)
    if e_fixed is not None:
        fixed["e"] = e_fixed
    x = (np.log(N), np.log(D), np.log(L))
    if start is not None:
        own = {"a": np.log(start.A), "b": np.log(start.B),
               "e": np.log(np.maximum(start.E, E_FLOOR)), "alpha": start.alpha,
               "beta": start.beta, "gamma": start.gamma}
        theta0 = np.stack([np.broadcast_to(np.asarray(own[p], float), (n_sets,)) for p in free], 1)
        theta, value = _minimise(theta0, x, free, fixed)
    else:
        starts = np.stack([_grid_starts((x[0], x[1], x[2][i]), free, _row(fixed, i), n_starts)
                           for i in range(n_sets)])  # sets x starts x parameters
        group = np.repeat(np.arange(n_sets), n_starts)
        xs = (x[0], x[1], x[2][group])
        many, values = _minimise(starts.reshape(-1, len(free)), xs, free,
                                 {k: (v[group] if np.ndim(v) else v) for k, v in fixed.items()},
                                 group=group)
        best = values.reshape(n_sets, n_starts).argmin(1)
        theta = many.reshape(n_sets, n_starts, -1)[np.arange(n_sets), best]
        value = values.reshape(n_sets, n_starts)[np.arange(n_sets), best]
    params = {**{p: theta[:, i] for i, p in enumerate(free)}, **fixed}
    nat = _natural(params)
    at_bound = (np.zeros(n_sets, bool) if E is not None
                else theta[:, free.index("e")] <= np.log(E_FLOOR) + 1e-6)
    return BatchFit(nat["E"], nat["A"], nat["B"], nat["alpha"], nat["beta"],
                    np.broadcast_to(nat["gamma"], (n_sets,)).astype(float), at_bound, value)


def _row(fixed: dict, i: int) -> dict:
    return {k: (v[i] if np.ndim(v) else v) for k, v in fixed.items()}


def _parameters(E, coupled: bool) -> tuple[list[str], dict]:
    """The free parameter names and the fixed values of a law (gamma = 0 unless coupled)."""
    fixed = {} if coupled else {"gamma": 0.0}
    if E is not None:
        fixed["e"] = np.log(E)
    return [p for p in (COUPLED if coupled else ADDITIVE) if p not in fixed], fixed


def _percentiles(values: np.ndarray, ci: float) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if not len(finite):
        return np.nan, np.nan
    return tuple(float(q) for q in np.quantile(finite, [(1 - ci) / 2, (1 + ci) / 2]))


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
    N, D, L = check_points(N, D, L)
    additive = fit_chinchilla(N, D, L, E=E)
    coupled = fit_chinchilla(N, D, L, E=E, coupled=True)
    rmse = {c: held_out_rmse(N, D, L, E, c, folds, seed)[0] for c in (False, True)}
    return LawComparison(additive, coupled, coupled.aic - additive.aic, rmse[False], rmse[True])


def held_out_rmse(N, D, L, E: float | None = None, coupled: bool = False, folds: int = 5,
                  seed: int = 0, replicates=None, E_replicates=None) -> tuple[float, np.ndarray]:
    """Root-mean-square error of log L on held-out folds of whole (N, D) cells
    (:func:`cell_folds`), each fold predicted by the law fitted to the others (NaN when a fold
    would leave fewer than 6 points).  ``replicates`` (data sets x points, e.g. bootstrap
    replicates of L, with their own ``E_replicates`` when E is fixed) are cross-validated with
    the same folds, each fold's fits starting from that fold's own fit (never from a fit that
    saw the held-out cells); their errors come back as an array (empty without replicates)."""
    N, D, L = check_points(N, D, L)
    fold_of = cell_folds(N, D, folds, seed)
    n_reps = 0 if replicates is None else len(replicates)
    if min((fold_of != k).sum() for k in range(folds)) < 6:  # too few points to refit
        return np.nan, np.full(n_reps, np.nan)
    errors, rep_errors = [], []
    for k in range(folds):
        train, test = fold_of != k, fold_of == k
        # grid starts: the full-data fit saw the held-out fold
        fit = fit_chinchilla(N[train], D[train], L[train], E=E, coupled=coupled, n_starts=8)
        errors.append(np.log(fit.predict(N[test], D[test])) - np.log(L[test]))
        if n_reps:
            reps = np.asarray(replicates, float)
            many = fit_chinchilla_batch(N[train], D[train], reps[:, train],
                                        E=None if E is None else E_replicates, coupled=coupled,
                                        start=fit)
            rep_errors.append(np.log(many.predict(N[test], D[test])) - np.log(reps[:, test]))
    rmse = float(np.sqrt(np.mean(np.concatenate(errors) ** 2)))
    rep_rmse = (np.sqrt(np.mean(np.concatenate(rep_errors, 1) ** 2, 1)) if n_reps
                else np.empty(0))
    return rmse, rep_rmse


def held_out_rmse_batch(N, D, L, E=None, coupled: bool = False, folds: int = 5, seed: int = 0,
                        replicates=None, E_replicates=None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`held_out_rmse` for many data sets of one design at once (``L``: data sets x
    points; ``E``: None or one value per set; ``replicates``: sets x replicates x points, with
    ``E_replicates`` sets x replicates): the RMSE of each set (sets,) and of each replicate
    (sets x replicates).  Each fold's point fits come from :func:`fit_chinchilla_batch`, which
    agrees with :func:`fit_chinchilla` to about 1e-4 (the tests check it)."""
    N, D = (np.asarray(v, float).ravel() for v in (N, D))
    L = np.atleast_2d(np.asarray(L, float))
    reps = np.asarray(replicates, float)
    n_sets, n_reps = reps.shape[:2]
    fold_of = cell_folds(N, D, folds, seed)
    if min((fold_of != k).sum() for k in range(folds)) < 6:  # too few points to refit
        return np.full(n_sets, np.nan), np.full((n_sets, n_reps), np.nan)
    flat = reps.reshape(n_sets * n_reps, -1)
    owner = np.repeat(np.arange(n_sets), n_reps)
    errors, rep_errors = [], []
    for k in range(folds):
        train, test = fold_of != k, fold_of == k
        fit = fit_chinchilla_batch(N[train], D[train], L[:, train], E=E, coupled=coupled,
                                   n_starts=8)
        errors.append(np.log(fit.predict(N[test], D[test])) - np.log(L[:, test]))
        many = fit_chinchilla_batch(N[train], D[train], flat[:, train],
                                    E=None if E is None else np.ravel(E_replicates),
                                    coupled=coupled, start=fit.take(owner))
        rep_errors.append(np.log(many.predict(N[test], D[test])) - np.log(flat[:, test]))
    rmse = np.sqrt(np.mean(np.concatenate(errors, 1) ** 2, 1))
    rep_rmse = np.sqrt(np.mean(np.concatenate(rep_errors, 1) ** 2, 1)).reshape(n_sets, n_reps)
    return rmse, rep_rmse


def cell_folds(N, D, folds: int, seed: int = 0) -> np.ndarray:
    """A fold index per point, assigned to whole (N, D) cells at random."""
    _, cell = np.unique(np.c_[np.asarray(N, float), np.asarray(D, float)], axis=0,
                        return_inverse=True)
    return (np.random.default_rng(seed).permutation(cell.max() + 1) % folds)[cell.ravel()]


def check_points(N, D, L):
    """N, D and L as flat float arrays of one length, at least 6 points, finite and positive."""
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


def _terms(params: dict, x) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three log-terms (capacity, data, entropy) as arrays of one shape; parameters may be
    arrays (grid points or data sets x 1) that broadcast against the data."""
    log_n, log_d, _ = x
    return tuple(np.broadcast_arrays(
        params["a"] - params["alpha"] * log_n,
        params["b"] + params["gamma"] * log_n - params["beta"] * log_d,
        params["e"] + 0 * log_n))


def _log_sum_exp(terms) -> tuple[np.ndarray, tuple]:
    """log(e^t1 + e^t2 + e^t3) of the three terms, and the softmax weights (its derivative).
    Elementwise over three arrays: much faster than a reduction over a short last axis."""
    top = np.maximum(np.maximum(terms[0], terms[1]), terms[2])
    weights = tuple(np.exp(t - top) for t in terms)
    total = weights[0] + weights[1] + weights[2]
    return np.log(total) + top, tuple(w / total for w in weights)


def _log_prediction(params: dict, x) -> np.ndarray:
    return _log_sum_exp(_terms(params, x))[0]


def _huber(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    small = np.abs(r) <= HUBER_DELTA
    value = np.where(small, 0.5 * r ** 2, HUBER_DELTA * (np.abs(r) - 0.5 * HUBER_DELTA))
    grad = np.where(small, r, HUBER_DELTA * np.sign(r))
    return value, grad


def _column_params(theta: np.ndarray, free, fixed) -> dict:
    """Parameters as columns (rows x 1) for broadcasting against rows x points."""
    params = {p: theta[:, i, None] for i, p in enumerate(free)}
    for p, v in fixed.items():
        params[p] = np.asarray(v, float)[..., None] if np.ndim(v) else v
    return params


def _evaluate(theta: np.ndarray, x, free, fixed) -> tuple[np.ndarray, np.ndarray, tuple]:
    """The objective (summed Huber loss of log L) of every row of ``theta``, with the log
    prediction and softmax weights it came from (reused by :func:`_minimise`)."""
    lse, weights = _log_sum_exp(_terms(_column_params(theta, free, fixed), x))
    return _huber(lse - x[2])[0].sum(-1), lse, weights


def _minimise(theta: np.ndarray, x, free, fixed, group: np.ndarray | None = None):
    """Minimise the Huber objective from every row of ``theta`` at once (data: ``x``, whose
    arrays broadcast to rows x points; ``fixed`` values are scalars or one per row).

    Each step solves the Gauss-Newton equations of the objective's iteratively reweighted
    least-squares form (weights min(1, delta/|r|), which majorise the Huber loss) with
    Levenberg-Marquardt damping, and is kept only if it lowers the objective.  A free e stays in
    [log E_FLOOR, log min L].  ``group`` (rows that are starts of one data set): every 25 steps,
    starts more than 1.5 times worse than their data set's best are stopped (another basin).
    Returns the parameters and objective of every row."""
    theta = np.array(theta, float)
    rows, k = theta.shape
    log_n, log_d = np.asarray(x[0], float), np.asarray(x[1], float)
    log_l = np.broadcast_to(x[2], (rows, np.shape(x[2])[-1]))
    lower = np.full(k, -np.inf)
    upper = np.full((rows, k), np.inf)
    if "e" in free:
        lower[free.index("e")] = np.log(E_FLOOR)
        upper[:, free.index("e")] = log_l.min(-1)
    theta = np.clip(theta, lower, upper)
    # the log prediction and weights at each row's parameters, kept from the accepted candidate
    value, lse, weights = _evaluate(theta, (log_n, log_d, log_l), free, fixed)
    weights = np.stack(weights)
    damping = np.full(rows, 1e-3)
    stalled = np.zeros(rows, int)
    active = np.ones(rows, bool)
    for step in range(_MAX_STEPS):
        # only the rows still moving are computed: rows are independent, so this changes the
        # cost (a batch is bound by its slowest rows otherwise), not the result
        i = np.flatnonzero(active)
        fixed_i = {p: (np.asarray(v)[i] if np.ndim(v) else v) for p, v in fixed.items()}
        data = tuple(v[i] if v.ndim == 2 else v for v in (log_n, log_d, log_l))
        w_i = weights[:, i]
        r = lse[i] - data[2]
        columns = {"a": w_i[0], "alpha": -w_i[0] * data[0], "b": w_i[1],
                   "beta": -w_i[1] * data[1], "gamma": w_i[1] * data[0], "e": w_i[2]}
        J = np.stack([np.broadcast_to(columns[p], r.shape) for p in free], -1)
        w = HUBER_DELTA / np.maximum(np.abs(r), HUBER_DELTA)  # min(1, delta / |r|)
        hessian = np.matmul((J * w[..., None]).transpose(0, 2, 1), J)
        gradient = np.einsum("rni,rn->ri", J, np.clip(r, -HUBER_DELTA, HUBER_DELTA))
        diagonal = np.einsum("rii->ri", hessian)
        ridge = damping[i, None] * diagonal + 1e-12 * (diagonal.mean(1, keepdims=True) + 1e-300)
        system = hessian + ridge[..., None] * np.eye(k)
        move = -np.linalg.solve(system, gradient[..., None])[..., 0]
        candidate = np.clip(theta[i] + move, lower, upper[i])
        new_value, new_lse, new_weights = _evaluate(candidate, data, free, fixed_i)
        better = new_value < value[i]
        moved = i[better]
        lse[moved] = new_lse[better]
        weights[:, moved] = np.stack(new_weights)[:, better]
        gain = np.where(better, value[i] - new_value, 0.0)
        theta[i] = np.where(better[:, None], candidate, theta[i])
        value[i] = np.where(better, new_value, value[i])
        damping[i] = np.clip(np.where(better, damping[i] / 3, damping[i] * 4), 1e-12, 1e12)
        stalled[i] = np.where(gain <= _TOLERANCE * value[i], stalled[i] + 1, 0)
        active[i] = stalled[i] < _PATIENCE
        if group is not None and step % 25 == 24:
            best = np.full(group.max() + 1, np.inf)
            np.minimum.at(best, group, value)
            active &= value <= 1.5 * best[group]
        if not active.any():
            break
    return theta, value


def _grid_starts(x, free, fixed, n_starts) -> np.ndarray:
    """The ``n_starts`` grid points with the lowest objective (e clipped into its bounds)."""
    grid = _grid(free)
    params = {**{p: grid[:, i, None] for i, p in enumerate(free)}, **fixed}
    start_values = _huber(_log_prediction(params, x) - x[2])[0].sum(1)
    starts = grid[np.argsort(start_values, kind="stable")[:n_starts]]
    if "e" in free:
        i = free.index("e")
        starts[:, i] = np.clip(starts[:, i], np.log(E_FLOOR), np.min(x[2]))
    return starts


def _best_of_grid(x, free, fixed, n_starts) -> np.ndarray:
    starts = _grid_starts(x, free, fixed, n_starts)
    thetas, values = _minimise(starts, x, free, fixed, group=np.zeros(len(starts), int))
    return thetas[np.argmin(values)]


def _natural(params: dict) -> dict:
    """Natural parameters (E, A, B, exponents); floats for one fit, arrays for many."""
    convert = (lambda v: float(v)) if np.ndim(params["a"]) == 0 else np.asarray
    return {"E": convert(np.exp(params["e"])), "A": convert(np.exp(params["a"])),
            "B": convert(np.exp(params["b"])), "alpha": convert(params["alpha"]),
            "beta": convert(params["beta"]), "gamma": convert(params.get("gamma", 0.0))}
