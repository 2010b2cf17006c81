"""Theorem 1's simulated worlds: windows whose variance falls as a known power of n, read by the
page's estimator and rules, so that each rule's false-verdict rate can be measured."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ...estimators.intervals import jackknife_weights
from ...verdicts import Verdict
from ...worlds import FAILS, HOLDS, World, mix_shared
from ...estimators.normality import holm, normality_tests
from .estimators import TESTED_KINDS, fit_exponents, length_grid, median_exponent
from .rules import (DECIDE, GAUSS_ALPHA, GAUSS_ALTERNATIVE_DF, GAUSS_NULL, MIN_LENGTHS, MIN_WINDOWS,
                    decide_gaussian, gaussian_power)

WORLDS_VERSION = 2

# A simple model of what the estimator sees, for measuring the rules' false-verdict rates: in
# each of WORLD_LAYERS layers the representation at length n is n^((b - 1) / 2) S(n), where
# S(n) sums the first n of i.i.d. Gaussian terms in WORLD_DIM dimensions (for b = -1 the running
# mean), so that the values of one window at different n share their prefix as in a causal
# model and the variance is proportional to n^b.  Layers share part of each window's terms
# (correlation WORLD_LAYER_CORRELATION) and every window has its own scale (log-normal with
# standard deviation WORLD_WINDOW_SPREAD): windows that are louder than others at every n and
# every layer, the heavy tails that make few groups of windows hard to resample.  The noise is
# set a little above that of the trained model with a fixed final token at the cpu profile
# (seed 0: per-layer interval half-width 0.10, median over layers 0.05; here 0.14 and 0.08).
WORLD_LAYERS = 30  # layers of the offline model, SmolLM2-135M
WORLD_DIM = 8
WORLD_LAYER_CORRELATION = 0.5
WORLD_WINDOW_SPREAD = 0.5
CONTROL_WORLD_SAMPLES = 20  # the smallest synthetic_samples a profile may ask for


def simulated_group_variances(rng: np.random.Generator, n_windows: int, n_groups: int,
                              lengths: np.ndarray, exponents: np.ndarray, dim: int = WORLD_DIM,
                              correlation: float = WORLD_LAYER_CORRELATION,
                              spread: float = WORLD_WINDOW_SPREAD) -> tuple[np.ndarray, np.ndarray]:
    """``by_group`` (layers x groups x lengths) and ``counts`` (groups x lengths), as
    :func:`~scaling_utils.estimators.moments.total_variance` computes them from a capture, for
    windows drawn from the model described above with exponent ``exponents[l]`` in layer l."""
    lengths = np.asarray(lengths, float)
    exponents = np.asarray(exponents, float)
    group = np.arange(n_windows) % n_groups
    counts = np.bincount(group, minlength=n_groups).astype(float)
    member = (group[:, None] == np.arange(n_groups)).astype(float) / counts  # windows x groups
    if len(exponents) == 1:  # one layer: the squared norm alone, without the vectors
        deviation = _squared_norms(rng, n_windows, lengths, dim)[None]
        deviation *= np.exp(2 * spread * rng.standard_normal(n_windows))[None, :, None]
        deviation *= lengths ** (exponents[0] - 1)
        return (np.einsum("lwk,wg->lgk", deviation, member),
                np.repeat(counts[:, None], len(lengths), 1))
    steps = np.sqrt(np.diff(np.concatenate([[0.0], lengths]))).astype(np.float32)[None, :, None]
    terms = rng.standard_normal((len(exponents), n_windows, len(lengths), dim), np.float32) * steps
    if len(exponents) > 1 and correlation > 0:  # one layer shares nothing
        shared = rng.standard_normal((n_windows, len(lengths), dim), np.float32) * steps
        terms = mix_shared(shared, terms, correlation)  # stays float32
    scale = np.exp(spread * rng.standard_normal(n_windows))[None, :, None, None]
    power = lengths[None, None, :, None] ** ((exponents[:, None, None, None] - 1) / 2)
    r = np.cumsum(terms, 2) * (scale * power).astype(np.float32)
    r -= r.mean(1, keepdims=True)
    deviation = np.einsum("lwkd,lwkd->lwk", r, r)  # layers x windows x lengths
    by_group = np.einsum("lwk,wg->lgk", deviation.astype(float), member)
    return by_group, np.repeat(counts[:, None], len(lengths), 1)


def _squared_norms(rng: np.random.Generator, n_windows: int, lengths: np.ndarray,
                   dim: int) -> np.ndarray:
    """||S(n_k)||^2 (windows x lengths) for S(n) the sum of n i.i.d. N(0, I_dim) terms, by the
    exact recursion ||S_k||^2 = (||S_{k-1}|| + sqrt(d_k) z)^2 + d_k chi^2_{dim-1}, d_k = n_k -
    n_{k-1} (the new terms along S_{k-1} and across it): the deviations of one layer without
    drawing the vectors.  The centring on the sample mean is left out: it changes every value
    by a relative 1/windows, the same at every n."""
    steps = np.diff(np.concatenate([[0.0], lengths]))
    norms = np.zeros((n_windows, len(lengths)))
    previous = np.zeros(n_windows)
    for k, d in enumerate(steps):
        across = rng.chisquare(dim - 1, n_windows) if dim > 1 else 0.0
        squared = (previous + np.sqrt(d) * rng.standard_normal(n_windows)) ** 2 + d * across
        norms[:, k] = squared
        previous = np.sqrt(squared)
    return norms


def _fitted_lengths(min_length: int, max_length: int, fit_from: int) -> np.ndarray:
    grid = length_grid(min_length, max_length)
    return grid[grid >= fit_from]


def _simulated_world(key, name, truth, description, exponent, n_windows, n_groups, lengths,
                     layers, dim=WORLD_DIM, spread=WORLD_WINDOW_SPREAD) -> World:
    def simulate(seed: int) -> Verdict:
        rng = np.random.default_rng(seed)
        by_group, counts = simulated_group_variances(rng, n_windows, n_groups, lengths,
                                                     np.full(layers, exponent), dim, spread=spread)
        fits = fit_exponents(lengths, by_group, counts, jackknife_weights(n_groups))
        return DECIDE[key](dict(median_exponent(fits), windows=n_windows, lengths=len(lengths)))
    return World(key, name, truth, description, simulate)


def _gaussian_world(name: str, truth: str, description: str, windows: int, directions: int,
                    df: float | None = None) -> World:
    """Gaussianity's world: ``directions`` independent directions of ``windows`` samples each,
    normal (``df`` None) or Student t with ``df`` degrees of freedom, tested and decided as on
    the page (Lilliefors, Holm over the directions, the power at this sample)."""
    power, needed = gaussian_power(windows, directions)

    def simulate(seed: int) -> Verdict:
        rng = np.random.default_rng(seed)
        samples = (rng.standard_t(df, (windows, directions)) if df
                   else rng.standard_normal((windows, directions)))
        p = normality_tests(samples, n_null=GAUSS_NULL).ks_pvalue
        return decide_gaussian(int((holm(p) < GAUSS_ALPHA).sum()), directions, windows, power,
                               needed)
    return World("gaussian", name, truth, description, simulate)


def gaussian_worlds(values: Mapping) -> list[World]:
    """Normal and Student-t fluctuations at the profile's windows and directions (the first and
    last layer's attention and block outputs), and at the windows the tests need for power."""
    windows, directions = values["n_windows"], len(TESTED_KINDS) * 2 * values["n_projections"]
    _, needed = gaussian_power(windows, directions)
    sizes = [(windows, f"{windows} windows")]
    if needed and needed != windows:
        sizes.append((needed, f"{needed} windows (enough for power)"))
    out = []
    for m, size in sizes:
        out += [_gaussian_world(f"holds, {size}", HOLDS, f"normal in {directions} directions; "
                                f"{size}", m, directions),
                _gaussian_world(f"fails, {size}", FAILS, f"Student t ({GAUSS_ALTERNATIVE_DF} "
                                f"df) in {directions} directions; {size}", m, directions,
                                GAUSS_ALTERNATIVE_DF)]
    return out


def worlds(values: Mapping) -> list[World]:
    """The worlds of every rule at a profile's parameter values (``profile_values``): the claim
    holds (variance proportional to 1/n), fails (n^-0.5, flat, or just outside the margin), and
    underpowered (few windows), simulated at the profile's windows, groups, fitted lengths and
    bootstrap replicates, and judged by the same estimator and ``decide_*`` rule as the page."""
    lengths = _fitted_lengths(values["min_length"], values["max_length"], values["fit_from"])
    few = MIN_WINDOWS  # the smallest sample that gets a verdict
    model = dict(n_windows=values["n_windows"], n_groups=values["n_groups"], lengths=lengths,
                 layers=WORLD_LAYERS)
    weak = dict(model, n_windows=few, n_groups=min(values["n_groups"], few),
                lengths=lengths[:MIN_LENGTHS])
    size = f"{values['n_windows']} windows in {values['n_groups']} groups, n = {lengths.tolist()}"
    holds = ("holds", HOLDS, f"variance ~ 1/n in every layer; {size}", -1.0)
    flat = ("flat", FAILS, f"variance flat in n in every layer; {size}", 0.0)
    out = [_simulated_world("rate", *world, **model) for world in (
        holds, ("slower", FAILS, f"variance ~ n^-0.5 in every layer; {size}", -0.5), flat,
        ("near miss", FAILS, f"variance ~ n^-0.9 (outside the margin) in every layer; {size}",
         -0.9))]
    for key in ("rate", "last_token", "residual", "twin"):
        if key != "rate":  # the same estimator and sample as the headline
            out += [_simulated_world(key, *holds, **model), _simulated_world(key, *flat, **model)]
        out.append(_simulated_world(key, "underpowered", HOLDS,
                                    f"variance ~ 1/n, but only {few} windows and n = "
                                    f"{lengths[:MIN_LENGTHS].tolist()}", -1.0, **weak))
    control_lengths = _fitted_lengths(values["min_length"], values["synthetic_max_length"],
                                      values["fit_from"])
    control = dict(n_windows=values["synthetic_samples"], n_groups=values["n_groups"],
                   lengths=control_lengths, layers=1, dim=values["synthetic_dim"],
                   spread=0.0)  # the control's samples are i.i.d.: no louder windows
    csize = f"{values['synthetic_samples']} samples, n = {control_lengths.tolist()}"
    out += [_simulated_world("control", "holds", HOLDS, f"variance ~ 1/n; {csize}", -1.0, **control),
            _simulated_world("control", "slower", FAILS, f"variance ~ n^-0.5; {csize}", -0.5,
                             **control),
            _simulated_world("control", "underpowered", HOLDS,
                             f"variance ~ 1/n, but only {CONTROL_WORLD_SAMPLES} samples, n = "
                             f"{control_lengths.tolist()}", -1.0,
                             **dict(control, n_windows=CONTROL_WORLD_SAMPLES,
                                    n_groups=min(values["n_groups"], CONTROL_WORLD_SAMPLES)))]
    return out + gaussian_worlds(values)


ERROR_RATE_COLUMNS = ["rule", "world", "truth", "n_sets", "supported", "contradicted",
                      "undetermined", "false_rate", "false_upper"]


def causal_average_exponents(depths: Sequence[int], lengths: Sequence[int]) -> pd.DataFrame:
    """A world where the CLT holds exactly in the limit and depth bends it at finite n: k
    successive uniform causal averages h_t <- (1/t) sum_{s<=t} h_s of i.i.d. unit-variance
    inputs.  The last position of a window of n is sum_s w_s x_s with w = e_n A^k (A the
    averaging matrix), so its variance is sum_s w_s^2, exactly; the local exponent between
    neighbouring lengths is the slope of its log against log n, which tends to -1 only once
    log n is large against k (each average leans on the earliest tokens: w_s ~ log(n/s)^(k-1)
    / ((k-1)! n))."""
    lengths = np.asarray(sorted(lengths), int)
    rows = []
    for k in depths:
        variance = []
        for n in lengths:
            w = np.zeros(n)
            w[-1] = 1.0
            for _ in range(k):  # w A: w'_s = sum_{t >= s} w_t / t, a reversed cumulative sum
                w = np.cumsum((w / np.arange(1, n + 1))[::-1])[::-1]
            variance.append((w ** 2).sum())
        slopes = np.diff(np.log(variance)) / np.diff(np.log(lengths))
        rows += [dict(depth=int(k), n_low=int(a), n_high=int(b), n=float(np.sqrt(a * b)),
                      exponent=float(e)) for a, b, e in zip(lengths[:-1], lengths[1:], slopes)]
    return pd.DataFrame(rows)


def rule_error_rates(values: Mapping, n_sets: int, seed: int = 0) -> pd.DataFrame:
    """Every rule of the chapter on up to ``n_sets`` data sets of each of its :func:`worlds` at
    ``values``: the trust page's table of this chapter (one cached computation serves both);
    empty when ``n_sets`` is 0."""
    from ...error_rates import chapter_error_rates
    from . import NOTEBOOK

    if n_sets == 0:
        return pd.DataFrame(columns=ERROR_RATE_COLUMNS)
    return chapter_error_rates(NOTEBOOK, values, n_sets, seed)[ERROR_RATE_COLUMNS]
