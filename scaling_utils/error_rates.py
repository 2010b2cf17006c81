"""How often each decision rule gives a wrong verdict, measured on simulated worlds.

Every rule of :mod:`scaling_utils.verdicts` is run, through the same estimator and interval the
chapter uses, on many data sets simulated at the profile's sample sizes in worlds where its
claim holds, where it fails, and where the sample is too small to tell.  A false ``supported``
is a ``supported`` verdict in a world where the claim fails; a false ``contradicted`` is a
``contradicted`` verdict where it holds.  Each chapter module offers ``worlds(values)``: its
worlds at a profile's parameter values.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from .verdicts import CONTRADICTED, SUPPORTED, UNDETERMINED, Verdict

HOLDS, FAILS = "holds", "fails"
ERROR_RATES_VERSION = 1  # bump when a change here or in a chapter's worlds changes the table
CHUNK = 50  # simulated data sets per job of error_rate_table
# The chapters whose modules offer ``worlds(values)``, in book order.
CHAPTERS = {"theorem1_clt": "clt", "theorem2_bias_variance": "bias_variance",
            "theorem3_snr": "snr_scaling", "theorem4_emergence": "emergence"}


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
    return pd.DataFrame([_row(world, _words(world, _seeds(w, n_sets, seed)), chapter)
                         for w, world in enumerate(worlds)])


def _seeds(w: int, n_sets: int, seed: int) -> list[int]:
    """The seeds of the data sets of world number ``w``."""
    return [seed + 1_000_003 * w + i for i in range(n_sets)]


def _words(world: World, seeds: Sequence[int]) -> list[str]:
    """The rule's verdict on the data set of each seed."""
    if world.truth not in (HOLDS, FAILS):
        raise ValueError(f"world {world.name!r} of rule {world.rule!r} has truth "
                         f"{world.truth!r}; use {HOLDS!r} or {FAILS!r}")
    return [v.word for v in (world.simulate_many(seeds) if world.simulate_many
                             else map(world.simulate, seeds))]


def _row(world: World, got: list[str], chapter: str) -> dict:
    n_sets = len(got)
    share = {word: got.count(word) / n_sets for word in (SUPPORTED, CONTRADICTED, UNDETERMINED)}
    wrong = CONTRADICTED if world.truth == HOLDS else SUPPORTED
    false = got.count(wrong)
    return dict(chapter=chapter, rule=world.rule, world=world.name, truth=world.truth,
                description=world.description, n_sets=n_sets, **share,
                false_rate=false / n_sets, false_upper=_upper(false, n_sets))


def _chapter_words(job: tuple) -> list[str]:
    """The verdicts on some data sets of one world of a chapter at a profile's values (a
    picklable job: the worlds are closures, so each worker builds them again)."""
    notebook, values, w, seeds = job
    return _words(chapter_worlds(notebook, values)[w], seeds)


def _upper(k: int, n: int, level: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound for a binomial proportion k / n."""
    return 1.0 if k == n else float(sps.beta.ppf(level, k + 1, n - k))


def chapter_worlds(notebook: str, values: Mapping) -> list[World]:
    """The worlds of a chapter's rules at ``values`` (its profile's parameter values)."""
    import importlib

    module = importlib.import_module(f"scaling_utils.{CHAPTERS[notebook]}")
    return list(module.worlds(values))


def error_rate_table(profile: str, n_sets: int = 200, seed: int = 0,
                     executor=None) -> pd.DataFrame:
    """Every chapter's rules, measured at ``profile``'s sample sizes (cached by those values and
    the chapter module's ``WORLDS_VERSION``); the worlds of a chapter not yet cached run as
    independent jobs on ``executor`` (:mod:`~scaling_utils.executor`; one pool for all)."""
    import importlib

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
            jobs = [(notebook, values, w, _seeds(w, n_sets, seed)[i:i + CHUNK])
                    for w in range(len(worlds)) for i in starts]
            words = iter(run_jobs(_chapter_words, jobs, pool[0]))
            return pd.DataFrame([_row(world, [word for _ in starts for word in next(words)],
                                      notebook) for world in worlds])

        for notebook in CHAPTERS:
            values = profile_values(notebook, profile)
            module = importlib.import_module(f"scaling_utils.{CHAPTERS[notebook]}")
            key = {"notebook": notebook, "values": values, "n_sets": n_sets, "seed": seed,
                   "version": [ERROR_RATES_VERSION, getattr(module, "WORLDS_VERSION", 0)]}
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
    table.insert(1, "chapter_short", table.chapter.map(
        lambda n: "Thm " + n.removeprefix("theorem")[0]))
    worst = table.loc[table.false_rate.idxmax()]
    k = int(round(worst.false_rate * worst.n_sets))
    low = 0.0 if k == 0 else float(sps.beta.ppf(0.025, k, worst.n_sets - k + 1))
    high = 1.0 if k == worst.n_sets else float(sps.beta.ppf(0.975, k + 1, worst.n_sets - k))
    calibrated = below("calibrated", "no rule gives a false verdict more than 5 % of the time",
                       float(worst.false_rate), low, high, FALSE_RATE_BOUND,
                       to_decide="more simulated data sets per world (`n_sets`), or a rule with a "
                                 "wider margin for the world at the top of the table",
                       what="the largest false-verdict rate (Clopper-Pearson interval)")
    return ErrorRateResult(cfg.profile, cfg.n_sets, table, f"{worst.chapter_short}: {worst.rule}",
                           str(worst.world), (calibrated,))
