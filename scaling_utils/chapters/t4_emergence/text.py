"""The numbers Theorem 4's prose glues (keys without the ``t4_``), and why a threshold is missing
where none was fitted, assembled from its result."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...verdicts import CONTRADICTED, SUPPORTED, UNDETERMINED
from .estimators import KNOWN_POINTS, KNOWN_SLOPE, KNOWN_THETA, KNOWN_TRIALS
from .rules import (ABRUPT_WIDTH, CANDIDATES, LEARNED_LEVEL, MECHANISM_MARGIN, MIN_RUNS,
                    SHARED_SPREAD, SMOOTH_SLOPE)

# The two scales the switch and mechanism rules read: the suffix of their keys and the result's
# evidence on each (the trace-ratio SNR, and the whitened SNR J = tr(Sigma_W^-1 Sigma_B)).
SCALES = (("", "switch_evidence", "mechanism_evidence"),
          ("_whitened", "whitened_switch_evidence", "whitened_mechanism_evidence"))
# The summary keeps every theta (with its interval) and these counts and effects.
SUMMARY_KEYS = ("thresholds_found", "tasks", "collapse_snr_best", "collapse_tasks", "width_ratio",
                "metric_width", "crossings", "runs", "collapse_advantage")


def _fitted(thresholds: pd.DataFrame) -> pd.DataFrame:
    return thresholds.set_index("task") if len(thresholds) else pd.DataFrame()


def _has_threshold(fitted: pd.DataFrame, task: str) -> bool:
    """Was ``task`` learned, with its pooled threshold inside the measured SNR?"""
    return task in fitted.index and bool(fitted.loc[task, "in_range"]) and \
        bool(fitted.loc[task, "learned"])


def reasons(result) -> dict:
    """Why a task's threshold (and the count of seeds inside its interval) is NaN."""
    fitted, out = _fitted(result.thresholds), {}
    for task in result.tasks:
        if not _has_threshold(fitted, task):
            why = (f"no threshold fitted for {task}: no run reached {LEARNED_LEVEL:.0%} exact "
                   "match at an SNR inside the measured range")
            out.update({f"theta_{task}{suffix}": why for suffix in ("", "_low", "_high")})
            out[f"seeds_inside_{task}"] = why
        for scale, switches, mechanisms in SCALES:
            switch = getattr(result, switches).get(task)
            evidence = getattr(result, mechanisms).get(task)
            if switch is not None and switch.runs < 2:
                why = (f"no switch width or spread for {task}{scale}: {switch.runs} runs "
                       "switched it on inside their measured SNR")
                out.update({f"{name}{scale}_{task}{s}": why for name in ("width", "spread")
                            for s in ("", "_low", "_high")})
            if evidence is not None and evidence.runs < MIN_RUNS:
                why = (f"no mechanism estimate for {task}{scale}: {evidence.runs} runs learned it "
                       f"with both thresholds inside their measured SNR (at least {MIN_RUNS} "
                       "needed)")
                out.update({f"mechanism{scale}_{task}{s}": why
                            for s in ("", "_low", "_high", "_factor")})
    return out


def _switches(result) -> dict:
    """Per task and scale: the runs' own switch widths (geometric mean, interval) and the
    spread of their thresholds (sd of ln theta beyond the resolution, interval), and how many
    runs (keys ``width_copy``, ``spread_whitened_copy``, ...)."""
    out = {}
    for scale, switches, _ in SCALES:
        for task, e in getattr(result, switches).items():
            out.update({f"width{scale}_{task}": e.width, f"width{scale}_{task}_low": e.width_ci_low,
                        f"width{scale}_{task}_high": e.width_ci_high,
                        f"spread{scale}_{task}": e.spread,
                        f"spread{scale}_{task}_low": e.spread_ci_low,
                        f"spread{scale}_{task}_high": e.spread_ci_high,
                        f"switch_runs{scale}_{task}": e.runs,
                        f"unresolved{scale}_{task}": int((e.per_run.used & (
                            e.per_run.width < e.per_run.resolution)).sum())})
    return out


def _mechanism(result) -> dict:
    """Per task and scale: the mean ln ratio of the thresholds under noise and along training,
    its interval, the same as a factor (exp), and how many runs were swept and used (keys
    ``mechanism_copy``, ``mechanism_whitened_copy``, ...)."""
    out = {}
    for scale, _, mechanisms in SCALES:
        for task, e in getattr(result, mechanisms).items():
            key = f"mechanism{scale}_{task}"
            out.update({key: e.effect, f"{key}_low": e.ci_low, f"{key}_high": e.ci_high,
                        f"{key}_factor": float(np.exp(e.effect)),
                        f"mechanism_runs{scale}_{task}": e.runs,
                        f"mechanism_learned{scale}_{task}": len(e.per_run)})
            used = e.per_run[e.per_run.used.astype(bool)]
            for column in ("theta_training", "theta_noise"):  # the spread of the runs' thresholds
                values = used[column].to_numpy(float)
                out[f"{key}_{column}_low"] = float(values.min()) if len(values) else np.nan
                out[f"{key}_{column}_high"] = float(values.max()) if len(values) else np.nan
    out["mechanism_margin"] = float(np.exp(MECHANISM_MARGIN))
    out["mechanism_band"] = MECHANISM_MARGIN
    sweep = result.sweep
    out["noise_levels"] = int(sweep.multiple.nunique()) if len(sweep) else 0
    out["noise_largest"] = float(sweep.multiple.max()) if len(sweep) else np.nan
    return out


def _thresholds(result) -> dict:
    """Per task: theta with its interval, and how many seeds alone land inside that interval."""
    fitted, per_seed, out = _fitted(result.thresholds), result.seed_thresholds, {}
    for task in result.tasks:
        ok = _has_threshold(fitted, task)
        for suffix, column in (("", "theta"), ("_low", "ci_low"), ("_high", "ci_high")):
            out[f"theta_{task}{suffix}"] = float(fitted.loc[task, column]) if ok else np.nan
        out[f"seeds_inside_{task}"] = np.nan
        if ok:
            spread = per_seed[(per_seed.task == task) & per_seed.in_range]
            out[f"seeds_inside_{task}"] = int(((spread.theta >= fitted.loc[task, "ci_low"]) &
                                               (spread.theta <= fitted.loc[task, "ci_high"])).sum())
    return out


def numbers(result) -> dict:
    """Every number the prose glues: the thresholds, the grid's counts, the collapse and metric
    effects, the crossings, the rules' bounds, the verdict counts and the known-threshold check."""
    table, tasks, verdicts = result.table, result.tasks, result.verdicts
    collapse, ctable = result.collapse_evidence, result.collapse
    metric, crossings, known = result.metric_evidence, result.crossings, result.known
    out = _thresholds(result)
    out.update(_mechanism(result))
    out.update(_switches(result))
    final = table[table.checkpoint == table.checkpoint.max()].groupby("task").exact.max()
    out.update({f"final_{t}": float(final.get(t, np.nan)) for t in tasks})
    found = [t for t in tasks if np.isfinite(out[f"theta_{t}"])]
    out.update(
        thresholds_found=len(found), tasks=len(tasks), runs=int(table.run.nunique()),
        seeds=int(table.seed.nunique()), sizes=int(table["size"].nunique()),
        tokens=int(table.D.max()), checkpoints=int(table.checkpoint.nunique()),
        collapse_tasks=len(collapse.tasks),
        collapse_snr_best=int(sum(
            ctable[ctable.task == t][list(CANDIDATES)].iloc[0].astype(float).idxmin() == "SNR"
            for t in collapse.tasks)),
        collapse_advantage=collapse.effect, collapse_low=collapse.ci_low,
        collapse_high=collapse.ci_high, collapse_snr_wins=collapse.wins.get("SNR", np.nan),
        metric_width=metric.width, metric_low=metric.ci_low, metric_high=metric.ci_high,
        width_ratio=(float(np.exp(np.log(metric.per_run.ratio.astype(float)).mean()))
                     if len(metric.per_run) else np.nan),
        metric_runs=metric.runs,
        induction_width=result.induction_evidence.width,
        induction_low=result.induction_evidence.ci_low,
        induction_high=result.induction_evidence.ci_high,
        induction_runs=result.induction_evidence.runs,
        copy_unresolved=int(sum(row.switch_inside and row.width_exact <= row.spacing + 1e-12
                                for row in metric.per_run.itertuples())),
        crossings=int((crossings.crossed > 0).sum()),
        cells=len(crossings), level=result.level, abrupt_width=ABRUPT_WIDTH,
        smooth_slope=SMOOTH_SLOPE, smooth_width=2 * ABRUPT_WIDTH / SMOOTH_SLOPE,
        shared_spread=SHARED_SPREAD,
        learned_level=LEARNED_LEVEL,
        n_verdicts=len(verdicts), supported=sum(v.word == SUPPORTED for v in verdicts),
        contradicted=sum(v.word == CONTRADICTED for v in verdicts),
        undetermined=sum(v.word == UNDETERMINED for v in verdicts))
    out.update(known_theta=known.theta, known_low=known.ci_low, known_high=known.ci_high,
               known_true=KNOWN_THETA, known_k=KNOWN_SLOPE, known_points=KNOWN_POINTS,
               known_trials=KNOWN_TRIALS)
    return out


def mechanism_reading(result, task: str = "copy", whitened: bool = False) -> str:
    """What the runs' thresholds under noise and along training say side by side: how far
    each set spreads between runs (largest over smallest), and on which side noise falls (on
    the whitened SNR with ``whitened``)."""
    evidence = (result.whitened_mechanism_evidence if whitened
                else result.mechanism_evidence).get(task)
    if evidence is None or evidence.runs < MIN_RUNS:
        return (f"Too few runs learned {task} with both thresholds measured to compare them "
                f"(at least {MIN_RUNS} are needed).")
    used = evidence.per_run[evidence.per_run.used]
    spread = {c: float(used[c].max() / used[c].min()) for c in ("theta_training", "theta_noise")}
    lower = int((used.log_ratio < 0).sum())
    tighter = ("closer together under noise than along training"
               if spread["theta_noise"] < spread["theta_training"] else
               "further apart under noise than along training")
    side = ("lies wholly below 0: the noise switches it off at a systematically lower SNR"
            if evidence.ci_high < 0 else
            "lies wholly above 0: the noise switches it off at a systematically higher SNR"
            if evidence.ci_low > 0 else "contains 0")
    return (f"The runs' thresholds lie {tighter} (they span a factor of "
            f"{spread['theta_noise']:.1f} under noise, {spread['theta_training']:.1f} along "
            f"training), and in {lower} of {len(used)} runs the noise switches {task} off at a "
            "lower SNR than the one at which training switched it on. The interval of the mean "
            f"ln ratio {side}.")


def summary(numbers: dict) -> dict:
    """The stored headline numbers: theta with its interval for every task (NaN, with a reason,
    where none was fitted) and the counts the pages that relate the theorems read."""
    return {k: v for k, v in numbers.items()
            if k.startswith(("theta_", "mechanism_", "width_", "spread_")) or k in SUMMARY_KEYS}
