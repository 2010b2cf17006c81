"""The numbers Theorem 3's prose glues, assembled from its result (keys without the ``t3_``)."""

from __future__ import annotations

import numpy as np

from ... import verdicts
from ...estimators.intervals import between_run_df, runs_per_cell
from .estimators import CHECK_CLASSES, CHECK_DRAWS, CHECK_PER_CLASS, run_cells
from .rules import SNR_CLAIM_MARGIN


def numbers(result) -> dict:
    """Every number the prose glues: the estimator check, the grid's SNR, the exponents in D and
    P with both intervals, and the exponent in n (read from the context verdict)."""
    e = result.exponents.set_index("exponent")
    g = result.grid
    out = dict(
        check_classes=CHECK_CLASSES, check_per_class=CHECK_PER_CLASS, check_draws=CHECK_DRAWS,
        check_bias_max=result.check["corrected bias"].abs().max(),
        check_plugin_bias=result.check["plug-in bias"].iloc[0],
        min_position=result.min_position, snr_min=g.snr.min(), snr_max=g.snr.max(),
        loss_corr=np.corrcoef(np.log(g.snr.clip(lower=1e-6)), g.loss)[0, 1],
        untrained_median=result.untrained.snr.median(), sizes=len(result.per_size),
        sizes_supported=int((result.per_size.verdict == verdicts.SUPPORTED).sum()),
        seeds=runs_per_cell(run_cells(g)), n_boot=result.n_boot,
        df=between_run_df(run_cells(g)), margin=SNR_CLAIM_MARGIN, classes=result.snr_classes)
    for key, name in (("d", "data"), ("p", "size")):
        row = e.loc[name]
        out.update({f"{key}_exponent": row.estimate, f"{key}_ci_low": row.ci_low,
                    f"{key}_ci_high": row.ci_high, f"{key}_seq_low": row.sequences_only_ci_low,
                    f"{key}_seq_high": row.sequences_only_ci_high})
    for key, name in (("dw", "data_whitened"), ("pw", "size_whitened")):
        row = e.loc[name]
        out.update({f"{key}_exponent": row.estimate, f"{key}_ci_low": row.ci_low,
                    f"{key}_ci_high": row.ci_high})
    ceiling, token = result.references.iloc[0], result.references.iloc[1]
    u = result.untrained
    out.update(ceiling=ceiling.snr_white, ceiling_ci_low=ceiling.ci_low,
               ceiling_ci_high=ceiling.ci_high, ceiling_dims=int(ceiling.dims),
               ceiling_classes=int(ceiling.classes), token_white=token.snr_white,
               token_fraction=token.snr_white / ceiling.snr_white,
               white_min=g.snr_white.min(), white_max=g.snr_white.max(),
               fraction_min=g.fraction.min(), fraction_max=g.fraction.max(),
               largest_over_token=g.snr_white.max() / token.snr_white,
               untrained_white_min=u.snr_white.min(), untrained_white_max=u.snr_white.max(),
               untrained_width_min=int(u.width.min()), untrained_width_max=int(u.width.max()),
               untrained_per_width_min=(u.snr_white / u.width).min(),
               untrained_per_width_max=(u.snr_white / u.width).max(),
               untrained_trace_min=u.snr.min(), untrained_trace_max=u.snr.max(),
               sizes_whitened_supported=int((result.per_size.whitened_verdict
                                             == verdicts.SUPPORTED).sum()),
               whitened_exponent_min=result.per_size.whitened_exponent.min(),
               whitened_exponent_max=result.per_size.whitened_exponent.max(),
               untrained_pw_exponent=np.polyfit(np.log(u.P), np.log(u.snr_white), 1)[0]
               if len(u) > 1 and (u.snr_white > 0).all() else np.nan)
    c = result.verdict("context")
    out.update(n_exponent=c.effect, n_ci_low=c.ci_low, n_ci_high=c.ci_high)
    return out


def size_floor_reading(numbers: dict) -> str:
    """How much of the whitened SNR's growth with size the untrained students already show:
    their exponent in P beside the trained one."""
    untrained, trained = numbers["untrained_pw_exponent"], numbers["pw_exponent"]
    if not (np.isfinite(untrained) and np.isfinite(trained)) or trained <= 0:
        return "the untrained and trained exponents in P cannot be set side by side here."
    if untrained >= trained / 2:
        return ("on this scale, most of the growth with size is there before any data is "
                "seen: it is the width's capacity more than what training adds to it.")
    return "on this scale, most of the growth with size comes with training."
