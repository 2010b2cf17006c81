"""Chinchilla approach-3 fits recover known parameters; the published-data loader checks input."""

import numpy as np
import pytest

from scaling_utils.estimators.chinchilla import (ScalingDataError, compare_laws, fit_chinchilla,
                                                 fit_chinchilla_batch, held_out_rmse,
                                                 held_out_rmse_batch)
from scaling_utils.published import load_epoch_chinchilla

TRUE = dict(E=1.8, A=480.0, B=2000.0, alpha=0.35, beta=0.37)


def _points(seed, noise=0.005, gamma=0.0):
    rng = np.random.default_rng(seed)
    N = np.repeat(np.geomspace(1e7, 1e10, 16), 15)
    D = np.tile(np.geomspace(1e9, 1e12, 15), 16)
    L = TRUE["E"] + TRUE["A"] / N ** TRUE["alpha"] + TRUE["B"] * N ** gamma / D ** TRUE["beta"]
    return N, D, L * np.exp(rng.normal(0, noise, N.size))


def test_fit_recovers_known_parameters_from_noisy_points():
    # 240 points with 0.5 % noise: seed-to-seed spread of E is about 0.01, of alpha 0.005
    fit = fit_chinchilla(*_points(1), n_boot=40, seed=0)
    assert fit.E == pytest.approx(TRUE["E"], abs=0.04)
    assert fit.alpha == pytest.approx(TRUE["alpha"], abs=0.02)
    assert fit.beta == pytest.approx(TRUE["beta"], abs=0.02)
    lo, hi = fit.interval("beta")
    assert lo < fit.beta < hi and hi - lo < 0.1
    np.testing.assert_allclose(fit.predict(1e9, 1e11), 1.8 + 480 / 1e9 ** 0.35 + 2000 / 1e11 ** 0.37,
                               rtol=0.01)


def test_fixed_entropy_is_held_and_the_rest_recovered():
    fit = fit_chinchilla(*_points(2), E=TRUE["E"])
    assert fit.E == TRUE["E"] and fit.E_fixed
    assert fit.alpha == pytest.approx(TRUE["alpha"], abs=0.01)
    assert fit.beta == pytest.approx(TRUE["beta"], abs=0.01)


def test_comparison_detects_a_data_term_that_depends_on_size():
    additive = compare_laws(*_points(3), E=TRUE["E"])
    coupled = compare_laws(*_points(3, gamma=0.15), E=TRUE["E"])
    assert abs(additive.coupled.gamma) < 0.05
    assert coupled.coupled.gamma == pytest.approx(0.15, abs=0.05)
    assert coupled.aic_difference < -10 and coupled.cv_rmse_coupled < coupled.cv_rmse_additive


def test_bad_points_are_rejected():
    with pytest.raises(ScalingDataError, match="at least 6"):
        fit_chinchilla([1, 2], [1, 2], [1, 2])
    with pytest.raises(ScalingDataError, match="positive"):
        fit_chinchilla(*[np.r_[np.ones(6), -1.0]] * 3)


def test_epoch_loader(tmp_path):
    good = tmp_path / "points.csv"
    rows = "".join(f"1e8,6e18,{3 + i / 100}\n" for i in range(12))
    good.write_text("Model Size,Training FLOP,loss\n" + rows)
    N, D, L = load_epoch_chinchilla(good)  # the five highest losses left out, as published
    np.testing.assert_allclose(D, 1e10)
    np.testing.assert_allclose(np.sort(L), 3 + np.arange(7) / 100)
    assert len(load_epoch_chinchilla(good, keep_all=True)[2]) == 12
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ScalingDataError, match="not a readable CSV"):
        load_epoch_chinchilla(tmp_path / "empty.csv")
    (tmp_path / "cols.csv").write_text("N,FLOP,L\n1,2,3\n")
    with pytest.raises(ScalingDataError, match="lacks the column"):
        load_epoch_chinchilla(tmp_path / "cols.csv")
    with pytest.raises(ScalingDataError, match="does not exist"):
        load_epoch_chinchilla(tmp_path / "missing.csv")


def test_cross_validation_keeps_the_seeds_of_a_cell_together():
    from scaling_utils.estimators.chinchilla import cell_folds
    N = np.repeat([1e3, 1e4, 1e5, 1e6], 3 * 3)
    D = np.tile(np.repeat([1e5, 1e6, 1e7], 3), 4)  # 12 cells, 3 seeds each
    fold_of = cell_folds(N, D, folds=5, seed=0)
    for cell in set(zip(N, D)):
        rows = (N == cell[0]) & (D == cell[1])
        assert len(set(fold_of[rows])) == 1  # never split between fitting and testing
    assert set(fold_of) == set(range(5))


def _lbfgs_reference(N, D, L, free, fixed, starts):
    """The earlier minimiser, L-BFGS with analytic gradients and tight tolerances, from the same
    starts: the batched Gauss-Newton minimiser must reach an objective at least as low."""
    from scipy import optimize, special

    from scaling_utils.estimators import chinchilla as sl
    x = (np.log(N), np.log(D), np.log(L))

    def objective(theta):
        params = dict(zip(free, theta), **fixed)
        terms = np.stack(sl._terms(params, x), -1)
        lse = special.logsumexp(terms, axis=-1)
        weights = np.exp(terms - lse[:, None])
        value, dr = sl._huber(lse - x[2])
        partial = {"a": weights[:, 0], "alpha": -weights[:, 0] * x[0], "b": weights[:, 1],
                   "beta": -weights[:, 1] * x[1], "gamma": weights[:, 1] * x[0], "e": weights[:, 2]}
        return value.sum(), np.array([(dr * partial[p]).sum() for p in free])

    bounds = [(np.log(sl.E_FLOOR), np.log(L.min())) if p == "e" else (None, None) for p in free]
    return min(optimize.minimize(objective, s, jac=True, method="L-BFGS-B", bounds=bounds,
                                 options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 5000}).fun
               for s in starts)


@pytest.mark.parametrize("E, coupled", [(None, False), (1.8, True), (1.8, False)])
def test_minimiser_reaches_the_lbfgs_optimum(E, coupled):
    from scaling_utils.estimators import chinchilla as sl
    N = np.repeat(np.geomspace(1e3, 1e5, 4), 9)
    D = np.tile(np.repeat(np.geomspace(6.5e4, 1e6, 3), 3), 4)
    L = 1.8 + 30 / N ** 0.4 + 40 * N ** (0.1 * coupled) / D ** 0.3
    L = L * np.exp(np.random.default_rng(4).normal(0, 0.01, L.size))
    free, fixed = sl._parameters(E, coupled)
    starts = sl._grid_starts((np.log(N), np.log(D), np.log(L)), free, fixed, 8)
    reference = _lbfgs_reference(N, D, L, free, fixed, starts)
    fit = fit_chinchilla(N, D, L, E=E, coupled=coupled, n_starts=8)
    assert fit.objective <= reference * (1 + 1e-7)


def test_batch_fit_matches_one_fit_per_data_set():
    N = np.repeat(np.geomspace(1e3, 1e5, 4), 6)
    D = np.tile(np.repeat(np.geomspace(6.5e4, 1e6, 3), 2), 4)
    rng = np.random.default_rng(5)
    L = (1.8 + 30 / N ** 0.4 + 40 / D ** 0.3) * np.exp(rng.normal(0, 0.01, (3, N.size)))
    batch = fit_chinchilla_batch(N, D, L, n_starts=8)
    for i in range(3):
        one = fit_chinchilla(N, D, L[i], n_starts=8)
        assert batch.objective[i] == pytest.approx(one.objective, rel=1e-7)
        assert batch.E[i] == pytest.approx(one.E, rel=1e-4)
    fixed = fit_chinchilla_batch(N, D, L, E=[1.7, 1.8, 1.9], start=fit_chinchilla(N, D, L[0], E=1.8))
    np.testing.assert_allclose(fixed.E, [1.7, 1.8, 1.9])
    assert fixed.predict(N, D).shape == L.shape


@pytest.mark.parametrize("E", [None, TRUE["E"]])
def test_held_out_errors_of_many_data_sets_at_once_are_those_of_each_alone(E):
    # a small grid (48 points, 3 sets, 5 replicates each): the batched fold fits agree with the
    # one-by-one ones to the optimiser's tolerance, far below the errors' own scale (~0.005)
    rng = np.random.default_rng(7)
    sets = [_points(s, noise=0.01) for s in (3, 4, 5)]
    N, D = (v.reshape(16, 15)[::4, ::3].ravel() for v in sets[0][:2])
    L = np.stack([p[2].reshape(16, 15)[::4, ::3].ravel() for p in sets])
    reps = L[:, None, :] * np.exp(rng.normal(0, 0.01, (3, 5, L.shape[1])))
    e_sets = None if E is None else np.full(3, E)
    e_reps = None if E is None else np.full((3, 5), E)
    rmse, rep_rmse = held_out_rmse_batch(N, D, L, e_sets, folds=4, seed=1, replicates=reps,
                                         E_replicates=e_reps)
    for i in range(3):
        one, one_reps = held_out_rmse(N, D, L[i], E, folds=4, seed=1, replicates=reps[i],
                                      E_replicates=None if E is None else e_reps[i])
        assert rmse[i] == pytest.approx(one, rel=1e-3, abs=1e-5)
        np.testing.assert_allclose(rep_rmse[i], one_reps, rtol=1e-3, atol=1e-5)
