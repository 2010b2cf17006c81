"""The trust page: how often each chapter's decision rules give a wrong verdict, measured on the
simulated worlds of every chapter in the registry (:func:`~.chapters.chapters`), at a
profile's sample sizes.  The harness itself (worlds, rates, bounds) is :mod:`.worlds`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Mapping

import pandas as pd

from .chapters import Chapter, chapters
from .worlds import FALSE_RATE_BOUND, World, measure, rate_interval, world_words

ERROR_RATES_VERSION = 2  # bump when a change here or in a chapter's worlds changes the table
# Values that change how a table is run, not what its worlds draw: left out of its cache key,
# so that a chapter and the trust page at the same profile read one computation.
RUN_ONLY = ("profile", "seed", "device", "executor", "world_sets", "n_sets")


def _chapter_words(job: tuple) -> list[str]:
    """The verdicts on some data sets of one world of a chapter at a profile's values (a
    picklable job: the worlds are closures, so each worker builds them again)."""
    notebook, values, w, seeds = job
    return world_words(chapter_worlds(notebook, values)[w], seeds)


def chapter_worlds(notebook: str, values: Mapping) -> list[World]:
    """The worlds of a chapter's rules at ``values`` (its profile's parameter values)."""
    return list(_registry()[notebook].worlds(values))


def _registry() -> dict[str, Chapter]:
    return {entry.notebook: entry for entry in chapters()}


def chapter_error_rates(notebook: str, values: Mapping, n_sets: int, seed: int = 0,
                        executor=None) -> pd.DataFrame:
    """One row per world of ``notebook``'s rules at ``values`` (:func:`~.worlds.rate_row`),
    cached by the values the worlds can read, so that the chapter and the trust page share one
    computation.  Each world stops once its false rate is settled (:func:`~.worlds.measure`);
    the jobs of each round between two looks run on ``executor``."""
    from .cache import cached
    from .executor import run_jobs

    key = {"notebook": notebook, "n_sets": n_sets, "seed": seed,
           "values": {k: v for k, v in values.items() if k not in RUN_ONLY},
           "version": [ERROR_RATES_VERSION, _registry()[notebook].worlds_version]}

    def compute():
        worlds = chapter_worlds(notebook, values)
        return measure(worlds, n_sets, seed, notebook, run_round=lambda jobs: run_jobs(
            _chapter_words, [(notebook, values, w, seeds) for w, seeds in jobs], executor))

    return cached("error_rates", key, compute)


def error_rate_table(profile: str, n_sets: int = 200, seed: int = 0,
                     executor=None) -> pd.DataFrame:
    """Every chapter's rules, measured at ``profile``'s sample sizes
    (:func:`chapter_error_rates`); the worlds of chapters not yet cached run on ``executor``
    (:mod:`~scaling_utils.executor`; one pool for all)."""
    from .executor import open_executor
    from .profiles import profile_values

    with contextlib.ExitStack() as stack:
        pool = stack.enter_context(open_executor(executor)) if isinstance(executor, str) \
            else executor
        return pd.concat([chapter_error_rates(entry.notebook,
                                              profile_values(entry.notebook, profile),
                                              n_sets, seed, pool)
                          for entry in chapters()], ignore_index=True)




@dataclass(frozen=True)
class ErrorRateResult:
    """The error-rate table of every chapter's rules at one profile, and its verdict."""

    profile: str
    n_sets: int
    table: pd.DataFrame  # one row per (chapter, rule, world), as from `measure`
    worst_rule: str
    worst_world: str
    verdicts: tuple


def study(cfg) -> ErrorRateResult:
    """Run every chapter's rules on their simulated worlds at ``cfg.profile``'s sample sizes."""
    from .verdicts import below

    table = error_rate_table(cfg.profile, cfg.n_sets, cfg.seed, cfg.executor)
    table.insert(1, "chapter_short", table.chapter.map(lambda n: _registry()[n].short))
    worst = table.loc[table.false_rate.idxmax()]
    k = int(round(worst.false_rate * worst.n_sets))
    low, high = rate_interval(k, worst.n_sets)
    calibrated = below("calibrated", "no rule gives a false verdict more than 5 % of the time",
                       float(worst.false_rate), low, high, FALSE_RATE_BOUND,
                       to_decide="more simulated data sets per world (`n_sets`), or a rule with a "
                                 "wider margin for the world at the top of the table",
                       what="the largest false-verdict rate (Clopper-Pearson interval)")
    return ErrorRateResult(cfg.profile, cfg.n_sets, table, f"{worst.chapter_short}: {worst.rule}",
                           str(worst.world), (calibrated,))
