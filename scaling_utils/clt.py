"""Theorem 1 analysis: how the variance and the Gaussianity of captured representations change
with the context length n, and how the variance tracks the effective context n_eff.

Every function reads a :class:`~scaling_utils.capture.CaptureResult` and returns tidy tables
(pandas DataFrames) for plotting and glueing; the estimators themselves live in ``stats``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .capture import CaptureResult
from .stats import (benjamini_hochberg, fit_power_law, holm, massive_dims, normality_null, normality_tests,
                    total_variance)

CLAIMED_EXPONENT = -1.0
# Corrections of higher order in 1/n bias a finite-n slope by a few hundredths even where the
# theorem holds (the i.i.d. control shows it), so "consistent with -1" means that the whole CI
# lies within this margin of -1.
CLAIM_MARGIN = 0.05


@dataclass(frozen=True)
class VarianceScaling:
    """``curves``: variance per site and n (long form); ``fits``: one power-law fit per site."""

    curves: pd.DataFrame
    fits: pd.DataFrame


def variance_scaling(result: CaptureResult, n_boot: int = 400, seed: int = 0,
                     exclude_top_dims: int = 0, against: str = "n",
                     fit_from: int = 1) -> VarianceScaling:
    """Fit E||r - mu||^2 ~ x^b per site, x = n (``against="n"``) or the layer's mean effective
    context (``against="n_eff"``, needs attention weights), with bootstrap CIs over window
    groups.  Theorem 1 is a limit as n grows, and corrections of order 1/n^2 flatten the curve
    at short contexts, so only lengths n >= ``fit_from`` enter the fit (the curves keep all).
    ``exclude_top_dims`` drops that many massive-activation coordinates first."""
    if against not in ("n", "n_eff"):
        raise ValueError(f"against must be 'n' or 'n_eff', got {against!r}.")
    if against == "n_eff" and result.n_eff is None:
        raise ValueError("n_eff needs a capture with attention_weights=True.")
    curves, fits = [], []
    for site in result.sites:
        if against == "n_eff" and site.kind not in ("attention", "block"):
            continue
        moments = result.moments[site.name]
        excluded = massive_dims(moments, exclude_top_dims) if exclude_top_dims else None
        gv = total_variance(moments, excluded)
        if np.all(gv.variance <= 0):  # constant by construction (embeddings of a fixed query)
            continue
        x = result.lengths.astype(float) if against == "n" else layer_n_eff(result)[site.layer]
        used = result.lengths >= fit_from
        fit = fit_power_law(*_by_group(x[used], gv.by_group[:, used]), n_boot=n_boot, seed=seed)
        row = dict(site=site.name, kind=site.kind, layer=site.layer)
        fits.append({**row, "exponent": fit.exponent, "ci_low": fit.ci_low, "ci_high": fit.ci_high,
                     "covers_claim": consistent_with_claim(fit.ci_low, fit.ci_high), "prefactor": fit.prefactor})
        curves += [{**row, "n": n, against: xv, "variance": v}
                   for n, xv, v in zip(result.lengths, x, gv.variance)]
    return VarianceScaling(pd.DataFrame(curves), pd.DataFrame(fits))


# A reduced forward precision "leaves the statistics unchanged" when no site's exponent moves by
# more than this fraction of the median half-width of the float32 confidence intervals.
PRECISION_TOLERANCE = 0.1


@dataclass(frozen=True)
class PrecisionCheck:
    """Variance exponents under a reduced forward precision against float32, on the same windows."""

    precision: str
    max_difference: float  # largest |b_reduced - b_float32| over sites
    median_half_width: float  # median half-width of the float32 CIs
    unchanged: bool  # max_difference <= PRECISION_TOLERANCE x median_half_width
    table: pd.DataFrame  # site, float32 exponent, reduced exponent, difference


def precision_check(reduced: CaptureResult, reference: CaptureResult, precision: str,
                    **fit_options) -> PrecisionCheck:
    """Compare the exponents of two captures of the same windows, one run at ``precision`` and
    one in float32, and say whether the reduced precision leaves them unchanged (every
    difference within a tenth of the statistical uncertainty)."""
    ours = variance_scaling(reduced, **fit_options).fits.set_index("site")
    ref = variance_scaling(reference, **fit_options).fits.set_index("site")
    common = ref.index.intersection(ours.index)
    table = pd.DataFrame({"float32": ref.exponent[common], precision: ours.exponent[common]})
    table["difference"] = table[precision] - table["float32"]
    worst = float(table.difference.abs().max()) if len(table) else np.nan
    half = float(np.median((ref.ci_high - ref.ci_low)[common] / 2)) if len(common) else np.nan
    return PrecisionCheck(precision, worst, half, bool(worst <= PRECISION_TOLERANCE * half),
                          table.reset_index())


def student_fits(results, source, n_windows: int, min_length: int = 4, n_groups: int = 16,
                 seed: int = 0, device=None, n_boot: int = 400, fit_from: int = 1) -> pd.DataFrame:
    """Variance exponents of every site of trained students (a model family grown in P) on
    fresh windows of the language they learned, one row per site with ``variant`` naming the
    student and ``P`` its non-embedding parameters."""
    from .capture import capture_statistics
    from .train import load_student

    frames = []
    for r in results:
        context = r.config.context
        windows = source.sample(n_windows, context, seed)
        capture = capture_statistics(load_student(r, device), windows,
                                     length_grid(min_length, context), n_groups=n_groups,
                                     seed=seed, progress=False)
        fits = variance_scaling(capture, n_boot=n_boot, seed=seed, fit_from=fit_from).fits
        spec = r.config.spec
        frames.append(fits.assign(variant=f"student {spec.n_layers}x{spec.d_model}",
                                  P=r.n_parameters))
    return pd.concat(frames, ignore_index=True)


def layer_n_eff(result: CaptureResult) -> np.ndarray:
    """Effective context of each layer (layers x lengths): the harmonic mean over heads of the
    mean n_eff, since concatenated heads add variances sigma_h^2 / n_eff_h."""
    return 1.0 / (1.0 / result.n_eff).mean(-1)


def _by_group(x: np.ndarray, by_group: np.ndarray):
    """(x, y, groups) arrays for fit_power_law from a groups x lengths table."""
    n_groups = by_group.shape[0]
    return np.tile(x, (n_groups, 1)), by_group, np.repeat(np.arange(n_groups), len(x))


def effective_context_table(result: CaptureResult) -> pd.DataFrame:
    """n_eff per layer and n (mean over windows, harmonic mean over heads), with and without the
    first position, and the mean attention on the first position (the attention sink)."""
    if result.n_eff is None:
        raise ValueError("effective context needs a capture with attention_weights=True.")
    rows = []
    harmonic = layer_n_eff(result)
    no_sink = 1.0 / (1.0 / result.n_eff_no_sink).mean(-1)
    for layer in range(result.n_eff.shape[0]):
        for k, n in enumerate(result.lengths):
            rows.append(dict(layer=layer, n=int(n), n_eff=harmonic[layer, k],
                             n_eff_no_sink=no_sink[layer, k],
                             sink_mass=np.nan if result.sink_mass is None
                             else result.sink_mass[layer, k].mean()))
    table = pd.DataFrame(rows)
    table["n_eff_over_n"] = table.n_eff / table.n
    return table


def gaussianity(variants: dict, n_null: int = 2000, seed: int = 0,
                alpha: float = 0.05) -> pd.DataFrame:
    """KS (Lilliefors) and Anderson-Darling tests of each stored random projection.

    ``variants`` maps a name to ``(result, site names)``.  p-values use the Monte-Carlo null for
    estimated mean and variance; ``holm_reject`` controls the family-wise error over the
    directions of one (variant, site, n); ``bh_reject`` the false-discovery rate over every test
    in the table; ``ks_over_null`` is the KS statistic over its null 95 % quantile.
    """
    rows = []
    for name, (result, site_names) in variants.items():
        for site in (s for s in result.sites if s.name in set(site_names)):
            proj = result.moments[site.name].projections
            if proj is None:
                raise ValueError(f"site {site.name} kept no projections: capture with n_projections > 0.")
            for k, n in enumerate(result.lengths):
                samples = proj[:, k][np.isfinite(proj[:, k]).all(1)]
                test = normality_tests(samples, n_null=n_null, seed=seed)
                reject = holm(test.ks_pvalue) < alpha
                for j in range(samples.shape[1]):
                    rows.append(dict(variant=name, site=site.name, kind=site.kind, layer=site.layer,
                                     n=int(n), direction=j, ks=test.ks[j],
                                     ks_pvalue=test.ks_pvalue[j], ad=test.ad[j],
                                     ad_pvalue=test.ad_pvalue[j], holm_reject=bool(reject[j]),
                                     samples=test.n))
    table = pd.DataFrame(rows)
    table["bh_reject"] = benjamini_hochberg(table.ks_pvalue) < alpha
    null_q = {m: ks_null_quantile(m, seed=seed) for m in table.samples.unique()}
    table["ks_over_null"] = table.ks / table.samples.map(null_q)
    return table


def ks_null_quantile(n_samples: int, q: float = 0.95, n_null: int = 4000, seed: int = 0) -> float:
    """The q-quantile of the KS statistic under normality with estimated mean and variance."""
    return float(np.quantile(normality_null(n_samples, n_null, seed)[0], q))


@dataclass(frozen=True)
class PositionLoss:
    """Mean next-token loss per context length and the fit L(t) = L_inf + A t^(-alpha)."""

    curve: pd.DataFrame
    alpha: float
    ci_low: float
    ci_high: float
    loss_infinity: float


def position_loss(result: CaptureResult, n_boot: int = 200, seed: int = 0,
                  min_length: int = 2) -> PositionLoss:
    """Kaplan et al.'s per-token loss against position, fitted with an offset power law and
    bootstrap CIs over window groups; alpha is reported as a positive decay exponent."""
    if result.position_loss is None:
        raise ValueError("position loss needs a capture with position_loss=True.")
    by_group = result.position_loss  # groups x (N-1): loss predicting token t from t tokens
    t = np.arange(1, by_group.shape[1] + 1)
    keep = t >= min_length
    fit = fit_power_law(*_by_group(t[keep], by_group[:, keep]), n_boot=n_boot, seed=seed,
                        offset=True)
    curve = pd.DataFrame(dict(context=t, loss=by_group.mean(0), fitted=fit.predict(t)))
    return PositionLoss(curve, -fit.exponent, -fit.ci_high, -fit.ci_low, fit.offset)


def consistent_with_claim(ci_low: float, ci_high: float, claimed: float = CLAIMED_EXPONENT,
                          margin: float = CLAIM_MARGIN) -> bool:
    """Equivalence-style reading: the whole CI lies within ``margin`` of the claimed exponent
    (a wide interval that merely contains it is inconclusive, not support)."""
    return bool(claimed - margin <= ci_low and ci_high <= claimed + margin)


def verdict(ci_low: float, ci_high: float, claimed: float = CLAIMED_EXPONENT) -> str:
    """Plain-words reading of an exponent's CI against the claimed 1/n decay."""
    if not (np.isfinite(ci_low) and np.isfinite(ci_high)):
        return "not estimable"
    if consistent_with_claim(ci_low, ci_high, claimed):
        return "consistent with 1/n"
    if ci_low <= claimed <= ci_high:
        return "inconclusive (CI too wide)"
    if ci_high < claimed:
        return "falls faster than 1/n"
    if ci_high < 0:
        return "falls, but slower than 1/n"
    if ci_low > 0:
        return "grows with n"
    return "no decay detected"


def length_grid(min_length: int, max_length: int) -> np.ndarray:
    """Context lengths min, 2 min, 4 min, ... up to and including max_length."""
    if not 1 <= min_length <= max_length:
        raise ValueError(f"need 1 <= min_length <= max_length, got {min_length} and {max_length}.")
    grid = min_length * 2 ** np.arange(int(np.log2(max_length / min_length)) + 1)
    return np.unique(np.append(grid, max_length))


def summarise_fits(fits: pd.DataFrame) -> pd.DataFrame:
    """Per (variant, kind) of attention and block sites: the layer-0 fit, the median exponent and
    how many layers fall under each verdict (``fits`` needs ``variant`` and ``verdict`` columns)."""
    rows = []
    for (variant, kind), group in fits.groupby(["variant", "kind"], sort=False):
        if kind not in ("attention", "block"):
            continue
        first = group.sort_values("layer").iloc[0]
        counts = group.verdict.value_counts()
        rows.append({"variant": variant, "kind": kind, "layers": len(group),
                     "layer0_exponent": first.exponent, "layer0_ci_low": first.ci_low,
                     "layer0_ci_high": first.ci_high, "layer0_verdict": first.verdict,
                     "median_exponent": group.exponent.median(),
                     "consistent": int(counts.get("consistent with 1/n", 0)),
                     "inconclusive": int(counts.get("inconclusive (CI too wide)", 0)),
                     "slower": int(counts.get("falls, but slower than 1/n", 0)),
                     "no_decay": int(counts.get("no decay detected", 0)),
                     "grows": int(counts.get("grows with n", 0))})
    return pd.DataFrame(rows)
