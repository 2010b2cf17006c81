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
    c = result.verdict("context")
    out.update(n_exponent=c.effect, n_ci_low=c.ci_low, n_ci_high=c.ci_high)
    return out
