"""What Theorem 1 measures from captures: variance exponents per site with jackknife intervals
over window groups (and the median over layers), effective context, Gaussianity tests, the loss
against position, the precision check and the students' fits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from ...capture import CaptureResult
from ...estimators.intervals import jackknife_interval, jackknife_weights
from ...estimators.moments import massive_dims, total_variance
from ...estimators.normality import benjamini_hochberg, holm, normality_null, normality_tests
from ...estimators.power_laws import fit_power_law
from .rules import (CI_LEVEL, GAUSS_ALPHA, PRECISION_TOLERANCE, READINGS, covers_claim,
                    reading)

# The variants measured, by what the final position reads.
IID_CONTROL = "i.i.d. attention control"
TWIN = "random twin, i.i.d. tokens"
LAST_TOKEN = "trained, random last token"
FIXED = "trained, fixed final token"
# The design that tells text structure from the model: each model reads real text, the same
# windows shuffled and i.i.d. tokens, each with its first token as drawn or fixed.
DESIGN_MODELS = ("trained", "random twin")
DESIGN_TEXTS = ("real text", "shuffled text", "i.i.d. tokens")
FIRST_TOKENS = ("as drawn", "fixed")
# Every model on every text with its first token as drawn; the trained model, whose attention
# sink draws much of its attention, also with a fixed first token on real and i.i.d. text.
DESIGN_CELLS = tuple((model, text, "as drawn") for model in DESIGN_MODELS
                     for text in DESIGN_TEXTS) + (("trained", "real text", "fixed"),
                                                  ("trained", "i.i.d. tokens", "fixed"))
# Seed robustness: the windows are a seed's random part, so the headline is also measured on
# this many disjoint subsets of the window groups (no extra forward passes).
WINDOW_SUBSETS = 3


def length_grid(min_length: int, max_length: int) -> np.ndarray:
    """Context lengths min, 2 min, 4 min, ... up to and including max_length."""
    if not 1 <= min_length <= max_length:
        raise ValueError(f"need 1 <= min_length <= max_length, got {min_length} and {max_length}.")
    grid = min_length * 2 ** np.arange(int(np.log2(max_length / min_length)) + 1)
    return np.unique(np.append(grid, max_length))


# --------------------------------------------------------------------------- exponent fits

@dataclass(frozen=True)
class ExponentFits:
    """Variance exponents b (E||r - mu||^2 ~ x^b) of several sites fitted on the same windows:
    one entry per site, and ``replicates`` (groups x sites), the exponents with each group of
    windows left out in turn, aligned across sites so that a statistic over sites (the median
    over layers) has an interval too; the intervals are those of :func:`jackknife_interval`."""

    exponent: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    prefactor: np.ndarray
    replicates: np.ndarray


def fit_exponents(x: np.ndarray, by_group: np.ndarray, counts: np.ndarray,
                  weights: np.ndarray, ci: float = CI_LEVEL) -> ExponentFits:
    """Least squares of log v_s(x) = a_s + b_s log x for every site s, where v_s(x) is the mean
    squared deviation over the windows (``by_group``: sites x groups x lengths, the mean of each
    group; ``counts``: groups x lengths, its windows) and ``x`` (lengths, or sites x lengths)
    the context.  Each replicate reweights whole groups (``weights``: replicates x groups, e.g.
    :func:`jackknife_weights`) for every site at once, because the values of one window at
    different n and in different layers are correlated."""
    x = np.broadcast_to(np.asarray(x, float), by_group.shape[::2])
    sums = np.nan_to_num(by_group) * counts[None]  # a group without windows adds nothing
    log_x = np.log(x)
    centred = log_x - log_x.mean(-1, keepdims=True)
    spread = (centred ** 2).sum(-1)

    def slopes(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(divide="ignore", invalid="ignore"):
            total = (w @ sums.transpose(1, 0, 2).reshape(len(counts), -1)).reshape(len(w), *x.shape)
            log_v = np.log(total / (w @ counts)[:, None, :])
        log_v[~np.isfinite(log_v)] = np.nan  # a zero variance has no power law
        return (log_v * centred).sum(-1) / spread, log_v.mean(-1)

    in_use = (weights.sum(0) > 0).astype(float)[None]  # the groups the replicates draw on
    (point,), (mean_log,) = slopes(in_use)
    reps = slopes(weights)[0]
    low, high = jackknife_interval(point, reps, ci)
    return ExponentFits(point, low, high, np.exp(mean_log - point * log_x.mean(-1)), reps)


def median_exponent(fits: ExponentFits, sites: np.ndarray | None = None,
                    ci: float = CI_LEVEL) -> dict:
    """The median over ``sites`` (a boolean mask; default all) of the exponents, with the
    :func:`jackknife_interval` of the medians of the replicates: ``{exponent, ci_low,
    ci_high}``."""
    sites = np.ones(len(fits.exponent), bool) if sites is None else np.asarray(sites, bool)
    point = float(np.median(fits.exponent[sites]))
    medians = np.median(fits.replicates[:, sites], axis=1)
    low, high = jackknife_interval(np.array([point]), medians, ci)
    return dict(exponent=point, ci_low=float(low[0]), ci_high=float(high[0]))


@dataclass(frozen=True)
class VarianceScaling:
    """``curves``: variance per site and n (long form); ``fits``: one power-law fit per site;
    ``medians``: per site kind (attention, block), the median exponent over layers with its
    interval."""

    curves: pd.DataFrame
    fits: pd.DataFrame
    medians: pd.DataFrame


def variance_scaling(result: CaptureResult, exclude_top_dims: int = 0, against: str = "n",
                     fit_from: int = 1, groups: Sequence[int] | None = None,
                     fit_to: int | None = None) -> VarianceScaling:
    """Fit E||r - mu||^2 ~ x^b per site, x = n (``against="n"``) or the layer's effective
    context (``against="n_eff"``, needs attention weights), with jackknife CIs over window
    groups (``groups``: only these groups of windows, e.g. a third of them).  Theorem 1 is a
    limit as n grows, and corrections of order 1/n^2 flatten the curve at short contexts, so
    only lengths n >= ``fit_from`` (and <= ``fit_to``, if given) enter the fit (the curves keep
    all).  ``exclude_top_dims`` drops that many massive-activation coordinates first."""
    if against not in ("n", "n_eff"):
        raise ValueError(f"against must be 'n' or 'n_eff', got {against!r}.")
    if against == "n_eff" and result.n_eff is None:
        raise ValueError("n_eff needs a capture with attention_weights=True.")
    used = (result.lengths >= fit_from) & (result.lengths <= (fit_to or result.lengths.max()))
    if used.sum() < 2:
        raise ValueError(f"fewer than two context lengths n >= fit_from ({fit_from}) in "
                         f"{result.lengths.tolist()}: lower fit_from or raise max_length.")
    sites, by_group, xs, curves = [], [], [], []
    neff = layer_n_eff(result) if against == "n_eff" else None
    for site in result.sites:
        if against == "n_eff" and site.kind not in ("attention", "block"):
            continue
        moments = result.moments[site.name]
        excluded = massive_dims(moments, exclude_top_dims) if exclude_top_dims else None
        gv = total_variance(moments, excluded)
        if np.all(gv.variance <= 0):  # constant by construction (embeddings of a fixed query)
            continue
        x = result.lengths.astype(float) if against == "n" else neff[site.layer]
        row = dict(site=site.name, kind=site.kind, layer=site.layer)
        curves += [{**row, "n": n, against: xv, "variance": v}
                   for n, xv, v in zip(result.lengths, x, gv.variance)]
        keep = np.ones(len(gv.by_group), bool) if groups is None else np.isin(
            np.arange(len(gv.by_group)), list(groups))
        sites.append((site, moments.count * keep[:, None]))
        by_group.append(gv.by_group)
        xs.append(x)
    counts = sites[0][1][:, used]
    fits = fit_exponents(np.stack(xs)[:, used], np.stack(by_group)[:, :, used], counts,
                         jackknife_weights(counts.shape[0], groups))
    table = pd.DataFrame([dict(site=s.name, kind=s.kind, layer=s.layer) for s, _ in sites])
    table = table.assign(exponent=fits.exponent, ci_low=fits.ci_low, ci_high=fits.ci_high,
                         prefactor=fits.prefactor)
    table["covers_claim"] = [covers_claim(lo, hi) for lo, hi in zip(table.ci_low, table.ci_high)]
    table["reading"] = [reading(lo, hi) for lo, hi in zip(table.ci_low, table.ci_high)]
    medians = []
    for kind in ("attention", "block"):
        of_kind = (table.kind == kind).to_numpy()
        if of_kind.any():
            medians.append(dict(kind=kind, layers=int(of_kind.sum()), **median_exponent(fits, of_kind),
                                windows=int(counts[:, 0].sum()),
                                groups=int((counts[:, 0] > 0).sum()), lengths=int(used.sum())))
    return VarianceScaling(pd.DataFrame(curves), table, pd.DataFrame(medians))


def local_exponents(result: CaptureResult, kind: str = "attention") -> pd.DataFrame:
    """The exponent between each pair of neighbouring context lengths (n_i, n_i+1), median over
    the layers of site ``kind``, with its jackknife interval over window groups: how the slope
    of log variance against log n changes with n.  Theorem 1 is a limit, so what it predicts is
    that this local exponent tends to -1 as n grows, not that it equals -1 at every n."""
    rows = []
    for low, high in zip(result.lengths[:-1], result.lengths[1:]):
        medians = variance_scaling(result, fit_from=int(low), fit_to=int(high)).medians
        row = medians[medians.kind == kind]
        if len(row):
            rows.append(dict(n_low=int(low), n_high=int(high), n=float(np.sqrt(low * high)),
                             **row.iloc[0][["exponent", "ci_low", "ci_high"]].to_dict()))
    return pd.DataFrame(rows, columns=["n_low", "n_high", "n", "exponent", "ci_low", "ci_high"])


def design_table(cells: dict, fit_from: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The attention output's variance exponent in every cell of the design (``cells`` maps
    (model, text, first token) to a capture with attention weights): the median over layers with
    its jackknife interval over n >= ``fit_from``, the local exponent over the last pair of
    lengths, and the attention on the first position at the largest n (median over layers).
    Returns that table and every cell's local exponents against n."""
    rows, local = [], []
    for (model, text, first), capture in cells.items():
        label = dict(model=model, text=text, first_token=first)
        median = variance_scaling(capture, fit_from=fit_from).medians.query(
            "kind == 'attention'").iloc[0]
        steps = local_exponents(capture).assign(**label)
        last = steps.iloc[-1]
        context = effective_context_table(capture)
        rows.append(dict(**label, windows=int(median.windows), exponent=median.exponent,
                         ci_low=median.ci_low, ci_high=median.ci_high, local_exponent=last.exponent,
                         local_ci_low=last.ci_low, local_ci_high=last.ci_high,
                         sink_mass=float(context[context.n == context.n.max()].sink_mass.median())))
        local.append(steps)
    return pd.DataFrame(rows), pd.concat(local, ignore_index=True)


def window_subsets(fixed: CaptureResult | None, n_groups: int, fit_from: int) -> pd.DataFrame:
    """The headline exponent (median over layers of the fixed-query attention output) on all
    windows and on WINDOW_SUBSETS disjoint subsets of the window groups (group g goes to subset
    g mod WINDOW_SUBSETS), each with its own jackknife interval: what other seeds, drawing other
    windows, would see, without extra forward passes."""
    if fixed is None:
        return pd.DataFrame(columns=["label", "windows", "groups", "exponent", "ci_low", "ci_high"])
    rows = []
    parts = [("all windows", None)] + [
        (f"subset {s + 1}", [g for g in range(n_groups) if g % WINDOW_SUBSETS == s])
        for s in range(WINDOW_SUBSETS)]
    for label, groups in parts:
        median = variance_scaling(fixed, groups=groups, fit_from=fit_from).medians.query(
            "kind == 'attention'")
        rows.append(dict(label=label, **median.iloc[0][["windows", "groups", "exponent", "ci_low",
                                                        "ci_high"]].to_dict()))
    return pd.DataFrame(rows)


SUMMARY_COLUMNS = ["variant", "kind", "layers", "median_exponent", "ci_low", "ci_high",
                   "layer0_exponent", "consistent", "inconclusive", "faster", "slower", "no_decay",
                   "grows"]


def summarise_fits(fits: pd.DataFrame, medians: pd.DataFrame) -> pd.DataFrame:
    """Per (variant, kind) of attention and block sites: the median exponent over layers with
    its interval (``medians``), the layer-0 fit and how many layers fall under each reading
    (``fits`` needs ``variant`` and ``reading`` columns)."""
    rows = []
    for (variant, kind), group in fits.groupby(["variant", "kind"], sort=False):
        if kind not in ("attention", "block"):
            continue
        first = group.sort_values("layer").iloc[0]
        median = medians.query("variant == @variant and kind == @kind").iloc[0]
        counts = group.reading.map(READINGS).value_counts()
        rows.append({"variant": variant, "kind": kind, "layers": len(group),
                     "median_exponent": median.exponent, "ci_low": median.ci_low,
                     "ci_high": median.ci_high, "layer0_exponent": first.exponent,
                     "layer0_ci_low": first.ci_low, "layer0_ci_high": first.ci_high,
                     **{name: int(counts.get(name, 0)) for name in READINGS.values()}})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- other statistics

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
                 seed: int = 0, device=None, fit_from: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Variance exponents of every site of trained students (a model family grown in P) on
    fresh windows of the language they learned: one row per site, and one per student and site
    kind with the median over layers; ``variant`` names the student, ``P`` its non-embedding
    parameters."""
    from ...capture import capture_statistics
    from ...train import load_student

    frames, medians = [], []
    for r in results:
        context = r.config.context
        windows = source.sample(n_windows, context, seed)
        capture = capture_statistics(load_student(r, device), windows,
                                     length_grid(min_length, context), n_groups=n_groups,
                                     seed=seed, progress=False)
        scaling = variance_scaling(capture, fit_from=fit_from)
        spec = r.config.spec
        label = dict(variant=f"student {spec.n_layers}x{spec.d_model}", P=r.n_parameters)
        frames.append(scaling.fits.assign(**label))
        medians.append(scaling.medians.assign(**label))
    return pd.concat(frames, ignore_index=True), pd.concat(medians, ignore_index=True)


def layer_n_eff(result: CaptureResult) -> np.ndarray:
    """Effective context of each layer (layers x lengths): the harmonic mean over heads of the
    n_eff pooled over windows, since concatenated heads add variances sigma_h^2 / n_eff_h."""
    return 1.0 / (1.0 / result.n_eff).mean(-1)


def effective_context_table(result: CaptureResult) -> pd.DataFrame:
    """n_eff per layer and n (pooled over windows as 1 / mean sum a^2, harmonic mean over
    heads), with and without the first position, and the mean attention on the first position
    (the attention sink)."""
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
    in the table; ``ks_over_null`` is the KS statistic over its null 95 % quantile.  Samples of
    the same size share one null, so they are tested together (the p-values are the same).
    """
    cells = []  # (variant, site, n, samples) of every test cell
    for name, (result, site_names) in variants.items():
        for site in (s for s in result.sites if s.name in set(site_names)):
            proj = result.moments[site.name].projections
            if proj is None:
                raise ValueError(f"site {site.name} kept no projections: capture with n_projections > 0.")
            for k, n in enumerate(result.lengths):
                cells.append((name, site, int(n), proj[:, k][np.isfinite(proj[:, k]).all(1)]))
    tests = {}
    for m in {len(c[3]) for c in cells}:
        same = [c for c in cells if len(c[3]) == m]
        test = normality_tests(np.hstack([c[3] for c in same]), n_null=n_null, seed=seed)
        start = 0
        for c in same:
            cols = slice(start, start + c[3].shape[1])
            tests[id(c)] = (test.ks[cols], test.ks_pvalue[cols], test.ad[cols], test.ad_pvalue[cols], m)
            start = cols.stop
    rows = []
    for c in cells:
        name, site, n, samples = c
        ks, ks_p, ad, ad_p, m = tests[id(c)]
        reject = holm(ks_p) < alpha
        for j in range(len(ks)):
            rows.append(dict(variant=name, site=site.name, kind=site.kind, layer=site.layer, n=n,
                             direction=j, ks=ks[j], ks_pvalue=ks_p[j], ad=ad[j], ad_pvalue=ad_p[j],
                             holm_reject=bool(reject[j]), samples=m))
    table = pd.DataFrame(rows)
    table["bh_reject"] = benjamini_hochberg(table.ks_pvalue) < alpha
    null_q = {m: ks_null_quantile(m, seed=seed) for m in table.samples.unique()}
    table["ks_over_null"] = table.ks / table.samples.map(null_q)
    return table


def gaussian_evidence(table: pd.DataFrame, variant: str) -> dict:
    """One variant's tests at its longest n: how many directions were tested, on how many
    windows, and how many Holm's correction over all of them rejects at GAUSS_ALPHA (the
    Lilliefors p-values of :func:`gaussianity`)."""
    rows = table[table.variant == variant] if len(table) else table
    if rows.empty:
        return dict(rejected=0, directions=0, windows=0)
    rows = rows[rows.n == rows.n.max()]
    p = rows.ks_pvalue.to_numpy(float)
    p = p[np.isfinite(p)]
    return dict(rejected=int((holm(p) < GAUSS_ALPHA).sum()), directions=len(p),
                windows=int(rows.samples.iloc[0]))


TESTED_KINDS = ("attention", "block")  # tested for Gaussianity in the first and last layer


def tested_sites(result: CaptureResult) -> list[str]:
    """The sites tested for Gaussianity: the first and the last layer's attention and block."""
    last = result.sites_of("attention")[-1].layer
    return sorted({f"{kind}.{layer}" for kind in TESTED_KINDS for layer in (0, last)})


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
    n_groups = by_group.shape[0]
    fit = fit_power_law(np.tile(t[keep], (n_groups, 1)), by_group[:, keep],
                        np.repeat(np.arange(n_groups), keep.sum()), n_boot=n_boot, seed=seed,
                        offset=True)
    curve = pd.DataFrame(dict(context=t, loss=by_group.mean(0), fitted=fit.predict(t)))
    return PositionLoss(curve, -fit.exponent, -fit.ci_high, -fit.ci_low, fit.offset)
