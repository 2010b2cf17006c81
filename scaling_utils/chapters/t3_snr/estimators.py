"""What Theorem 3 measures: each run's SNR, the exponents of SNR in D, P and n with intervals
that hold the spread between training runs, and the estimator's bias on known mixtures.

Every run of the student grid is measured on the same held-out sequences, and its SNR bootstrap
resamples them with the same seed, so replicate b resamples the same sequences for every run.
The exponents' intervals come from a hierarchical bootstrap: the runs of each (P, D) cell are
resampled first, each drawn run entering with its SNR under replicate b of the sequences
(:func:`snr_exponent` with ``cell``).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Sequence

import numpy as np
import pandas as pd

from ...cache import array_digest, cached
from ...capture import final_representations
from ...estimators.intervals import (between_run_df, hierarchical_bootstrap, runs_per_cell,
                                     stretched_interval)
from ...estimators.power_laws import PowerLawFit
from ...estimators.snr import (WHITENED_VERSION, SNRResult, WhitenedSNR, plug_in_snr, snr,
                              whitened_snr)
from ...train import TrainResult, load_student, weights_digest

SNR_VERSION = 3  # bump when a change here changes the tables
HIERARCHICAL = "run, then sequence"  # the bootstrap unit of an exponent over training runs
ONE_RUN = "run: one per cell, no spread to resample"
# The estimator check: Gaussian mixtures of CHECK_CLASSES classes of CHECK_PER_CLASS samples in
# CHECK_DIM dimensions, CHECK_DRAWS draws at each known SNR (enough to see a 1 % bias).
CHECK_SNRS = (0.02, 0.1, 0.5)
CHECK_CLASSES, CHECK_DIM, CHECK_PER_CLASS, CHECK_DRAWS = 8, 32, 50, 100
CONTEXT_COLUMNS = ["n", "n_low", "n_high", "windows", "samples", "classes", "snr", "ci_low",
                   "ci_high", "estimate"]


# --------------------------------------------------------------------------- per-run SNR

def student_snr(model, source, tokens: np.ndarray, min_position: int = 8,
                n_boot: int = 200, seed: int = 0, states: np.ndarray | None = None) -> SNRResult:
    """SNR of a student's final representation at positions >= ``min_position`` with respect to
    the source's most probable hidden state given the prefix (``states``, computed from the
    source when not given: the same for every student of a grid); the bootstrap resamples
    sequences (with the same seed, replicates of different students resample the same ones)."""
    states = source.filtered_states(tokens) if states is None else states
    return snr(*at_positions(final_representations(model, tokens, batch_size=256), states,
                             min_position), n_boot=n_boot, seed=seed)


def at_positions(features: np.ndarray, labels: np.ndarray, min_position: int):
    """Features (sequences x length x width) and labels (sequences x length) at positions >=
    ``min_position``, as samples x width and samples, with each sample's sequence (the unit
    the bootstrap resamples)."""
    x = features[:, min_position:]
    return (x.reshape(-1, x.shape[-1]), labels[:, min_position:].ravel(),
            np.repeat(np.arange(len(x)), x.shape[1]))


# --------------------------------------------------------------------------- whitened SNR

def whitened_student_snr(model, tokens: np.ndarray, states: np.ndarray, min_position: int = 8,
                         n_boot: int = 200, seed: int = 0) -> WhitenedSNR:
    """The whitened SNR (:func:`~scaling_utils.estimators.snr.whitened_snr`) of a student's
    final representation against the hidden state that emitted each token (``states``, drawn
    with the tokens): a scale no invertible linear map of the features changes, and which
    the exact belief state bounds (:func:`belief_ceiling`)."""
    return whitened_snr(*at_positions(final_representations(model, tokens, batch_size=256),
                                      states, min_position), n_boot=n_boot, seed=seed)


def belief_ceiling(source, tokens: np.ndarray, states: np.ndarray, min_position: int = 8,
                   n_boot: int = 200, seed: int = 0) -> WhitenedSNR:
    """The largest whitened SNR against the hidden state that any representation of the prefix
    can have: that of the exact belief state b_t = P(z_t | x_1..x_t).  J = sum_i rho_i^2 /
    (1 - rho_i^2) over the canonical correlations rho_i of the features with the one-hot state;
    those of any function of the prefix are at most those of all such functions, which are
    the belief's, since E[onehot(z_t) | prefix] = b_t."""
    return whitened_snr(*at_positions(source.beliefs(tokens), states, min_position),
                        n_boot=n_boot, seed=seed)


def token_reference(tokens: np.ndarray, states: np.ndarray, n_symbols: int,
                    min_position: int = 8, n_boot: int = 200, seed: int = 0) -> WhitenedSNR:
    """The whitened SNR of the current token alone (one-hot) against the hidden state: what a
    representation that remembers nothing of the context can reach."""
    return whitened_snr(*at_positions(np.eye(n_symbols)[tokens], states, min_position),
                        n_boot=n_boot, seed=seed)


def whitened_grid(results: Sequence[TrainResult], tokens: np.ndarray, states: np.ndarray,
                  min_position: int = 8, n_boot: int = 200, seed: int = 0,
                  device=None) -> list[WhitenedSNR]:
    """The whitened SNR of every fresh-data run of a training grid, in the order of
    :func:`snr_grid_table`'s rows (cached by the run's weights, as there), with aligned
    replicates: every run resamples the same sequences."""
    return [cached("student_whitened_snr",
                   {"train": asdict(r.config), "weights": weights_digest(r),
                    "tokens": array_digest(tokens, states), "min_position": min_position,
                    "n_boot": n_boot, "seed": seed, "version": SNR_VERSION,
                    "whitened": WHITENED_VERSION},
                   lambda r=r: whitened_student_snr(load_student(r, device), tokens, states,
                                                    min_position, n_boot, seed))
            for r in results if r.config.data_mode == "fresh"]


def snr_grid_table(results: Sequence[TrainResult], source, tokens: np.ndarray,
                   min_position: int = 8, n_boot: int = 200, seed: int = 0,
                   device=None) -> tuple[pd.DataFrame, list[SNRResult]]:
    """SNR of every fresh-data run of a training grid: one row per run (P, D, seed, snr, the
    interval over sequences), and the SNRResults (with aligned bootstrap replicates) in the
    same order.  Cached by the run's weights, so runs trained with other thread counts are
    never mixed up."""
    rows, estimates = [], []
    states = []  # the filtered states of the tokens, computed once, when a run needs them

    def labels():
        if not states:
            states.append(source.filtered_states(tokens))
        return states[0]

    for r in results:
        if r.config.data_mode != "fresh":
            continue
        est = cached("student_snr", {"train": asdict(r.config), "weights": weights_digest(r),
                                     "source": source.digest(), "tokens": array_digest(tokens),
                                     "min_position": min_position, "n_boot": n_boot,
                                     "seed": seed, "version": SNR_VERSION},
                     lambda r=r: student_snr(load_student(r, device), source, tokens, min_position,
                                             n_boot, seed, labels()))
        estimates.append(est)
        rows.append(dict(P=r.n_parameters, D=r.config.D, seed=r.config.seed,
                         loss=r.final_loss, snr=est.snr, ci_low=est.ci_low,
                         ci_high=est.ci_high, signal=est.signal_power, noise=est.noise_power))
    return pd.DataFrame(rows), estimates


def run_cells(grid: pd.DataFrame) -> pd.Series:
    """The (P, D) cell of every run, as ``"P/D"``: the unit the hierarchical bootstrap resamples
    runs within."""
    return grid.P.astype(str) + "/" + grid.D.astype(str)


# --------------------------------------------------------------------------- exponents

def within_slope(log_x: np.ndarray, log_y: np.ndarray, by: np.ndarray) -> np.ndarray:
    """Least-squares slope of log_y on log_x with one intercept per level of ``by`` (the slope
    within levels); ``log_y`` may hold many data sets (rows), one slope per row."""
    _, level = np.unique(by, return_inverse=True)
    member = np.zeros((len(level), level.max() + 1))
    member[np.arange(len(level)), level] = 1.0
    share = member / member.sum(0)
    lx = log_x - (log_x @ share) @ member.T
    ly = log_y - (log_y @ share) @ member.T
    return ly @ lx / (lx @ lx)


def snr_exponent(x, estimates: Sequence[SNRResult], by=None, cell=None, seed: int = 0,
                 ci: float = 0.95, df: int | None = None) -> PowerLawFit:
    """Slope b of log SNR = a_g + b log x (one intercept per level of ``by``, e.g. model size,
    so b is the within-size slope).  The CI refits every bootstrap replicate, which must be
    aligned across estimates (same groups, same seed).  With ``cell`` (the (P, D) point of each
    run) the bootstrap is hierarchical: runs resampled within cells, then sequences
    (:func:`~scaling_utils.estimators.intervals.hierarchical_bootstrap`), and the interval is
    stretched for the few degrees of freedom of the spread between runs
    (:func:`~scaling_utils.estimators.intervals.stretched_interval`); without it only
    sequences (or windows) are resampled, and ``df`` (the number of resampled units less one)
    stretches the interval for a bootstrap over few units.  Replicates with an SNR <= 0 are
    dropped."""
    x = np.asarray(x, float)
    by = np.zeros(len(x)) if by is None else np.asarray(by)
    if len(np.unique(x)) < 2:
        raise ValueError("need SNR at two or more distinct x values.")
    point = np.array([e.snr for e in estimates])
    if (point <= 0).any():
        return PowerLawFit(np.nan, np.nan, np.nan, np.nan, x=x, y=point)
    log_x, log_y = np.log(x), np.log(point)
    b = float(within_slope(log_x, log_y, by))
    intercept = float(log_y.mean() - b * log_x.mean())
    boot = np.stack([e.bootstrap for e in estimates]) if estimates[0].bootstrap.size else None
    lo = hi = np.nan
    n_reps, unit = 0, "sequence"
    if boot is not None:
        keep = (boot > 0).all(0)  # replicates x runs below
        log_boot = np.log(np.where(boot > 0, boot, 1.0))[:, keep]
        if cell is not None:
            unit = HIERARCHICAL
            if runs_per_cell(cell) < 2:  # no spread between runs to resample
                return PowerLawFit(b, intercept, np.nan, np.nan, x=x, y=point,
                                   bootstrap_unit=ONE_RUN)
            log_boot = hierarchical_bootstrap(log_y, cell, log_boot.shape[1], seed,
                                              replicates=log_boot).T
        if log_boot.shape[1]:
            slopes = within_slope(log_x, log_boot.T, by)
            lo, hi = stretched_interval(slopes, between_run_df(cell) if cell is not None else df,
                                        ci)
            n_reps = len(slopes)
    return PowerLawFit(b, intercept, float(lo), float(hi), x=x, y=point, n_boot=n_reps,
                       bootstrap_unit=unit)


def grid_exponents(grid: pd.DataFrame, estimates: Sequence[SNRResult], seed: int = 0) -> dict:
    """The exponent of SNR in D within each size, and in P within each D, both with the
    hierarchical interval."""
    cell = run_cells(grid)
    return {"data": snr_exponent(grid.D, estimates, by=grid.P, cell=cell, seed=seed),
            "size": snr_exponent(grid.P, estimates, by=grid.D, cell=cell, seed=seed)}


def sequence_exponents(grid: pd.DataFrame, estimates: Sequence[SNRResult]) -> dict:
    """The same exponents with intervals over resampled sequences alone (no runs resampled):
    how precisely each run's SNR is known, not how much it changes between seeds."""
    return {"data": snr_exponent(grid.D, estimates, by=grid.P),
            "size": snr_exponent(grid.P, estimates, by=grid.D)}


def exponent_table(pooled: dict, sequences: dict) -> pd.DataFrame:
    """One row per exponent: the estimate, its hierarchical interval and the sequences-only one."""
    return pd.DataFrame([dict(exponent=name, estimate=pooled[name].exponent,
                              ci_low=pooled[name].ci_low, ci_high=pooled[name].ci_high,
                              sequences_only_ci_low=sequences[name].ci_low,
                              sequences_only_ci_high=sequences[name].ci_high,
                              replicates=pooled[name].n_boot) for name in pooled])


def per_seed_exponents(grid: pd.DataFrame, estimates: Sequence[SNRResult],
                       pooled: dict) -> pd.DataFrame:
    """The exponents in D and in P fitted to each training seed's runs alone, beside the pooled
    value and its hierarchical interval."""
    columns = {}
    for s in sorted(grid.seed.unique()):
        rows = np.flatnonzero(grid.seed == s)
        one, est = grid.iloc[rows], [estimates[i] for i in rows]
        columns[f"seed {s}"] = [snr_exponent(one.D, est, by=one.P).exponent,
                                snr_exponent(one.P, est, by=one.D).exponent]
    table = pd.DataFrame({"quantity": ["exponent in D (within size)", "exponent in P (within D)"],
                          **columns})
    for col, part in (("pooled", "exponent"), ("ci_low", "ci_low"), ("ci_high", "ci_high")):
        table[col] = [getattr(pooled["data"], part), getattr(pooled["size"], part)]
    return table


# --------------------------------------------------------------------------- context length

def context_bins(max_length: int) -> np.ndarray:
    """The edges of the context-length bins, up to ``max_length`` tokens of context."""
    return np.unique(np.geomspace(4, max_length + 1, 7).astype(int))


def context_snr_table(model, windows: np.ndarray, bins: Sequence[int], n_classes: int = 16,
                      n_boot: int = 200, seed: int = 0, batch_size: int = 8) -> pd.DataFrame:
    """SNR of a pretrained model's final representation at position t with respect to the next
    token, for positions binned by context length n = t + 1 in [bins[i], bins[i+1]).  Only
    positions whose next token is one of the ``n_classes`` most frequent are used; the
    bootstrap resamples windows, with the same seed in every bin.  Bins in which every window
    has a labelled position resample the same windows in each replicate (aligned); a bin that
    misses some windows draws its own, which leaves the exponent's interval wider than it needs
    to be (the bins' errors are positively correlated, and a slope is more precise than
    independent draws make it), never narrower."""
    bins = np.asarray(bins)
    features = final_representations(model, windows, batch_size)  # windows x length x width
    nxt = windows[:, 1:]
    values, counts = np.unique(nxt, return_counts=True)
    common = values[np.argsort(counts, kind="stable")[::-1][:n_classes]]
    rows = []
    for lo, hi in zip(bins[:-1], bins[1:]):
        t = np.arange(lo - 1, min(hi - 1, nxt.shape[1]))  # position t sees t + 1 tokens
        if not len(t):
            continue
        labels = nxt[:, t]
        keep = np.isin(labels, common)
        w, p = np.nonzero(keep)
        try:
            est = snr(features[w, t[p]], labels[keep], w, n_boot=n_boot, seed=seed)
        except ValueError:  # too few labelled positions in this bin
            continue
        rows.append(dict(n=float(np.sqrt(lo * (t[-1] + 1))), n_low=int(lo), n_high=int(t[-1] + 1),
                         windows=len(np.unique(w)), samples=est.n_samples, classes=est.n_classes,
                         snr=est.snr, ci_low=est.ci_low, ci_high=est.ci_high, estimate=est))
    return pd.DataFrame(rows)


def context_table(cfg) -> tuple[pd.DataFrame, str]:
    """SNR against context length in the pretrained model of ``cfg`` (cached by the model's
    weights, the windows and the settings), and the model's name."""
    from ...data import load_corpus, random_windows, tokenize
    from ...models import load_model

    lm = load_model(cfg.model, device=cfg.device)
    lm.check_context(cfg.max_length)
    windows = random_windows(tokenize(load_corpus(cfg.corpus), lm.tokenizer), cfg.n_windows,
                             cfg.max_length, cfg.seed)
    bins = context_bins(cfg.max_length)
    key = {"model": lm.digest or lm.name, "windows": array_digest(windows),
           "bins": bins.tolist(), "classes": cfg.snr_classes, "n_boot": cfg.n_boot,
           "seed": cfg.seed, "version": SNR_VERSION}
    # the cache keeps the estimator's old name, so tables measured before stay valid
    table = cached("snr_by_context", key, lambda: context_snr_table(
        lm.model, windows, bins, cfg.snr_classes, cfg.n_boot, cfg.seed))
    return table, lm.name


# --------------------------------------------------------------------------- the estimator

def estimator_check(seed: int, n_classes: int = CHECK_CLASSES, dim: int = CHECK_DIM,
                    per_class: int = CHECK_PER_CLASS, draws: int = CHECK_DRAWS) -> pd.DataFrame:
    """Mean corrected and plug-in SNR over ``draws`` Gaussian mixtures at three known SNRs, and
    their relative biases."""
    from ...synthetic import gaussian_mixture, mixture_means

    rng = np.random.default_rng(seed)
    rows = []
    for true_snr in CHECK_SNRS:
        means = mixture_means(n_classes, dim, true_snr, rng)
        for _ in range(draws):
            x, labels = gaussian_mixture(means, per_class, rng)
            rows.append(dict(true=true_snr, corrected=snr(x, labels, n_boot=0).snr,
                             plug_in=plug_in_snr(x, labels)))
    check = pd.DataFrame(rows).groupby("true").mean().reset_index()
    check["corrected bias"] = check.corrected / check.true - 1
    check["plug-in bias"] = check.plug_in / check.true - 1
    return check
