"""Theorem 4's simulated worlds, on which its rules' false-verdict rates are measured: runs whose
success switches in ln SNR or in ln D, with the spread between runs measured on real runs."""

from __future__ import annotations

from functools import partial
from typing import Mapping

import numpy as np
import pandas as pd
from scipy import special

from ...estimators.thresholds import LOGIT_WIDTH
from ...tasks import TaskSuite
from ...train import TrainConfig, student_parameters
from ...verdicts import Verdict
from ...worlds import FAILS, HOLDS, World
from .estimators import collapse_evidence, mechanism_evidence, metric_evidence, switch_evidence
from .rules import (decide_abrupt, decide_collapse, decide_induction, decide_mechanism,
                    decide_metric, decide_shared)

WORLDS_VERSION = 7  # bump when a change here changes the simulated worlds

# Between-run noise of the sizes measured on the cpu profile's nine runs (seeds 0-2, three
# sizes, 1.5 M tokens): one logistic in ln SNR per run puts the copy and addition switches at
# ln theta with a spread (sd) of about 1.0 between runs, each switch itself abrupt (median
# k about 50); at one checkpoint ln SNR differs between runs of one size by about 0.25 (copy);
# the log-probability's switch width differs between runs by about 0.22 in ln; the normalised
# log-probability of 512 instances scatters by well under 0.02 around its curve.
WORLD_THETA_SPREAD = 1.0
WORLD_SNR_SPREAD = 0.25
WORLD_LOGPROB_NOISE = 0.02
WORLD_WIDTH_SPREAD = 0.22
# The worlds where the runs' thresholds scatter but a switch is abrupt use a third of the
# measured spread; those where one threshold serves every run, a sixth.
WORLD_SHARED_SPREAD = 0.3
WORLD_ONE_THRESHOLD = 0.15
# The mechanism worlds: the noise sweep's levels (ln SNR from the trained value down by ln 4000,
# as NOISE_MULTIPLES give), and how far a run's threshold under noise scatters around its own
# threshold along training when one threshold serves both (sd in ln; a guess, not measured).
WORLD_SWEEP_LEVELS = 17
WORLD_SWEEP_DEPTH = float(np.log(4000.0))
WORLD_MECHANISM_JITTER = 0.3
# Runs that differ systematically by size, as the cpu profile's do (seed 0): along training the
# copy thresholds rise by about 1.2 in ln from one size to the next, and the noise switches the
# widest students' copying off about 3 below their training threshold (ln), the others near it.
WORLD_SIZE_STEP = 1.2
WORLD_LARGEST_SHIFT = -3.0


def world_runs(values: Mapping) -> tuple[int, int, int, list]:
    """Runs, checkpoints, test instances and the sizes' (layers, width, heads) of a profile."""
    sizes = list(values["sizes"])
    return len(sizes) * values["n_seeds"], values["n_checkpoints"], values["n_examples"], sizes


def _log_d(values: Mapping, checkpoints: int) -> np.ndarray:
    """ln D of the checkpoints, evenly spaced in ln D from the first evaluation's step
    (``TrainConfig.log_first_step``) to the run's tokens, as the students are read."""
    first = values["batch_size"] * TrainConfig.log_first_step
    return np.linspace(np.log(first), np.log(max(values["D"], 2 * first)), checkpoints)


def _rising_snr(rng, runs: int, checkpoints: int, spread: float):
    """ln SNR of runs rising along training (from -4 to 4, each run offset by WORLD_SNR_SPREAD)
    and each run's ln theta (0.5, spread by ``spread`` between runs)."""
    ln_snr = np.linspace(-4.0, 4.0, checkpoints)[None, :] + \
        WORLD_SNR_SPREAD * rng.standard_normal((runs, 1))
    return ln_snr, 0.5 + spread * rng.standard_normal((runs, 1))


def _success_rows(rng, task: str, chance: float, slope: float, ln_x, ln_theta, n: int):
    """One row per run and step: success of n binomial test instances, a logistic in ln x of
    ``slope`` around each run's ln theta above ``chance``."""
    runs, steps = ln_x.shape
    p = chance + (1 - chance) * special.expit(slope * (ln_x - ln_theta))
    return pd.DataFrame(dict(task=task, run=np.repeat(np.arange(runs), steps).astype(str),
                             checkpoint=np.tile(np.arange(steps), runs),
                             snr=np.exp(ln_x).ravel(), exact=rng.binomial(n, p).ravel() / n,
                             n=n, chance=chance))


def _size_index(runs: int, sizes: int) -> np.ndarray:
    """The size of each run (a column), the runs dealt out over ``sizes`` sizes in turn."""
    return (np.arange(runs) % max(sizes, 1))[:, None]


def simulate_switch(rule: str, task: str, chance: float, slope: float, spread: float, runs: int,
                    checkpoints: int, n: int, seed: int, size_step: float = 0.0,
                    sizes: int = 1) -> Verdict:
    """Runs whose ln SNR rises along training (:func:`_rising_snr`) and whose success is a
    logistic in ln SNR of ``slope`` around a threshold that differs between runs by ``spread``
    (sd of ln theta) and rises by ``size_step`` in ln from each of ``sizes`` sizes to the next,
    with binomial test instances; judged by the chapter's ``rule`` ("abrupt" or "shared")."""
    rng = np.random.default_rng(seed)
    ln_snr, ln_theta = _rising_snr(rng, runs, checkpoints, spread)
    ln_theta = ln_theta + size_step * _size_index(runs, sizes)
    decide = {"abrupt": decide_abrupt, "shared": decide_shared}[rule]
    return decide(switch_evidence(_success_rows(rng, task, chance, slope, ln_snr, ln_theta, n)))


def simulate_mechanism(task: str, chance: float, shift: float, runs: int, checkpoints: int,
                       n: int, seed: int, largest_shift: float = 0.0, sizes: int = 1) -> Verdict:
    """Runs that switch on along training as in :func:`simulate_switch` (width 0.55 in
    ln SNR, thresholds spread by WORLD_SHARED_SPREAD between runs), then a noise sweep at the
    final weights that switches each run off at its own threshold times exp(``shift``), the
    runs of the largest of ``sizes`` sizes times exp(``shift + largest_shift``) (and a run
    jitter of WORLD_MECHANISM_JITTER in ln); judged by the chapter's mechanism rule."""
    rng = np.random.default_rng(seed)
    ln_snr, ln_theta = _rising_snr(rng, runs, checkpoints, WORLD_SHARED_SPREAD)
    ln_noised = ln_snr[:, -1:] - np.linspace(0.0, WORLD_SWEEP_DEPTH, WORLD_SWEEP_LEVELS)[None, :]
    ln_off = ln_theta + shift + WORLD_MECHANISM_JITTER * rng.standard_normal((runs, 1))
    ln_off = ln_off + largest_shift * (_size_index(runs, sizes) == sizes - 1)
    along = _success_rows(rng, task, chance, 8.0, ln_snr, ln_theta, n)
    return decide_mechanism(mechanism_evidence(
        along, _success_rows(rng, task, chance, 8.0, ln_noised, ln_off, n)))


def simulate_collapse(driver: str, values: Mapping, runs: int, checkpoints: int, n: int,
                      seed: int, snr_noise: float = 0.05) -> Verdict:
    """Runs of the profile's sizes (P counted by :func:`~scaling_utils.train.student_parameters`)
    along training: the SNR grows as D P^0.3 times a run factor
    (WORLD_SNR_SPREAD), the loss falls with D and P but not with the run factor, and success is a
    logistic in ln SNR (``driver="SNR"``) or in ln D (``driver="D"``); the SNR is measured with
    ``snr_noise`` in ln; judged by the chapter's collapse rule."""
    rng = np.random.default_rng(seed)
    sizes = list(values["sizes"])
    params = np.array([student_parameters(size) for size in sizes], float)
    size_of = np.arange(runs) % len(sizes)
    log_d = _log_d(values, checkpoints)[None, :]
    log_p = np.log(params[size_of])[:, None]
    run_factor = WORLD_SNR_SPREAD * rng.standard_normal((runs, 1))
    ln_snr = log_d + 0.3 * log_p + run_factor - np.median(log_d) - 0.3 * np.log(params).mean()
    observed = ln_snr + snr_noise * rng.standard_normal(ln_snr.shape)
    loss = 1.5 + 2.0 * np.exp(-0.3 * (log_d - log_d.min())) * (params[size_of][:, None] / params.min()) ** -0.1
    loss = loss * np.exp(0.01 * rng.standard_normal(loss.shape))
    if driver == "SNR":
        z = 3.0 * ln_snr
    else:
        z = 3.0 * (log_d - np.median(log_d) + run_factor * 0.2)
    p = special.expit(z)
    frame = pd.DataFrame(dict(
        task="copy", run=np.repeat(np.arange(runs), checkpoints).astype(str),
        snr=np.exp(observed).ravel(), D=np.exp(np.broadcast_to(log_d, ln_snr.shape)).ravel(),
        P=np.repeat(params[size_of], checkpoints), loss=loss.ravel(),
        exact=rng.binomial(n, p).ravel() / n, n=n, chance=0.0,
        margin=(3.0 * ln_snr).ravel()))
    return decide_collapse(collapse_evidence(frame, n_boot=0))


def simulate_metric(width: float, values: Mapping, runs: int, checkpoints: int, n: int,
                    seed: int, rule: str = "metric") -> Verdict:
    """Runs whose exact match switches sharply in ln D (width 0.5) while the normalised answer
    log-probability rises with ``width`` (times a run factor WORLD_WIDTH_SPREAD in ln) around
    the same D, observed with WORLD_LOGPROB_NOISE; judged by the chapter's ``rule`` (the
    metric rule, or the induction control, which reads the same widths)."""
    rng = np.random.default_rng(seed)
    log_d = _log_d(values, checkpoints)[None, :]
    center = np.median(log_d) + 0.5 * rng.standard_normal((runs, 1))
    k_exact = LOGIT_WIDTH / 0.5
    k_smooth = LOGIT_WIDTH / (width * np.exp(WORLD_WIDTH_SPREAD * rng.standard_normal((runs, 1))))
    exact = rng.binomial(n, special.expit(k_exact * (log_d - center))) / n
    smooth = np.clip(special.expit(k_smooth * (log_d - center))
                     + WORLD_LOGPROB_NOISE * rng.standard_normal(exact.shape), 0, 1)
    frame = pd.DataFrame(dict(task="copy", run=np.repeat(np.arange(runs), checkpoints).astype(str),
                              checkpoint=np.tile(np.arange(checkpoints), runs), D=np.exp(np.broadcast_to(log_d, exact.shape)).ravel(),
                              exact=exact.ravel(), logprob_norm=smooth.ravel(), n=n, chance=0.0))
    return {"metric": decide_metric, "induction": decide_induction}[rule](metric_evidence(frame))


def worlds(values: Mapping) -> list:
    """Each rule of the chapter in worlds where its claim holds, fails, or cannot be told, at
    the sample sizes of ``values`` (a profile's parameters: runs = sizes x seeds, checkpoints,
    test instances).  The threshold worlds differ between tasks only in the chance level."""
    runs, checkpoints, n, sizes = world_runs(values)
    suite = TaskSuite(values["alphabet"], values["copy_length"], values["recall_pairs"],
                      values["modulus"])
    out = []
    for task in suite.tasks:
        chance = suite.chance(task)
        abrupt = partial(simulate_switch, "abrupt", task, chance)
        shared = partial(simulate_switch, "shared", task, chance)
        out += [
            World(f"abrupt_{task}", "holds", HOLDS, "every run switches with width 0.55 in "
                  f"ln SNR, thresholds spread by {WORLD_SHARED_SPREAD:g} in ln between runs",
                  partial(abrupt, 8.0, WORLD_SHARED_SPREAD, runs, checkpoints, n)),
            World(f"abrupt_{task}", "fails: smooth", FAILS, "every run rises with width 3.3 "
                  "in ln SNR (k = 4/3: steeper than first order, wider than abrupt)",
                  partial(abrupt, 4 / 3, WORLD_SHARED_SPREAD, runs, checkpoints, n)),
            World(f"abrupt_{task}", "underpowered", HOLDS, "width 1.5 in ln SNR, but 3 runs "
                  "of 16 instances", partial(abrupt, 3.0, WORLD_SHARED_SPREAD, 3, checkpoints,
                                             16)),
            World(f"shared_{task}", "holds", HOLDS, "every run switches with width 0.55 at "
                  f"thresholds spread by {WORLD_ONE_THRESHOLD:g} in ln",
                  partial(shared, 8.0, WORLD_ONE_THRESHOLD, runs, checkpoints, n)),
            World(f"shared_{task}", "fails: scattered", FAILS, "thresholds spread by "
                  f"{WORLD_THETA_SPREAD:g} in ln between runs, as measured",
                  partial(shared, 8.0, WORLD_THETA_SPREAD, runs, checkpoints, n)),
            World(f"shared_{task}", "fails: just outside", FAILS, "thresholds spread by 0.75 "
                  "in ln (the bound is 0.55)", partial(shared, 8.0, 0.75, runs, checkpoints, n)),
            World(f"shared_{task}", "underpowered", HOLDS, "one threshold, but 3 runs of 16 "
                  "instances", partial(shared, 8.0, WORLD_ONE_THRESHOLD, 3, checkpoints, 16)),
            World(f"shared_{task}", "fails: by size", FAILS, "each size's runs share a "
                  f"threshold (spread {WORLD_ONE_THRESHOLD:g} in ln), which rises by "
                  f"{WORLD_SIZE_STEP:g} in ln from one size to the next, as measured",
                  partial(shared, 8.0, WORLD_ONE_THRESHOLD, runs, checkpoints, n,
                          size_step=WORLD_SIZE_STEP, sizes=len(sizes))),
        ]
    for task in suite.tasks:
        sim = partial(simulate_mechanism, task, suite.chance(task))
        out += [
            World(f"mechanism_{task}", "holds", HOLDS, "noise switches every run off at its "
                  f"training threshold (run jitter {WORLD_MECHANISM_JITTER:g} in ln)",
                  partial(sim, 0.0, runs, checkpoints, n)),
            World(f"mechanism_{task}", "fails", FAILS, "noise switches every run off at 9 "
                  "times its training threshold", partial(sim, float(np.log(9.0)), runs,
                                                        checkpoints, n)),
            World(f"mechanism_{task}", "fails: just outside", FAILS, "noise switches every run "
                  "off at 4 times its training threshold (the band is a factor of 3)",
                  partial(sim, float(np.log(4.0)), runs, checkpoints, n)),
            World(f"mechanism_{task}", "underpowered", HOLDS, "one threshold, but 3 runs of 16 "
                  "instances", partial(sim, 0.0, 3, checkpoints, 16)),
            World(f"mechanism_{task}", "fails: one size", FAILS, "noise switches the smaller "
                  "sizes off at their training thresholds and the largest size's at "
                  f"exp({WORLD_LARGEST_SHIFT:g}) times theirs, as measured",
                  partial(sim, 0.0, runs, checkpoints, n, largest_shift=WORLD_LARGEST_SHIFT,
                          sizes=len(sizes))),
        ]
    out += [
        World("collapse", "holds", HOLDS, "success is a logistic in ln SNR; SNR grows with D, "
              "P^0.3 and a run factor", partial(simulate_collapse, "SNR", values, runs,
                                              checkpoints, n)),
        World("collapse", "fails", FAILS, "success is a logistic in ln D; the SNR carries a run "
              "factor that success does not", partial(simulate_collapse, "D", values, runs,
                                                      checkpoints, n)),
        World("collapse", "underpowered", HOLDS, "success driven by SNR, but 3 runs (one per "
              "size) of 16 instances", partial(simulate_collapse, "SNR", values, 3,
                                              checkpoints, 16)),
        World("metric", "holds", HOLDS, "the log-probability rises with width 1.0 in ln D",
              partial(simulate_metric, 1.0, values, runs, checkpoints, n)),
        World("metric", "fails", FAILS, "the log-probability rises with width 4.4 in ln D",
              partial(simulate_metric, 4.4, values, runs, checkpoints, n)),
        World("metric", "underpowered", FAILS, "width 2.6 in ln D, 3 runs",
              partial(simulate_metric, 2.6, values, 3, checkpoints, n)),
        World("induction", "holds", HOLDS, "the in-context-learning score jumps with width 1.0 "
              "in ln D", partial(simulate_metric, 1.0, values, runs, checkpoints, n,
                                 rule="induction")),
        World("induction", "fails", FAILS, "the score rises with width 4.4 in ln D",
              partial(simulate_metric, 4.4, values, runs, checkpoints, n, rule="induction")),
        World("induction", "underpowered", FAILS, "width 2.6 in ln D, 3 runs",
              partial(simulate_metric, 2.6, values, 3, checkpoints, n, rule="induction")),
    ]
    return out
