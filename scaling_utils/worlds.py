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


def measure(worlds: Sequence[World], n_sets: int = 200, seed: int = 0,
            chapter: str = "") -> pd.DataFrame:
    """One row per world: the share of ``n_sets`` simulated data sets that got each word, the
    false-verdict rates, and a one-sided 95 % Clopper-Pearson upper bound on the false rate."""
    return pd.DataFrame([rate_row(world, world_words(world, world_seeds(w, n_sets, seed)), chapter)
                         for w, world in enumerate(worlds)])


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


def rate_row(world: World, got: list[str], chapter: str) -> dict:
    n_sets = len(got)
    share = {word: got.count(word) / n_sets for word in (SUPPORTED, CONTRADICTED, UNDETERMINED)}
    wrong = CONTRADICTED if world.truth == HOLDS else SUPPORTED
    false = got.count(wrong)
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
