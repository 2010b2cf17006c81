"""Theorem 3: how the signal-to-noise ratio of representations grows with data D, size P and
context n.  Tables are tidy DataFrames for plotting and glueing; the estimator ``snr`` lives in
``stats``.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Sequence

import numpy as np
import pandas as pd

from .cache import array_digest, cached
from .capture import final_representations
from .stats import PowerLawFit, SNRResult, compare_exponent, snr
from .train import TrainResult, load_student

CLAIMED_D_EXPONENT = 1.0  # Theorem 3: SNR proportional to D
# Slopes of log SNR are read against the claim with this margin (an equivalence reading, as
# for Theorem 1); the estimator's own bias is below 1 % (tests), so the margin is generous.
SNR_CLAIM_MARGIN = 0.1
SNR_VERSION = 1  # bump when a change here changes the tables


def student_snr(model, source, tokens: np.ndarray, min_position: int = 8,
                n_boot: int = 200, seed: int = 0) -> SNRResult:
    """SNR of a student's final representation at positions >= ``min_position`` with respect to
    the source's most probable hidden state given the prefix; the bootstrap resamples
    sequences (with the same seed, replicates of different students resample the same ones)."""
    features = final_representations(model, tokens, batch_size=256)[:, min_position:]
    labels = source.filtered_states(tokens)[:, min_position:]
    groups = np.repeat(np.arange(len(tokens)), features.shape[1])
    return snr(features.reshape(-1, features.shape[-1]), labels.ravel(), groups,
               n_boot=n_boot, seed=seed)


def snr_grid_table(results: Sequence[TrainResult], source, tokens: np.ndarray,
                   min_position: int = 8, n_boot: int = 200, seed: int = 0,
                   device=None) -> tuple[pd.DataFrame, list[SNRResult]]:
    """SNR of every fresh-data run of a training grid: one row per run (P, D, seed, snr, CI),
    and the SNRResults (with aligned bootstrap replicates) in the same order."""
    rows, estimates = [], []
    for r in results:
        if r.config.data_mode != "fresh":
            continue
        est = cached("student_snr", {"train": asdict(r.config), "source": source.digest(),
                                     "tokens": array_digest(tokens), "min_position": min_position,
                                     "n_boot": n_boot, "seed": seed, "version": SNR_VERSION},
                     lambda r=r: student_snr(load_student(r, device), source, tokens, min_position,
                                             n_boot, seed))
        estimates.append(est)
        rows.append(dict(P=r.n_parameters, D=r.config.tokens, seed=r.config.seed,
                         loss=r.final_loss, snr=est.snr, snr_low=est.ci_low,
                         snr_high=est.ci_high, signal=est.signal_power, noise=est.noise_power))
    return pd.DataFrame(rows), estimates


def snr_exponent(x, estimates: Sequence[SNRResult], by=None, ci: float = 0.95) -> PowerLawFit:
    """Slope b of log SNR = a_g + b log x (one intercept per level of ``by``, e.g. model size,
    so b is the within-size slope).  The CI refits every bootstrap replicate, which must be
    aligned across estimates (same groups, same seed); replicates with SNR <= 0 are dropped."""
    x = np.asarray(x, float)
    by = np.zeros(len(x)) if by is None else np.asarray(by)
    if len(np.unique(x)) < 2:
        raise ValueError("need SNR at two or more distinct x values.")
    point = np.array([e.snr for e in estimates])
    boot = np.stack([e.bootstrap for e in estimates], 1) if estimates[0].bootstrap.size else \
        np.empty((0, len(x)))

    def slope(log_y: np.ndarray) -> tuple[float, float]:
        lx, ly = np.log(x).copy(), log_y.copy()
        for level in np.unique(by):  # within-level centring = one intercept per level
            m = by == level
            lx[m] -= lx[m].mean()
            ly[m] -= ly[m].mean()
        b = float((lx * ly).sum() / (lx * lx).sum())
        return b, float(np.mean(np.log(point[point > 0])) - b * np.mean(np.log(x)))

    if (point <= 0).any():
        return PowerLawFit(np.nan, np.nan, np.nan, np.nan, x=x, y=point)
    b, intercept = slope(np.log(point))
    reps = [slope(np.log(row))[0] for row in boot if (row > 0).all()]
    lo, hi = np.quantile(reps, [(1 - ci) / 2, (1 + ci) / 2]) if reps else (np.nan, np.nan)
    return PowerLawFit(b, intercept, float(lo), float(hi), x=x, y=point, n_boot=len(reps),
                       bootstrap_unit="sequence")


def snr_verdict(fit: PowerLawFit, claimed: float = CLAIMED_D_EXPONENT) -> str:
    """Plain-words reading of an SNR exponent's CI against the claimed proportionality."""
    reading = compare_exponent(fit.ci_low, fit.ci_high, claimed, SNR_CLAIM_MARGIN)
    if reading == "below":
        if fit.ci_high <= 0:
            reading = "does not grow"
        elif fit.ci_low <= 0:
            reading = "slower than claimed (growth not resolved: the CI includes 0)"
        else:
            reading = "grows, but slower than claimed"
    return {"consistent": "consistent with the claim", "above": "grows faster than claimed",
            "inconclusive": "inconclusive (CI too wide)"}.get(reading, reading)


def snr_by_context(model, windows: np.ndarray, bins: Sequence[int], n_classes: int = 16,
                   n_boot: int = 200, seed: int = 0, batch_size: int = 8) -> pd.DataFrame:
    """SNR of a pretrained model's final representation at position t with respect to the next
    token, for positions binned by context length n = t + 1 in [bins[i], bins[i+1]).  Only
    positions whose next token is one of the ``n_classes`` most frequent are used; the
    bootstrap resamples windows."""
    bins = np.asarray(bins)
    features = final_representations(model, windows, batch_size)  # windows x length x width
    nxt = windows[:, 1:]
    values, counts = np.unique(nxt, return_counts=True)
    common = values[np.argsort(counts)[::-1][:n_classes]]
    rows = []
    for lo, hi in zip(bins[:-1], bins[1:]):
        t = np.arange(lo - 1, min(hi - 1, nxt.shape[1]))  # position t sees t + 1 tokens
        labels = nxt[:, t]
        keep = np.isin(labels, common)
        w, p = np.nonzero(keep)
        try:
            est = snr(features[w, t[p]], labels[keep], w, n_boot=n_boot, seed=seed)
        except ValueError:  # too few labelled positions in this bin
            continue
        rows.append(dict(n=float(np.sqrt(lo * (hi - 1))), n_low=int(lo), n_high=int(hi - 1),
                         samples=est.n_samples, classes=est.n_classes, snr=est.snr,
                         snr_low=est.ci_low, snr_high=est.ci_high, estimate=est))
    return pd.DataFrame(rows)
