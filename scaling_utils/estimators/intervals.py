"""Intervals that contain every source of variance: training runs resampled within their cells
(with adjusted residuals), then held-out sequences; percentile intervals stretched by t_df / z."""

from __future__ import annotations


import numpy as np

def resample_runs(cell, n_boot: int, seed: int = 0) -> np.ndarray:
    """Replicates x runs: for every replicate, the run drawn (with replacement, from the runs of
    the same cell, e.g. the seeds of one (P, D) point) into each run's slot."""
    cell = np.asarray(cell).ravel()
    rng = np.random.default_rng(seed)
    drawn = np.empty((n_boot, len(cell)), int)
    for level in np.unique(cell):
        members = np.flatnonzero(cell == level)
        drawn[:, members] = members[rng.integers(0, len(members), (n_boot, len(members)))]
    return drawn


def hierarchical_bootstrap(values, cell, n_boot: int, seed: int = 0,
                           replicates=None) -> np.ndarray:
    """Two-level bootstrap of one value per training run: replicates x runs.

    First level: the runs of each cell (the seeds of one grid point) are resampled with
    replacement.  Second level: each drawn run enters with its value in the replicate's
    resample of sequences, ``replicates[run, b]`` (runs x n_boot; aligned across runs, because
    all runs are measured on the same held-out sequences, so replicate b resamples the same
    sequences for every run); without it, runs enter with ``values``.  With k runs in a cell,
    the resampled mean of k draws has (k - 1)/k of the variance of a mean of k new runs, so each
    run's deviation from its cell's mean is inflated by sqrt(k/(k - 1)) first (the adjusted
    residuals of Davison and Hinkley 1997, section 3.7): the interval keeps 95 % coverage
    with three runs per cell (tests).  A cell with one run cannot show the spread between runs
    (``runs_per_cell`` says when that happens)."""
    values = np.asarray(values, float).ravel()
    reps = (np.broadcast_to(values[:, None], (len(values), n_boot)) if replicates is None
            else np.asarray(replicates, float))
    if reps.shape != (len(values), n_boot):
        raise ValueError(f"replicates must be runs x n_boot = {(len(values), n_boot)}, got "
                         f"{reps.shape}.")
    _, cell_id = np.unique(np.asarray(cell).ravel(), return_inverse=True)
    counts = np.bincount(cell_id)
    member = np.zeros((len(values), len(counts)))
    member[np.arange(len(values)), cell_id] = 1.0
    centre = ((reps.T @ member) / counts)[:, cell_id]  # replicate x run: its cell's mean
    inflate = np.where(counts > 1, np.sqrt(counts / np.maximum(counts - 1, 1)), 1.0)[cell_id]
    drawn = np.take_along_axis(reps.T, resample_runs(cell_id, n_boot, seed), axis=1)
    return centre + inflate * (drawn - centre)


def between_run_df(cell) -> int:
    """Degrees of freedom of the spread between runs: sum over cells of (runs - 1)."""
    counts = np.unique(np.asarray(cell).ravel(), return_counts=True)[1]
    return int((counts - 1).sum())


def stretched_interval(replicates, df: int | None = None, ci: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap replicates, its ends moved away from the replicates'
    median by t_{df} / z (the Student quantile over the normal one at the same level) when the
    variance the replicates carry is estimated with few degrees of freedom ``df`` (three runs
    in each of twelve cells: df = 24, a 5 % wider interval).  The percentile interval alone
    treats that variance as known and covers less than it says (tests)."""
    from scipy import stats as sps

    values = np.asarray(replicates, float)
    values = values[np.isfinite(values)]
    if not len(values):
        return np.nan, np.nan
    lo, mid, hi = np.quantile(values, [(1 - ci) / 2, 0.5, (1 + ci) / 2])
    if df:
        factor = sps.t.ppf((1 + ci) / 2, df) / sps.norm.ppf((1 + ci) / 2)
        lo, hi = mid - factor * (mid - lo), mid + factor * (hi - mid)
    return float(lo), float(hi)


def runs_per_cell(cell) -> int:
    """The smallest number of runs in any cell: below 2, no interval can contain the spread
    between training runs."""
    return int(np.unique(np.asarray(cell).ravel(), return_counts=True)[1].min())


def sequence_weights(n_sequences: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """Replicates x sequences: how often each held-out sequence is drawn in each bootstrap
    replicate, divided by the number of sequences (rows sum to 1, so ``weights @ x`` is the
    resampled mean of a per-sequence quantity x)."""
    drawn = np.random.default_rng(seed).integers(0, n_sequences, (n_boot, n_sequences))
    drawn += np.arange(n_boot)[:, None] * n_sequences  # one block of counts per replicate
    counts = np.bincount(drawn.ravel(), minlength=n_boot * n_sequences)
    return counts.reshape(n_boot, n_sequences) / n_sequences
