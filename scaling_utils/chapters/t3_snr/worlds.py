"""Theorem 3's simulated grids and context bins, on which its rules' false-verdict rates are
measured: log SNR laws with the run and sequence noise measured on real runs."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ...estimators.snr import SNRResult
from ...train import student_parameters
from ...verdicts import Verdict
from ...worlds import FAILS, HOLDS, World, mix_shared
from .estimators import context_bins, run_cells, snr_exponent
from .rules import D_READINGS, SNR_CLAIM_MARGIN, decide_context, decide_data, decide_size

WORLDS_VERSION = 3

# What the simulated grids are made of, measured once on the cpu grid (profile seed 0, training
# seeds 0-2, by :func:`noise_sizes`): the spread of a run's log SNR between the seeds of one
# cell, the spread of its replicates over resampled sequences and their correlation between
# runs (the same sequences), and the same over resampled windows for the pretrained model's bins.
WORLD_LOG_SNR = 0.0  # log SNR at the smallest P and D
LOG_SNR_RUN_SD = 0.031
SEQUENCE_SD = 0.019
SEQUENCE_SHARED = 0.83
# A context bin's log SNR varies over resampled windows by WINDOW_SD x max(1, WINDOW_N / n):
# bins of short contexts hold few positions (0.83 at n = 5, 0.39 at 11, 0.22 at 22, then about
# 0.15 from n = 45 on, SmolLM2 on 48 Wikipedia windows); bins that resample the same windows
# share about half of that variance.
WINDOW_SD = 0.15
WINDOW_N = 32
WINDOW_SHARED = 0.5


def noise_sizes(grid: pd.DataFrame, estimates: Sequence[SNRResult],
                context: pd.DataFrame | None = None) -> dict:
    """The values the simulated worlds are made of, measured on real runs: the pooled SD of log
    SNR between the seeds of a cell, the SD of each run's log replicates over resampled
    sequences and their mean correlation between runs, and the same over windows for the
    context bins (``context`` with its ``estimate`` column)."""
    log_snr = np.log(grid.snr.clip(lower=1e-9))
    cell_var = log_snr.groupby([grid.P, grid.D]).var()
    reps = np.log(np.stack([e.bootstrap for e in estimates]).clip(min=1e-9))
    corr = np.corrcoef(reps)
    out = dict(LOG_SNR_RUN_SD=float(np.sqrt(cell_var.mean())),
               SEQUENCE_SD=float(reps.std(1).mean()),
               SEQUENCE_SHARED=float(corr[np.triu_indices_from(corr, 1)].mean()))
    if context is not None and len(context) > 1:
        boot = np.stack([e.bootstrap for e in context.estimate])
        boot = np.log(boot[:, (boot > 0).all(0)])
        aligned = (context.windows == context.windows.max()).to_numpy()
        corr = np.corrcoef(boot[aligned])
        out.update(window_sd_by_bin=boot.std(1).round(3).tolist(),
                   WINDOW_SHARED=float(corr[np.triu_indices_from(corr, 1)].mean()))
    return out


def _estimates(log_point: np.ndarray, log_reps: np.ndarray) -> list[SNRResult]:
    """SNR estimates holding only a point value and its bootstrap replicates."""
    return [SNRResult(float(np.exp(v)), np.nan, np.nan, np.nan, np.nan, 0, 0, np.exp(r))
            for v, r in zip(log_point, log_reps)]


def simulate_grid(values: Mapping, rng: np.random.Generator, d_exponent: float = 1.0,
                  p_exponent: float = 0.2, noise: float = 1.0, seed_slope: float = 0.0,
                  d_spread: float = 0.0):
    """Per-run SNR estimates (with aligned sequence replicates) for the profile's grid under
    log SNR = c + d log D + p_exponent log P + run noise (``noise`` x LOG_SNR_RUN_SD), where
    the exponent d of a data set is drawn uniformly from ``d_exponent`` ± ``d_spread`` and each
    training seed adds its own slope in log D, normal with SD ``seed_slope`` (runs of one seed
    that differ systematically from the others')."""
    P = np.array([student_parameters(s) for s in values["sizes"]], float)
    D = np.array(values["D"], float)
    n_seeds, n_boot = values["n_seeds"], values["n_boot"]
    P, D = (np.repeat(a.ravel(), n_seeds) for a in np.meshgrid(P, D, indexing="ij"))
    d = d_exponent + d_spread * rng.uniform(-1, 1) if d_spread else d_exponent
    own_slope = (seed_slope * rng.standard_normal(n_seeds)[np.arange(len(P)) % n_seeds]
                 if seed_slope else 0.0)  # drawn only when asked: other worlds keep their draws
    truth = (WORLD_LOG_SNR + (d + own_slope) * np.log(D / D.min())
             + p_exponent * np.log(P / P.min())
             + noise * LOG_SNR_RUN_SD * rng.standard_normal(len(P)))

    def sequence_error(size):  # the same sequences for every run: a shared part (drawn first)
        return SEQUENCE_SD * mix_shared(rng.standard_normal(size[1:]), rng.standard_normal(size),
                                        SEQUENCE_SHARED)

    log_snr = truth + sequence_error((len(P),))
    log_reps = log_snr[:, None] + sequence_error((len(P), n_boot))
    grid = pd.DataFrame(dict(P=P, D=D))
    return grid, _estimates(log_snr, log_reps), run_cells(grid)


def simulate_context(values: Mapping, rng: np.random.Generator, n_exponent: float = 1.0,
                     noise: float = 1.0):
    """Per-bin SNR estimates of one model (aligned window replicates) at the profile's bins."""
    bins = context_bins(values["max_length"])
    n = np.sqrt(bins[:-1] * (bins[1:] - 1))
    n_boot = values["n_boot"]
    truth = n_exponent * np.log(n / n.min())

    sd = noise * WINDOW_SD * np.maximum(1.0, WINDOW_N / n)

    def window_error(size):  # the same windows in every bin: a shared part (drawn first)
        return (sd * mix_shared(rng.standard_normal(size[1:]), rng.standard_normal(size),
                                WINDOW_SHARED).T).T

    log_point = truth + window_error((len(n),))
    log_reps = log_point[:, None] + window_error((len(n), n_boot))
    return n, _estimates(log_point, log_reps)


def _world(values: Mapping, key: str, name: str, truth: str, description: str, **law) -> World:
    def simulate(seed: int) -> Verdict:
        rng = np.random.default_rng(seed)
        if key == "context":
            n, estimates = simulate_context(values, rng, **law)
            return decide_context(snr_exponent(n, estimates, df=values["n_windows"] - 1))
        grid, estimates, cell = simulate_grid(values, rng, **law)
        if key in D_READINGS:
            return decide_data(snr_exponent(grid.D, estimates, by=grid.P, cell=cell, seed=seed),
                               key)
        return decide_size(snr_exponent(grid.P, estimates, by=grid.D, cell=cell, seed=seed))

    return World(key, name, truth, description, simulate)


def worlds(values: Mapping) -> list[World]:
    """Simulated grids (and context bins) at the profile's sizes, data sizes, seeds and
    bootstrap replicates, where each rule's claim holds, fails, or is too weak to see."""
    m = SNR_CLAIM_MARGIN
    return [
        _world(values, "data", "holds", HOLDS, "SNR ~ D", d_exponent=1.0),
        _world(values, "data", "fails", FAILS, f"SNR ~ D^{1 - 1.5 * m:g}", d_exponent=1 - 1.5 * m),
        _world(values, "data", "underpowered", HOLDS, "SNR ~ D^0.95, 10x the run noise",
               d_exponent=0.95, noise=10.0),
        # as the real runs can be: exponents anywhere in the band, and seeds whose runs differ
        # systematically (each seed its own slope in log D, SD half the margin)
        _world(values, "data", "band-wide", HOLDS,
               f"SNR ~ D^k, k uniform in 1 ± {m:g}", d_spread=m),
        _world(values, "data", "seeds differ", HOLDS,
               f"SNR ~ D, each seed's slope off by SD {m / 2:g}", seed_slope=m / 2),
        *(_world(values, key, name, truth, f"SNR ~ D^{d:g}", d_exponent=d)
          for key, k in D_READINGS.items() if key != "data"
          for name, truth, d in (("holds", HOLDS, k), ("fails", FAILS, k - 1.5 * m))),
        _world(values, "size", "holds", HOLDS, "SNR ~ P^0.2", p_exponent=0.2),
        _world(values, "size", "fails", FAILS, "SNR flat in P", p_exponent=0.0),
        _world(values, "size", "underpowered", HOLDS, "SNR ~ P^0.005", p_exponent=0.005),
        _world(values, "context", "holds", HOLDS, "SNR ~ n", n_exponent=1.0),
        _world(values, "context", "fails", FAILS, "SNR ~ n^0.5", n_exponent=0.5),
        # A true claim read from an interval far wider than the band is contradicted whenever
        # the interval misses the truth on either side: 5 % for a calibrated 95 % interval, the
        # worst case of an equivalence rule (measured 5.0 % in 2000 sets at 10x the window
        # noise).  The underpowered world here is a false claim that the sample cannot resolve.
        _world(values, "context", "underpowered", FAILS, "SNR ~ n^0.7, 10x the window noise",
               n_exponent=0.7, noise=10.0),
    ]
