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
from .worlds import World, rate_interval, rate_row, world_seeds, world_words

ERROR_RATES_VERSION = 1  # bump when a change here or in a chapter's worlds changes the table
CHUNK = 50  # simulated data sets per job of error_rate_table


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


def error_rate_table(profile: str, n_sets: int = 200, seed: int = 0,
                     executor=None) -> pd.DataFrame:
    """Every chapter's rules, measured at ``profile``'s sample sizes (cached by those values and
    the chapter module's ``WORLDS_VERSION``); the worlds of a chapter not yet cached run as
    independent jobs on ``executor`` (:mod:`~scaling_utils.executor`; one pool for all)."""
    from .cache import cached
    from .executor import open_executor, run_jobs
    from .profiles import profile_values

    frames = []
    with contextlib.ExitStack() as stack:
        pool = []  # opened at the first chapter that is not in the cache

        def compute(notebook, values):
            if not pool:
                pool.append(stack.enter_context(open_executor(executor)) if isinstance(
                    executor, str) else executor)
            worlds = chapter_worlds(notebook, values)
            # jobs of CHUNK data sets, so that a slow world does not hold up the others
            starts = range(0, n_sets, CHUNK)
            jobs = [(notebook, values, w, world_seeds(w, n_sets, seed)[i:i + CHUNK])
                    for w in range(len(worlds)) for i in starts]
            words = iter(run_jobs(_chapter_words, jobs, pool[0]))
            return pd.DataFrame([rate_row(world, [word for _ in starts for word in next(words)],
                                      notebook) for world in worlds])

        for entry in chapters():
            notebook = entry.notebook
            values = profile_values(notebook, profile)
            key = {"notebook": notebook, "values": values, "n_sets": n_sets, "seed": seed,
                   "version": [ERROR_RATES_VERSION, entry.worlds_version]}
            frames.append(cached("error_rates", key, lambda n=notebook, v=values: compute(n, v)))
    return pd.concat(frames, ignore_index=True)


FALSE_RATE_BOUND = 0.05  # the most a rule may wrongly support or contradict its claim


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
