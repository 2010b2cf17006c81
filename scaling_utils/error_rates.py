"""How often each decision rule gives a wrong verdict, measured on simulated worlds.

Every rule of :mod:`scaling_utils.verdicts` is run, through the same estimator and interval the
chapter uses, on many data sets simulated at the profile's sample sizes in worlds where its
claim holds, where it fails, and where the sample is too small to tell.  A false ``supported``
is a ``supported`` verdict in a world where the claim fails; a false ``contradicted`` is a
``contradicted`` verdict where it holds.  Each chapter module offers ``worlds(values)``: its
worlds at a profile's parameter values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from .verdicts import CONTRADICTED, SUPPORTED, UNDETERMINED, Verdict

HOLDS, FAILS = "holds", "fails"
ERROR_RATES_VERSION = 1  # bump when a change here or in a chapter's worlds changes the table
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
    rows = []
    for w, world in enumerate(worlds):
        if world.truth not in (HOLDS, FAILS):
            raise ValueError(f"world {world.name!r} of rule {world.rule!r} has truth "
                             f"{world.truth!r}; use {HOLDS!r} or {FAILS!r}")
        seeds = [seed + 1_000_003 * w + i for i in range(n_sets)]
        got = [v.word for v in (world.simulate_many(seeds) if world.simulate_many
                                else map(world.simulate, seeds))]
        share = {word: got.count(word) / n_sets for word in (SUPPORTED, CONTRADICTED, UNDETERMINED)}
        wrong = CONTRADICTED if world.truth == HOLDS else SUPPORTED
        false = got.count(wrong)
        rows.append(dict(chapter=chapter, rule=world.rule, world=world.name, truth=world.truth,
                         description=world.description, n_sets=n_sets, **share,
                         false_rate=false / n_sets, false_upper=_upper(false, n_sets)))
    return pd.DataFrame(rows)


def _upper(k: int, n: int, level: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound for a binomial proportion k / n."""
    return 1.0 if k == n else float(sps.beta.ppf(level, k + 1, n - k))


def chapter_worlds(notebook: str, values: Mapping) -> list[World]:
    """The worlds of a chapter's rules at ``values`` (its profile's parameter values)."""
    import importlib

    module = importlib.import_module(f"scaling_utils.{CHAPTERS[notebook]}")
    return list(module.worlds(values))


def error_rate_table(profile: str, n_sets: int = 200, seed: int = 0) -> pd.DataFrame:
    """Every chapter's rules, measured at ``profile``'s sample sizes (cached by those values and
    the chapter module's ``WORLDS_VERSION``)."""
    import importlib

    from .cache import cached
    from .profiles import profile_values

    frames = []
    for notebook in CHAPTERS:
        values = profile_values(notebook, profile)
        module = importlib.import_module(f"scaling_utils.{CHAPTERS[notebook]}")
        key = {"notebook": notebook, "values": values, "n_sets": n_sets, "seed": seed,
               "version": [ERROR_RATES_VERSION, getattr(module, "WORLDS_VERSION", 0)]}
        frames.append(cached("error_rates", key, lambda n=notebook, v=values:
                             measure(chapter_worlds(n, v), n_sets, seed, chapter=n)))
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

    table = error_rate_table(cfg.profile, cfg.n_sets, cfg.seed)
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
