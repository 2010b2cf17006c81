"""Simulated worlds: the harness that measures how often a decision rule gives a wrong verdict.

A world draws data sets where a rule's claim holds, fails, or is too weakly sampled to see, and
returns the rule's verdict on each, through the same estimator and interval the chapter uses.
A false ``supported`` is a ``supported`` verdict where the claim fails; a false ``contradicted``
is a ``contradicted`` verdict where it holds.  Each chapter's ``worlds`` module builds its worlds
from these parts; :mod:`scaling_utils.error_rates` runs every chapter's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import pandas as pd
from scipy import stats as sps

from .verdicts import CONTRADICTED, SUPPORTED, UNDETERMINED, Verdict

HOLDS, FAILS = "holds", "fails"
# Data set seeds of world number w start at seed + WORLD_SEED_STRIDE * w: a prime larger than any
# number of data sets per world, so no two worlds of one table ever share a data set.
WORLD_SEED_STRIDE = 1_000_003


def mix_shared(shared, own, share: float):
    """sqrt(share) * shared + sqrt(1 - share) * own: unit-variance noise of which ``share`` of
    the variance is common to every unit that sees ``shared`` (the same sequences are hard for
    every run, the same windows for every context bin, the layers of one window move together)."""
    return math.sqrt(share) * shared + math.sqrt(1 - share) * own


@dataclass(frozen=True)
class World:
    """One simulated world for one rule: whether the claim is true there, and a function that
    draws one data set (from ``seed``) and returns the rule's verdict on it."""

    rule: str  # the verdict key, e.g. "data"
    name: str  # e.g. "holds", "fails", "underpowered"
    truth: str  # HOLDS or FAILS: is the claim true in this world?
    description: str  # what is simulated, in a line
    simulate: Callable[[int], Verdict]
    # optional: many data sets at once (one seed each), the same verdicts as ``simulate`` gives
    # one by one, faster where the estimator works in batches
    simulate_many: Callable[[Sequence[int]], list[Verdict]] | None = None


CHUNK = 50  # simulated data sets between two looks of the sequential stop
FIRST_LOOK = 100  # no false rate is settled below 5 % from fewer (0 in 50 is not: see `settled`)
JOB_SETS = 25  # simulated data sets per job, small enough to keep every worker of a pool busy
FALSE_RATE_BOUND = 0.05  # the most a rule may wrongly support or contradict its claim
STOP_CONFIDENCE = 0.95  # a world stops once its false rate is settled at this confidence


def measure(worlds: Sequence[World], n_sets: int = 200, seed: int = 0, chapter: str = "",
            sequential: bool = True, run_round: Callable | None = None) -> pd.DataFrame:
    """One row per world: the share of its simulated data sets that got each word, the
    false-verdict rates, and a one-sided 95 % Clopper-Pearson upper bound on the false rate.

    When ``sequential``, a world stops once its false rate is :func:`settled` against
    :data:`FALSE_RATE_BOUND`, looked at after :data:`FIRST_LOOK` data sets and every
    :data:`CHUNK` more, else at ``n_sets`` (its row's ``n_sets`` says how many it used).  Each
    round's data sets go out as jobs of at most :data:`JOB_SETS`: ``run_round(jobs)`` gives the
    words for a list of ``(world number, seeds)`` jobs (default: here, one after another)."""
    run_round = run_round or (lambda jobs: [world_words(worlds[w], s) for w, s in jobs])
    seeds = [world_seeds(w, n_sets, seed) for w in range(len(worlds))]
    words: list[list[str]] = [[] for _ in worlds]
    looks = 1 + max(0, -(-(n_sets - FIRST_LOOK) // CHUNK))
    running = list(range(len(worlds)))
    while running:
        jobs = []
        for w in running:
            done = len(words[w])
            end = min(n_sets, FIRST_LOOK if done == 0 else done + CHUNK) if sequential else n_sets
            jobs += [(w, seeds[w][i:min(i + JOB_SETS, end)]) for i in range(done, end, JOB_SETS)]
        for (w, _), got in zip(jobs, run_round(jobs)):
            words[w] += got
        running = [w for w in running if len(words[w]) < n_sets and not settled(
            words[w].count(false_word(worlds[w])), len(words[w]), looks)]
    return pd.DataFrame([rate_row(world, got, chapter) for world, got in zip(worlds, words)])


def settled(false: int, n: int, looks: int = 1, bound: float = FALSE_RATE_BOUND,
            confidence: float = STOP_CONFIDENCE) -> bool:
    """Is a false rate of ``false`` in ``n`` decided against ``bound``: does its Clopper-Pearson
    interval, with the error ``1 - confidence`` split over the ``looks`` looks of a sequential
    run (Bonferroni), lie wholly below or wholly above it?"""
    low, high = rate_interval(false, n, (1 - confidence) / looks)
    return high < bound or low > bound


def world_seeds(w: int, n_sets: int, seed: int) -> list[int]:
    """The seeds of the data sets of world number ``w``."""
    return [seed + WORLD_SEED_STRIDE * w + i for i in range(n_sets)]


def world_words(world: World, seeds: Sequence[int]) -> list[str]:
    """The rule's verdict on the data set of each seed."""
    if world.truth not in (HOLDS, FAILS):
        raise ValueError(f"world {world.name!r} of rule {world.rule!r} has truth "
                         f"{world.truth!r}; use {HOLDS!r} or {FAILS!r}")
    return [v.word for v in (world.simulate_many(seeds) if world.simulate_many
                             else map(world.simulate, seeds))]


def false_word(world: World) -> str:
    """The verdict that is wrong in ``world``: contradicted where the claim holds, supported
    where it fails."""
    return CONTRADICTED if world.truth == HOLDS else SUPPORTED


def rate_row(world: World, got: list[str], chapter: str) -> dict:
    n_sets = len(got)
    share = {word: got.count(word) / n_sets for word in (SUPPORTED, CONTRADICTED, UNDETERMINED)}
    false = got.count(false_word(world))
    return dict(chapter=chapter, rule=world.rule, world=world.name, truth=world.truth,
                description=world.description, n_sets=n_sets, **share,
                false_rate=false / n_sets, false_upper=false_upper(false, n_sets))


def false_upper(k: int, n: int, level: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound for a binomial proportion k / n."""
    return 1.0 if k == n else float(sps.beta.ppf(level, k + 1, n - k))


def rate_interval(k: int, n: int, tail: float = 0.025) -> tuple[float, float]:
    """Two-sided Clopper-Pearson interval for a binomial proportion k / n, ``tail`` outside on
    each side."""
    low = 0.0 if k == 0 else float(sps.beta.ppf(tail, k, n - k + 1))
    return low, false_upper(k, n, 1 - tail)
