"""What Theorem 1's prose reads: the numbers it glues, derived from a result's tables, and the
Markdown phrases on precision, the students and the rules' power."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .estimators import (DESIGN_MODELS, DESIGN_TEXTS, FIRST_TOKENS, FIXED, IID_CONTROL,
                         LAST_TOKEN, TWIN, WINDOW_SUBSETS, PrecisionCheck, gaussian_evidence)
from .rules import (CLAIM_MARGIN, GAUSS_ALTERNATIVE_DF, GAUSS_POWER, MIN_LENGTHS, MIN_WINDOWS,
                    PRECISION_TOLERANCE, covers_claim, gaussian_power)

if TYPE_CHECKING:
    from .study import Theorem1Result

# The glued name of each variant (``control_attention_exponent``, ``fixed_block_layers``, ...).
VARIANT_KEYS = (("control", IID_CONTROL), ("twin", TWIN), ("last", LAST_TOKEN), ("fixed", FIXED))
# The columns of the summary table glued per variant and kind, by their glued name.
SUMMARY_KEYS = (("median_exponent", "exponent"), ("ci_low", "ci_low"), ("ci_high", "ci_high"),
                ("layer0_exponent", "layer0"), ("layer0_ci_low", "layer0_ci_low"),
                ("layer0_ci_high", "layer0_ci_high"), ("layers", "layers"),
                ("consistent", "consistent"), ("inconclusive", "inconclusive"), ("grows", "grows"))
COUNTS = ("layers", "consistent", "inconclusive", "grows")  # columns that count layers


def numbers(result: Theorem1Result) -> dict:
    """Every number the page's prose glues, by name (without the chapter's prefix)."""
    summary, lengths, rate = result.fit_summary, result.lengths, result.verdict("rate")

    def cell(variant, kind, column):
        rows = summary.query("variant == @variant and kind == @kind")
        value = float(rows.iloc[0][column]) if len(rows) else np.nan
        return int(value) if column in COUNTS and np.isfinite(value) else value  # "30", not "30.0"

    out = dict(fit_from=result.fit_from, margin=CLAIM_MARGIN, nmax=int(lengths.max()),
               subsets=WINDOW_SUBSETS, windows=result.n_windows, groups=result.n_groups,
               min_windows=MIN_WINDOWS, min_lengths=MIN_LENGTHS,
               design_windows=int(result.design.windows.min()) if len(result.design) else 0)
    for key, variant in VARIANT_KEYS:
        for kind in ("attention", "block"):
            for column, name in SUMMARY_KEYS:
                out[f"{key}_{kind}_{name}"] = cell(variant, kind, column)
    head = result.fits.query("variant == @FIXED and kind == 'attention'")
    out.update(headline_exponent=rate.effect, headline_ci_low=rate.ci_low,
               headline_ci_high=rate.ci_high,
               headline_share_consistent=head.covers_claim.mean() if len(head) else np.nan)
    subsets = result.window_subsets
    inside = subsets.iloc[1:] if len(subsets) else subsets
    out["subsets_min"] = inside.exponent.min() if len(inside) else np.nan
    out["subsets_max"] = inside.exponent.max() if len(inside) else np.nan
    out["subsets_inside"] = int(((inside.exponent >= rate.ci_low)
                                 & (inside.exponent <= rate.ci_high)).sum())
    massive = result.without_massive.query("kind == 'block'")
    out.update(massive_k=result.exclude_top_dims,
               block_nomassive_median=massive.exponent.median(),
               block_nomassive_consistent=int(massive.covers_claim.sum()))
    neff = result.effective_context
    last = neff.query("n == @lengths.max()").groupby("variant").n_eff_over_n.median()
    out.update(neff_ratio_trained=last.get(LAST_TOKEN, np.nan),
               neff_ratio_twin=last.get(TWIN, np.nan),
               sink_median=neff.query("variant == @LAST_TOKEN and n == @lengths.max()")
               .sink_mass.median())
    neff_fits = result.neff_fits.query("kind == 'attention'")
    out.update(neff_exponent_median=neff_fits.exponent.median(),
               neff_covers=int(neff_fits.covers_claim.sum()), neff_sites=len(neff_fits))
    gauss = result.gaussianity
    at_max = gauss[gauss.n == gauss.groupby("variant").n.transform("max")]
    share = at_max.groupby("variant").bh_reject.mean()
    kaplan = result.position_loss
    out.update(gauss_reject_control=share.get(IID_CONTROL, np.nan),
               gauss_reject_trained=share.get(LAST_TOKEN, np.nan),
               kaplan_alpha=kaplan.alpha, kaplan_ci_low=kaplan.ci_low,
               kaplan_ci_high=kaplan.ci_high, kaplan_linf=kaplan.loss_infinity)
    out.update(local_numbers(result))
    out.update(gaussian_numbers(result))
    out.update(design_numbers(result.design))
    out = {k: (float(v) if not isinstance(v, (int, np.integer)) else int(v)) for k, v in out.items()}
    rates = result.error_rates
    out.update(worlds_sets=result.world_sets,
               worlds_false_max=float(rates.false_rate.max()) if len(rates) else np.nan)
    return out


# A local exponent at or below this counts as "near -1" in the prose on the causal-average worlds.
NEAR_CLAIM = -0.9


def local_numbers(result: Theorem1Result) -> dict:
    """The headline's and the random twin's local exponents at the first pair of lengths from
    ``fit_from`` and at the last, and each causal-average world's at the page's longest pair."""
    out = dict(near_claim=NEAR_CLAIM)
    for key, variant in (("fixed", FIXED), ("twin", TWIN)):
        rows = result.local_exponents.query("variant == @variant and n_low >= @result.fit_from")
        for end, row in (("first", rows.head(1)), ("last", rows.tail(1))):
            for column in ("n_low", "n_high", "exponent", "ci_low", "ci_high"):
                out[f"local_{key}_{end}_{column}"] = (float(row.iloc[0][column]) if len(row)
                                                      else np.nan)
    nmax = int(result.lengths.max())
    for depth, rows in result.depth_worlds.groupby("depth"):
        at = rows[rows.n_high == nmax]
        out[f"depth{depth}_at_nmax"] = float(at.exponent.iloc[0]) if len(at) else np.nan
    return out


def gaussian_numbers(result: Theorem1Result) -> dict:
    """The limit law's rule on this page: directions tested, windows, the power at them and
    the windows that would give the power the rule asks for."""
    evidence = gaussian_evidence(result.gaussianity, FIXED)
    power, needed = (gaussian_power(evidence["windows"], evidence["directions"])
                     if evidence["directions"] else (np.nan, None))
    return dict(gauss_directions=evidence["directions"], gauss_windows=evidence["windows"],
                gauss_rejected=evidence["rejected"],
                gauss_power=power, gauss_windows_needed=np.nan if needed is None else needed,
                gauss_df=GAUSS_ALTERNATIVE_DF, gauss_power_needed=GAUSS_POWER,
                gauss_kurtosis=6 / (GAUSS_ALTERNATIVE_DF - 4))  # a Student t's excess kurtosis


def local_trend_text(numbers: dict, key: str = "fixed") -> str:
    """Whether the local exponent moves between the first and the last pair of lengths, read
    from their intervals: towards -1 when the last interval lies below the first, away from it
    when above, not detectably when they overlap."""
    first = [numbers[f"local_{key}_first_{c}"] for c in ("ci_low", "ci_high")]
    last = [numbers[f"local_{key}_last_{c}"] for c in ("ci_low", "ci_high")]
    if not np.isfinite(first + last).all():
        return "cannot be followed over n here (fewer than two pairs of lengths)"
    if last[1] < first[0]:
        return "falls with n, towards -1"
    if last[0] > first[1]:
        return "rises with n, away from -1"
    return "does not move detectably with n (the two intervals overlap)"


def depth_reach_text(depth_worlds: pd.DataFrame) -> str:
    """For each causal-average world, from which n on its local exponent is near -1."""
    parts = []
    for depth, rows in depth_worlds.groupby("depth"):
        near = rows[rows.exponent <= NEAR_CLAIM]
        where = (f"from n = {int(near.n_high.iloc[0]):,} on" if len(near)
                 else f"not even at n = {int(rows.n_high.max()):,}")
        parts.append(f"{depth} average{'s' if depth > 1 else ''} {where}")
    return ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else "".join(parts)


# The glued names of the design's cells: design_{model}_{text}_{first}_{column}.
DESIGN_KEYS = {**dict(zip(DESIGN_MODELS, ("trained", "twin"))),
               **dict(zip(DESIGN_TEXTS, ("real", "shuffled", "iid"))),
               **dict(zip(FIRST_TOKENS, ("drawn", "fixed")))}
DESIGN_COLUMNS = ("exponent", "ci_low", "ci_high", "local_exponent", "local_ci_low",
                  "local_ci_high", "sink_mass")


def design_numbers(design: pd.DataFrame) -> dict:
    """Every cell of the model x text x first-token design, by glued name."""
    out = {}
    for _, row in design.iterrows():
        name = "_".join(DESIGN_KEYS[row[c]] for c in ("model", "text", "first_token"))
        out.update({f"design_{name}_{c}": float(row[c]) for c in DESIGN_COLUMNS})
    return out


def compared(numbers: dict, a: str, b: str) -> str:
    """How cell a's exponent stands to cell b's, read from their intervals."""
    low_a, high_a = numbers[f"design_{a}_ci_low"], numbers[f"design_{a}_ci_high"]
    low_b, high_b = numbers[f"design_{b}_ci_low"], numbers[f"design_{b}_ci_high"]
    if high_a < low_b:
        return "steeper than"
    if low_a > high_b:
        return "flatter than"
    return "not distinguishable from"


def design_reading(design: pd.DataFrame) -> str:
    """What the design says about the trained model's rate: whether removing the text's order
    (shuffled, i.i.d.) or its first token steepens it, and where the random twin stands."""
    n = design_numbers(design)
    if "design_trained_iid_drawn_exponent" not in n or "design_twin_real_drawn_exponent" not in n:
        return "not measured in this run (text_design=False)"

    def cell(name):
        return (f"{n[f'design_{name}_exponent']:.2f} ({n[f'design_{name}_ci_low']:.2f} to "
                f"{n[f'design_{name}_ci_high']:.2f})")

    text_free = [compared(n, f"trained_{t}_drawn", "trained_real_drawn")
                 for t in ("shuffled", "iid")]
    if all(c == "steeper than" for c in text_free):
        cause = ("removing the text's order steepens the trained model's rate, so the text's "
                 "own dependence (what assumption A3 limits) accounts for at least part of it")
    elif any(c == "steeper than" for c in text_free):
        cause = ("one of the two texts without order steepens the trained model's rate and the "
                 "other does not, so the design does not separate text from model here")
    else:
        cause = ("text without order does not steepen the trained model's rate, so what keeps "
                 "its variance from falling as 1/n at these n lies in the model, not in the "
                 "dependence between the tokens of real text (assumption A3)")
    return (f"The trained model's exponent is {cell('trained_real_drawn')} on real text, "
            f"{cell('trained_shuffled_drawn')} on the same windows shuffled ({text_free[0]} real "
            f"text) and {cell('trained_iid_drawn')} on i.i.d. tokens ({text_free[1]} real text): "
            f"{cause}. Its random twin gives {cell('twin_real_drawn')} on real text "
            f"({compared(n, 'twin_real_drawn', 'trained_real_drawn')} the trained model) and "
            f"{cell('twin_iid_drawn')} on i.i.d. tokens "
            f"({compared(n, 'twin_iid_drawn', 'trained_iid_drawn')} the trained model). With the "
            "first token fixed, the trained "
            f"model on real text gives {cell('trained_real_fixed')} "
            f"({compared(n, 'trained_real_fixed', 'trained_real_drawn')} the first token as "
            f"drawn), with {n['design_trained_real_fixed_sink_mass']:.2f} of its attention on "
            f"that token at the longest n against {n['design_trained_real_drawn_sink_mass']:.2f} "
            f"as drawn, and on i.i.d. tokens {cell('trained_iid_fixed')} "
            f"({compared(n, 'trained_iid_fixed', 'trained_iid_drawn')} the first token as "
            "drawn)")


def texts(result: Theorem1Result) -> dict:
    """The Markdown the page glues besides the verdicts, by name (without the prefix)."""
    return {"precision": precision_text(result.precision),
            "depth_reach": depth_reach_text(result.depth_worlds),
            "local_trend": local_trend_text(local_numbers(result)),
            "design_reading": design_reading(result.design),
            "students": students_text(result.fit_from, result.student_context, result.students),
            "worlds_power": power_text(result.error_rates)}


def precision_text(check: PrecisionCheck | None) -> str:
    """Which forward precision the page used, and why (the float32 check on a subset)."""
    if check is None:
        return ("Every forward pass ran in float32 (`precision` = float32), and every sum of "
                "activations is accumulated in float64.")
    used = check.precision if check.unchanged else "float32"
    return (f"This run asks for **{check.precision}** forward passes. On a quarter of the windows "
            f"its variance exponents differed from float32 ones by at most "
            f"{check.max_difference:.4f}, against a tolerance of {PRECISION_TOLERANCE:g} x the "
            f"median CI half-width ({PRECISION_TOLERANCE * check.median_half_width:.4f}), so this "
            f"page used **{used}**"
            + ("." if check.unchanged else " (the reduced precision would move the statistics).")
            + " Every sum of activations is accumulated in float64 either way.")


def power_text(rates: pd.DataFrame) -> str:
    """What the headline rule can say at this sample: how often it supports the claim where the
    claim holds exactly (its power), and how often it contradicts it where the variance falls
    as n^-0.9, just outside the margin."""
    if rates.empty:
        return "The simulated worlds were not run (`world_sets` = 0)."
    at = rates.set_index(["rule", "world"])
    power, near_miss = at.loc[("rate", "holds"), "supported"], at.loc[("rate", "near miss"), "contradicted"]
    text = (f"Where the claim holds exactly, the headline rule says *supported* in {power:.0%} of "
            f"the simulated data sets (its power at this sample); where the variance falls as "
            f"n to the power -0.9 it says *contradicted* in {near_miss:.0%}.")  # no math in glue
    if power < 0.05:
        text += (" At this sample the rule can show that the claim fails by a wide margin, but "
                 "not that it holds: that needs an interval narrower than the margin, from more "
                 "windows or a longer range of contexts (the gpu profile).")
    return text


def students_text(fit_from: int, context: int | None, medians: pd.DataFrame) -> str:
    """The students' median attention exponents in a sentence; ``context`` is None when the
    students were not run, and ``medians`` empty when their context was too short to fit."""
    if context is None:
        return ("Not run in this profile: pass `-p student_family=true` (on in the `smoke` and "
                "`gpu` profiles).")
    if medians.empty:
        return (f"Not measured: the students' context ({context} tokens) leaves fewer than two "
                f"lengths n >= `fit_from` ({fit_from}), and fitting shorter contexts would "
                "read the pre-asymptotic range this chapter excludes everywhere else.")
    attention = medians.query("kind == 'attention'")
    within = sum(covers_claim(lo, hi) for lo, hi in zip(attention.ci_low, attention.ci_high))
    return (f"Across {medians.variant.nunique()} students ({', '.join(medians.variant.unique())}; "
            f"context {context}, fits from n = {fit_from} on), the median attention "
            f"exponents run from {attention.exponent.min():.2f} to {attention.exponent.max():.2f}, "
            f"and for {within} of them the interval lies within {CLAIM_MARGIN:g} of −1.")
