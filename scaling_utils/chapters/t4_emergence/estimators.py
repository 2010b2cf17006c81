"""Theorem 4's estimators, from a capability table (one row per task, run and checkpoint): the
held-out deviance of logistic curves leaving one run out, the evidence each rule reads, the
pooled and per-seed thresholds, and the resources that crossing a success level costs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import special

from ...estimators.intervals import mean_t_interval
from ...estimators.thresholds import (LOGIT_WIDTH, LogisticFits, ThresholdFit, binomial_deviance,
                                      fit_logistic, fit_threshold)
from .rules import CANDIDATES, CI_LEVEL, CONTROLS, LEARNED_LEVEL, MARGIN_CONTROL, MIN_RUNS

# The estimator on outcomes with a known answer: success a logistic in ln x with theta = 2 and
# k = 4, at KNOWN_POINTS values of x from 0.1 to 10, KNOWN_TRIALS attempts each.
KNOWN_THETA = 2.0
KNOWN_SLOPE = 4.0
KNOWN_POINTS = 15
KNOWN_TRIALS = 100


def heldout_deviance(log_x, hits, trials, run_of, chance=0.0, max_slope=None):
    """Leave one run out, for V variants at once (a variable each, or a bound on the slope):
    for every run, the binomial deviance of its rows under the curve fitted to all the other
    runs.  ``log_x`` is (n,) or (V, n); ``chance`` and ``max_slope`` one value or one per
    variant.  Returns deviance (V, R), rows per run (R,), the fold slopes (V, R) and the fits
    to all runs (:class:`~scaling_utils.estimators.thresholds.LogisticFits` of V)."""
    log_x = np.atleast_2d(np.asarray(log_x, float))
    chance = np.atleast_1d(np.asarray(chance, float))
    bound = np.atleast_1d(np.asarray(np.inf if max_slope is None else max_slope, float))
    variants, n = max(len(log_x), len(chance), len(bound)), log_x.shape[1]
    log_x = np.broadcast_to(log_x, (variants, n))
    chance, bound = np.broadcast_to(chance, (variants,)), np.broadcast_to(bound, (variants,))
    runs = np.unique(run_of)
    train = run_of[None, :] != runs[:, None]
    whole = fit_logistic(log_x, np.broadcast_to(hits, (variants, n)),
                         np.broadcast_to(trials, (variants, n)), chance, bound)
    folds_x = np.repeat(log_x, len(runs), axis=0)
    start = np.repeat(np.column_stack([whole.log_theta, whole.slope]), len(runs), axis=0)
    folds = fit_logistic(folds_x, np.tile(hits * train, (variants, 1)),
                         np.tile(trials * train, (variants, 1)), np.repeat(chance, len(runs)),
                         np.repeat(bound, len(runs)), start=start)
    predicted = folds.predict(folds_x, np.repeat(chance, len(runs)))
    deviance = (binomial_deviance(hits, trials, predicted) * np.tile(~train, (variants, 1))).sum(1)
    return (deviance.reshape(variants, len(runs)), (~train).sum(1),
            folds.slope.reshape(variants, len(runs)), whole)


SWITCH_COLUMNS = ["run", "theta", "width", "resolution", "grid_step", "width_resolved", "used"]


@dataclass(frozen=True)
class SwitchEvidence:
    """What the abruptness and shared-threshold rules read for one task: one logistic in ln SNR
    per run along training (``per_run``: theta, the 10-90 % width 2 ln 9 / k, the resolution,
    i.e. the widest gap in ln SNR between checkpoints next to each other in training whose SNRs
    lie either side of theta, the grid step, i.e. the gap between the measured SNRs nearest
    theta on either side, and the width floored at the resolution), over the runs that learned
    the task with a rising switch inside their SNR: the geometric mean width with t intervals
    over runs (floored, and as fitted), and the spread (sd) of ln theta between runs beyond what
    the grid step alone gives, with a chi-square interval. Each rule takes the reading of the
    checkpoints' resolution that makes its own support harder: the wider gap floors the widths,
    the narrower one is subtracted from the spread."""

    task: str
    learned: bool
    per_run: pd.DataFrame
    runs: int
    width: float  # geometric mean over runs of the width floored at the resolution
    width_ci_low: float
    width_ci_high: float
    fitted_width_ci_low: float  # the same interval for the widths as fitted (not floored)
    spread: float
    spread_ci_low: float
    spread_ci_high: float


def _resolution(log_x: np.ndarray, log_theta: float) -> float:
    """The widest gap in ln x between checkpoints next to each other in training (``log_x`` in
    training order) that lie on either side of ln theta: the widest a switch between them can
    be told apart from a step. Where the SNR does not rise at every checkpoint this can be
    wider than :func:`_grid_step`."""
    below = log_x < log_theta
    crossings = np.flatnonzero(below[:-1] != below[1:])
    return float(np.abs(log_x[crossings + 1] - log_x[crossings]).max()) if len(crossings) \
        else np.nan


def _grid_step(log_x: np.ndarray, log_theta: float) -> float:
    """The gap between the measured ln x values nearest ln theta on either side, whatever
    their order in training: how finely the measured values place ln theta."""
    values = np.unique(log_x)
    i = int(np.searchsorted(values, log_theta))
    return float(values[i] - values[i - 1]) if 0 < i < len(values) else np.nan


def switch_evidence(part: pd.DataFrame) -> SwitchEvidence:
    """The evidence of the abruptness and shared-threshold rules from one task's rows along
    training (run, snr, exact, n, chance): one logistic per run (all runs in one batched fit)
    of the runs whose exact match reaches :data:`LEARNED_LEVEL`."""
    from scipy import stats as sps

    task = str(part.task.iloc[0]) if "task" in part and len(part) else ""
    nan = np.nan
    names, log_x, hits, trials = _run_arrays(part)
    best = np.where(trials > 0, hits / np.where(trials > 0, trials, 1), -np.inf).max(1) \
        if len(names) else np.zeros(0)
    learned = best >= LEARNED_LEVEL
    names, log_x, hits, trials = names[learned], log_x[learned], hits[learned], trials[learned]
    if len(names):
        log_theta, slope, inside = _fit_runs(log_x, hits, trials, float(part.chance.iloc[0]))
    else:
        log_theta = slope = np.zeros(0)
        inside = np.zeros(0, bool)
    resolution, grid_step = (np.array([gap(x[t > 0], lt) if ok else nan
                                       for x, t, lt, ok in zip(log_x, trials, log_theta, inside)])
                             for gap in (_resolution, _grid_step))
    with np.errstate(divide="ignore"):
        width = LOGIT_WIDTH / np.abs(slope)
    per_run = pd.DataFrame(dict(run=names, theta=np.exp(log_theta), width=width,
                                resolution=resolution, grid_step=grid_step,
                                width_resolved=np.maximum(width, resolution),
                                used=inside & np.isfinite(resolution)), columns=SWITCH_COLUMNS)
    used = per_run[per_run.used]
    runs = len(used)
    if runs < 2:
        return SwitchEvidence(task, bool(learned.any()), per_run, runs, *(nan,) * 7)
    mean, lo, hi = mean_t_interval(np.log(used.width_resolved.to_numpy(float)), CI_LEVEL)
    _, fit_lo, _ = mean_t_interval(np.log(used.width.to_numpy(float)), CI_LEVEL)
    variance, df = float(np.var(np.log(used.theta.to_numpy(float)), ddof=1)), runs - 1
    within = float(np.mean(used.grid_step.to_numpy(float) ** 2) / 12)  # uniform in its step
    bounds = (df * variance / sps.chi2.ppf((1 + CI_LEVEL) / 2, df),
              df * variance / sps.chi2.ppf((1 - CI_LEVEL) / 2, df))
    spread = [float(np.sqrt(max(v - within, 0.0))) for v in (variance, *bounds)]
    return SwitchEvidence(task, True, per_run, runs, float(np.exp(mean)), float(np.exp(lo)),
                          float(np.exp(hi)), float(np.exp(fit_lo)), *spread)


def threshold_table(table: pd.DataFrame, variable: str = "snr", metric: str = "exact",
                    n_boot: int = 200, seed: int = 0, groups: Sequence[str] | None = ("run",)) -> pd.DataFrame:
    """One logistic threshold fit of ``metric`` against ``variable`` per task, pooling runs
    (theta with a bootstrap CI that resamples whole runs when ``groups`` names them, width in
    ln units, whether theta lies inside the data, whether some run learned it).  Token-level
    metrics count answer tokens as trials; rows with a non-positive
    variable are dropped."""
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
        row = dict(task=task, variable=variable, metric=metric, theta=fit.theta,
                   ci_low=fit.ci_low, ci_high=fit.ci_high, width=fit.width,
                   in_range=fit.in_range, max_success=float(part[metric].max()),
                   runs=part.run.nunique(), learned=float(part[metric].max()) >= LEARNED_LEVEL)
        rows.append(row)
    return pd.DataFrame(rows)


def seed_thresholds(table: pd.DataFrame, n_boot: int = 200, seed: int = 0) -> pd.DataFrame:
    """The threshold in SNR as each training seed alone would give it (one fit per seed, pooling
    its sizes, the bootstrap resampling its runs), for comparison with the pooled interval."""
    frames = []
    for s, part in table.groupby("seed"):
        t = threshold_table(part, n_boot=n_boot, seed=seed)
        if len(t):
            frames.append(t[["task", "theta", "ci_low", "ci_high", "in_range"]].assign(seed=int(s)))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["task", "theta", "ci_low", "ci_high", "in_range", "seed"])


def _variables(part: pd.DataFrame) -> dict[str, np.ndarray]:
    return {"SNR": part.snr.to_numpy(float), "D": part.D.to_numpy(float),
            "D x P": (part.D * part.P).to_numpy(float), "loss": part.loss.to_numpy(float),
            MARGIN_CONTROL: np.exp(part.margin.to_numpy(float))}


@dataclass(frozen=True)
class CollapseEvidence:
    """Held-out deviance (leave one run out) of one shared curve in each variable, summed over
    the learned tasks: per variable and run (``deviance``, ``points``), the share of bootstrap
    resamples of runs in which each candidate predicts best (``wins``), and the per-point
    advantage of SNR over the best alternative (mean over runs, t interval over runs)."""

    tasks: tuple
    deviance: pd.DataFrame  # task, variable, run, deviance, points
    wins: dict
    best_alternative: str
    effect: float
    ci_low: float
    ci_high: float
    runs: int


def collapse_evidence(table: pd.DataFrame, n_boot: int = 200, seed: int = 0) -> CollapseEvidence:
    """The collapse rule's evidence: every learned task's rows where every variable is finite
    and positive (the logit margin enters as exp(margin), a logistic in the margin itself)."""
    names = list(_variables(table.iloc[:0]))
    candidates = [names.index(v) for v in CANDIDATES]
    all_runs = np.unique(table.run.to_numpy(str))
    learned, records = [], []
    total = np.zeros((len(names), len(all_runs)))
    points = np.zeros(len(all_runs))
    for task, part in table.groupby("task", sort=False):
        if part.exact.max() < LEARNED_LEVEL:
            continue
        x = np.stack(list(_variables(part).values()))
        keep = (np.isfinite(x) & (x > 0)).all(0)
        part, x = part[keep], x[:, keep]
        if part.run.nunique() < 2 or part.snr.nunique() < 3:
            continue
        learned.append(task)
        trials = part.n.to_numpy(float)
        run_names, run_of = np.unique(part.run.to_numpy(str), return_inverse=True)
        dev, rows, _, _ = heldout_deviance(np.log(x), part.exact.to_numpy(float) * trials, trials,
                                           run_of, float(part.chance.iloc[0]))
        where = np.searchsorted(all_runs, run_names)
        total[:, where] += dev
        points[where] += rows
        records.append((task, run_names, dev, rows))
    if not learned:
        return CollapseEvidence((), pd.DataFrame(columns=["task", "variable", "run", "deviance",
                                                          "points"]),
                                {}, "", np.nan, np.nan, np.nan, 0)
    used = points > 0
    total, points = total[:, used], points[used]
    sums = total.sum(1)
    best_alt = min((i for i in candidates if names[i] != "SNR"), key=lambda i: sums[i])
    snr_row = names.index("SNR")
    effect, lo, hi = mean_t_interval((total[best_alt] - total[snr_row]) / points)
    wins = {}
    if n_boot:
        rng = np.random.default_rng(seed)
        draws = rng.integers(0, total.shape[1], (n_boot, total.shape[1]))
        winners = np.argmin(total[candidates][:, draws].sum(2), 0)
        wins = {v: float(np.mean(winners == i)) for i, v in enumerate(CANDIDATES)}
    deviance = pd.DataFrame([dict(task=t, variable=names[v], run=r, deviance=d[v, j], points=p[j])
                             for t, runs, d, p in records for v in range(len(names))
                             for j, r in enumerate(runs)])
    return CollapseEvidence(tuple(learned), deviance, wins, names[best_alt], effect, lo, hi,
                            int(used.sum()))


def collapse_table(evidence: CollapseEvidence) -> pd.DataFrame:
    """Held-out deviance per point of each variable, per task and over all learned tasks."""
    if evidence.deviance.empty:
        return pd.DataFrame(columns=["task", *CANDIDATES, *CONTROLS])
    d = evidence.deviance
    sums = d.groupby(["task", "variable"], sort=False)[["deviance", "points"]].sum()
    per_task = (sums.deviance / sums.points).unstack("variable").reset_index()
    overall = d.groupby("variable")[["deviance", "points"]].sum()
    per_task.loc[len(per_task)] = {"task": "all learned", **(overall.deviance / overall.points)}
    return per_task[["task", *CANDIDATES, *CONTROLS]]


METRIC_COLUMNS = ["run", "width_exact", "width_continuous", "spacing", "ratio", "switch_inside"]


@dataclass(frozen=True)
class MetricEvidence:
    """Per run whose exact match of the multi-token answer switches on inside the measured D:
    the 10-90 % width in ln D of exact match and of the normalised answer log-probability
    (a width below the checkpoint spacing is not resolved and counts as the spacing), and the
    log-probability's width over runs (geometric mean, t interval on the log widths)."""

    task: str
    per_run: pd.DataFrame
    width: float
    ci_low: float
    ci_high: float
    runs: int


def metric_evidence(part: pd.DataFrame, column: str = "logprob_norm") -> MetricEvidence:
    """The metric rule's evidence from one multi-token task's rows (columns run, D, exact,
    ``column``: a continuous measure from 0 to 1, by default the normalised answer
    log-probability; n, chance): one logistic fit in ln D per run and measure (all runs at
    once), using the runs whose exact match reaches :data:`LEARNED_LEVEL` with its fitted
    switch inside the measured D."""
    task = str(part.task.iloc[0]) if len(part) else ""
    chance = float(part.chance.iloc[0]) if len(part) else 0.0
    learned = part.groupby("run").exact.max()
    part = part[part.run.isin(learned.index[learned >= LEARNED_LEVEL])]
    empty = pd.DataFrame(columns=METRIC_COLUMNS)
    if part.empty or part.groupby("run").D.nunique().min() < 3 or part.D.isna().any():
        return MetricEvidence(task, empty, np.nan, np.nan, np.nan, 0)
    part = part.sort_values(["run", "checkpoint"])
    names, counts = np.unique(part.run.to_numpy(str), return_counts=True)
    if len(set(counts)) != 1:
        return MetricEvidence(task, empty, np.nan, np.nan, np.nan, 0)
    grid = {c: part[c].to_numpy(float).reshape(len(names), -1)
            for c in ("D", "n", "exact", column)}
    log_d, trials = np.log(grid["D"]), grid["n"]
    exact, smooth = grid["exact"] * trials, grid[column] * trials
    both = fit_logistic(np.concatenate([log_d, log_d]), np.concatenate([exact, smooth]),
                        np.concatenate([trials, trials]),
                        np.repeat([chance, 0.0], len(names)))
    on_exact = LogisticFits(*(v[:len(names)] for v in (both.log_theta, both.slope, both.deviance)))
    on_logprob = LogisticFits(*(v[len(names):] for v in (both.log_theta, both.slope, both.deviance)))
    spacing = np.median(np.diff(log_d, axis=1), axis=1)
    inside = (on_exact.log_theta >= log_d.min(1)) & (on_exact.log_theta <= log_d.max(1))
    per_run = pd.DataFrame(dict(run=names, width_exact=np.maximum(on_exact.width, spacing),
                                width_continuous=np.maximum(on_logprob.width, spacing),
                                spacing=spacing, switch_inside=inside))
    per_run["ratio"] = per_run.width_continuous / per_run.width_exact
    used = per_run[per_run.switch_inside]
    mean, lo, hi = mean_t_interval(np.log(used.width_continuous.to_numpy(float)))
    return MetricEvidence(task, per_run, float(np.exp(mean)), float(np.exp(lo)), float(np.exp(hi)),
                          len(used))


def crossing_resources(table: pd.DataFrame, metric: str = "exact", level: float = 0.5) -> pd.DataFrame:
    """Per task and model size: the first D (and FLOPs 6 P D) at which ``metric`` reaches
    ``level``, interpolated linearly in log D between checkpoints (NaN if never reached); with
    several runs per size, the median over the runs (a run that never crosses counts as
    never) and how many crossed."""
    rows = []
    keys = ["task", "size", "run"] if "run" in table else ["task", "size"]
    for key, part in table.groupby(keys, sort=False):
        part = part.sort_values("D")
        y, log_d = part[metric].to_numpy(), np.log(part.D.to_numpy(float))
        above_level = np.flatnonzero(y >= level)
        d = np.nan
        if len(above_level):
            j = above_level[0]
            if j == 0:
                d = float(np.exp(log_d[0]))
            else:
                frac = (level - y[j - 1]) / (y[j] - y[j - 1])
                d = float(np.exp(log_d[j - 1] + frac * (log_d[j] - log_d[j - 1])))
        rows.append(dict(task=key[0], size=key[1], P=float(part.P.iloc[0]), D_cross=d))
    runs = pd.DataFrame(rows)
    out = runs.groupby(["task", "size"], sort=False).agg(
        P=("P", "first"), D_cross=("D_cross", lambda v: float(np.median(np.where(np.isnan(v), np.inf, v)))),
        crossed=("D_cross", lambda v: int(np.isfinite(v).sum())), runs=("D_cross", "size")).reset_index()
    out["D_cross"] = out.D_cross.replace(np.inf, np.nan)
    out["flops_cross"] = 6 * out.P * out.D_cross
    return out


MECHANISM_COLUMNS = ["run", "size", "seed", "theta_training", "theta_noise", "log_ratio", "used",
                     "why_not"]


@dataclass(frozen=True)
class MechanismEvidence:
    """Per run that learned a task: the threshold in SNR of one logistic fitted along training
    (``theta_training``) and of one fitted to the noise sweep at the final weights
    (``theta_noise``), and ln of their ratio; over the runs whose two thresholds both lie
    inside their measured SNR (``used``), the mean ln ratio with its t interval over runs."""

    task: str
    per_run: pd.DataFrame
    effect: float
    ci_low: float
    ci_high: float
    runs: int


def _run_arrays(part: pd.DataFrame, names=None):
    """Run names (``names``, default every run in ``part``) and (runs x rows) arrays of ln SNR,
    hits and trials (trials 0: no row), from rows with columns run, snr, exact, n; rows with a
    non-positive or missing SNR left out."""
    x, runs = part.snr.to_numpy(float), part.run.to_numpy(str)
    keep = np.isfinite(x) & (x > 0)
    names = np.unique(runs[keep]) if names is None else np.asarray(names, str)
    index = {name: i for i, name in enumerate(names)}
    keep &= np.isin(runs, names)
    run_of = np.array([index[r] for r in runs[keep]], int)
    order = np.argsort(run_of, kind="stable")
    counts = np.bincount(run_of, minlength=len(names))
    at = (run_of[order], np.arange(len(order)) - np.repeat(np.cumsum(counts) - counts, counts))
    log_x, hits, trials = (np.zeros((len(names), max(counts.max(initial=0), 1))) for _ in range(3))
    log_x[at] = np.log(x[keep][order])
    trials[at] = part.n.to_numpy(float)[keep][order]
    hits[at] = part.exact.to_numpy(float)[keep][order] * trials[at]
    return names, log_x, hits, trials


def _fit_runs(log_x, hits, trials, chance: float):
    """One logistic per run (row): ln theta, slope, and whether a rising switch lies inside the
    run's measured ln x."""
    fits = fit_logistic(log_x, hits, trials, chance)
    low = np.where(trials > 0, log_x, np.inf).min(1)
    high = np.where(trials > 0, log_x, -np.inf).max(1)
    inside = (fits.log_theta >= low) & (fits.log_theta <= high) & (fits.slope > 0)
    return fits.log_theta, fits.slope, inside


def mechanism_evidence(trajectory: pd.DataFrame, sweep: pd.DataFrame) -> MechanismEvidence:
    """The mechanism rule's evidence for one task: ``trajectory`` its rows along training
    (run, checkpoint, snr, exact, n, chance), ``sweep`` its noise-sweep rows at the final
    weights (run, snr, exact, n, chance).  A run enters when its final checkpoint reaches
    :data:`LEARNED_LEVEL` and both fits put a rising switch inside their measured SNR."""
    task = str(trajectory.task.iloc[0]) if "task" in trajectory and len(trajectory) else ""
    final = trajectory.sort_values("checkpoint").drop_duplicates("run", keep="last")
    final = final.assign(run=final.run.to_numpy(str)).set_index("run").sort_index()
    learned = final.index[final.exact.to_numpy(float) >= LEARNED_LEVEL].to_numpy(str)
    chance = float(trajectory.chance.iloc[0]) if len(trajectory) else 0.0
    parts = [_run_arrays(rows, learned)[1:] for rows in (trajectory, sweep)]
    width = max(p[0].shape[1] for p in parts)
    stacked = [np.concatenate([np.pad(p[i], ((0, 0), (0, width - p[i].shape[1]))) for p in parts])
               for i in range(3)]
    log_theta, _, inside = _fit_runs(*stacked, chance)
    along, noised = np.split(log_theta, 2)
    along_in, noised_in = np.split(inside, 2)
    along_has, noised_has = (p[2].sum(1) > 0 for p in parts)
    why = np.select([~along_has, ~noised_has, ~along_in, ~noised_in],
                    ["no SNR along training", "no noise sweep",
                     "the switch along training lies outside its checkpoints",
                     "the noise does not switch it off inside the sweep"], "")
    final = final.loc[learned]
    with np.errstate(over="ignore"):  # a fit far outside its SNR (a run left out) is infinite
        theta_training, theta_noise = np.exp(along), np.exp(noised)
    per_run = pd.DataFrame(dict(
        run=learned, size=final["size"].to_numpy(str) if "size" in final else "",
        seed=final.seed.to_numpy() if "seed" in final else np.nan,
        theta_training=theta_training, theta_noise=theta_noise, log_ratio=noised - along,
        used=why == "", why_not=why), columns=MECHANISM_COLUMNS)
    used = per_run.log_ratio.to_numpy(float)[why == ""]
    effect, lo, hi = mean_t_interval(used) if len(used) >= MIN_RUNS else (np.nan,) * 3
    return MechanismEvidence(task, per_run, effect, lo, hi, len(used))


def known_threshold_demo(n_boot: int, seed: int) -> ThresholdFit:
    """The estimator on outcomes with a known answer: theta = 2, k = 4, 15 values of x from
    0.1 to 10, 100 attempts each."""
    rng = np.random.default_rng(seed)
    x = np.geomspace(0.1, 10, KNOWN_POINTS)
    p = special.expit(KNOWN_SLOPE * (np.log(x) - np.log(KNOWN_THETA)))
    return fit_threshold(x, rng.binomial(KNOWN_TRIALS, p) / KNOWN_TRIALS, KNOWN_TRIALS,
                         n_boot=n_boot, seed=seed)
