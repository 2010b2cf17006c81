"""Theorem 4: whether capabilities switch on at a threshold in the signal-to-noise ratio.

Tables are tidy DataFrames for plotting and glueing; the estimators (``snr``,
``fit_threshold``, ``collapse_test``) live in ``stats``.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Sequence

import numpy as np
import pandas as pd

from .cache import cached
from .stats import fit_threshold, snr
from .tasks import TaskSuite, measure_capability
from .train import TrainResult, load_student

EMERGENCE_VERSION = 1  # bump when a change here changes the tables


# --------------------------------------------------------------------------- Theorem 4

def capability_table(results: Sequence[TrainResult], suite: TaskSuite, n_examples: int = 512,
                     seed: int = 0, n_boot: int = 100, device=None) -> pd.DataFrame:
    """Every task at every kept checkpoint of every run: exact match (and its chance level),
    token accuracy, answer log-probability, 1 - normalised edit distance, the SNR of the
    representation that predicts the answer with respect to the answer, held-out loss, D, P and
    training FLOPs 6 P D.  Cached by the runs' configurations and the suite."""
    key = {"runs": [asdict(r.config) for r in results], "suite": suite.digest(),
           "n_examples": n_examples, "seed": seed, "n_boot": n_boot, "version": EMERGENCE_VERSION}
    return cached("capabilities", key, lambda: _capability_rows(results, suite, n_examples, seed,
                                                                 n_boot, device))


def _capability_rows(results, suite, n_examples, seed, n_boot, device) -> pd.DataFrame:
    examples = {task: suite.examples(task, n_examples, seed + 20_000) for task in suite.tasks}
    rows = []
    for r in results:
        size = f"{r.config.spec.n_layers}x{r.config.spec.d_model}"
        for i, (tokens, loss) in enumerate(zip(r.curve_tokens, r.curve_loss)):
            model = load_student(r, device, checkpoint=i)
            for task, ex in examples.items():
                m = measure_capability(model, ex)
                try:
                    s = snr(m.features, m.labels, m.groups, n_boot=n_boot, seed=seed)
                    snr_values = (s.snr, s.ci_low, s.ci_high)
                except ValueError:
                    snr_values = (np.nan,) * 3
                rows.append(dict(task=task, size=size, P=r.n_parameters, seed=r.config.seed,
                                 checkpoint=i, D=int(tokens), flops=6.0 * r.n_parameters * tokens,
                                 loss=float(loss), exact=m.exact.mean(), chance=suite.chance(task),
                                 token_accuracy=m.token_accuracy.mean(),
                                 logprob=m.logprob.mean(), edit_score=1 - m.edit_distance.mean(),
                                 answer_tokens=ex.answer_length, n=len(m.exact),
                                 snr=snr_values[0], snr_low=snr_values[1], snr_high=snr_values[2]))
    return pd.DataFrame(rows)


def threshold_table(table: pd.DataFrame, variable: str = "snr", metric: str = "exact",
                    n_boot: int = 200, seed: int = 0, groups: Sequence[str] | None = None) -> pd.DataFrame:
    """One logistic threshold fit of ``metric`` against ``variable`` per task, pooling sizes
    (theta with CI, width in ln units, whether theta lies inside the data).  Token-level
    metrics count answer tokens as trials; points with a non-positive variable are dropped.
    ``groups``: columns naming a training run (e.g. ``["size", "seed"]``), resampled whole by
    the bootstrap so that the CI contains the spread between runs."""
    rows = []
    for task, part in table.groupby("task", sort=False):
        chance = float(part.chance.iloc[0]) if metric == "exact" else 0.0
        part = part[np.isfinite(part[variable]) & (part[variable] > 0)]
        trials = part.n * (part.answer_tokens if metric != "exact" else 1)
        try:
            runs = None if groups is None else part[list(groups)].astype(str).agg("/".join, axis=1)
            fit = fit_threshold(part[variable], part[metric], trials, groups=runs, chance=chance,
                                n_boot=n_boot, seed=seed)
        except ValueError:
            continue
        rows.append(dict(task=task, variable=variable, metric=metric, theta=fit.theta,
                         ci_low=fit.ci_low, ci_high=fit.ci_high, width=fit.width,
                         in_range=fit.in_range, max_success=float(part[metric].max()), fit=fit))
    return pd.DataFrame(rows)


def crossing_resources(table: pd.DataFrame, metric: str = "exact", level: float = 0.5) -> pd.DataFrame:
    """Per task and model size: the first D (and FLOPs 6 P D) at which ``metric`` reaches
    ``level``, interpolated linearly in log D between checkpoints (NaN if never reached)."""
    rows = []
    for (task, size), part in table.groupby(["task", "size"], sort=False):
        part = part.sort_values("D")
        y, log_d = part[metric].to_numpy(), np.log(part.D.to_numpy(float))
        above = np.flatnonzero(y >= level)
        d = np.nan
        if len(above):
            j = above[0]
            if j == 0:
                d = float(np.exp(log_d[0]))
            else:
                frac = (level - y[j - 1]) / (y[j] - y[j - 1])
                d = float(np.exp(log_d[j - 1] + frac * (log_d[j] - log_d[j - 1])))
        p = float(part.P.iloc[0])
        rows.append(dict(task=task, size=size, P=p, D_cross=d, flops_cross=6 * p * d))
    return pd.DataFrame(rows)
