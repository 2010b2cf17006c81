"""Decision rules: the one place where a measured effect becomes a verdict.

Every verdict in the book is one of three words: ``supported``, ``contradicted`` or
``undetermined``.  A rule reads an effect and its interval (which must already contain every
source of variance the claim depends on: training runs first, then sequences) and compares them
with a bound fixed here, before any data is read.  An ``undetermined`` verdict always says what
would decide it.  The false-verdict rates of every rule are measured on simulated worlds by
:mod:`scaling_utils.error_rates`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

SUPPORTED, CONTRADICTED, UNDETERMINED = "supported", "contradicted", "undetermined"
WORDS = (SUPPORTED, CONTRADICTED, UNDETERMINED)

# The fewest bootstrap replicates that carry a 95 % percentile interval: 40 x 0.025 = 1 replicate
# beyond each end.  A rule whose interval needs more says so (Theorem 3's); the coverage test of
# each bootstrapped interval runs at its rule's count.  Below it a rule gives `undetermined`, and
# the notebooks refuse `n_boot` below it in their first cell.
MIN_REPLICATES = 40
FAILED_INTERVAL = "failed interval"

# What a verdict is about.  Only the paper's own claims are counted as claims tested; the book's
# checks (a variant of a measurement, a form the paper does not state, a relation the book
# composes), its controls (where the answer is known by construction) and the other readings of
# a claim the paper states inconsistently (each tested, the claim counted once) are listed apart.
PAPER, CHECK, CONTROL, READING = "paper's claim", "book's check", "control", "another reading"
ROLES = (PAPER, CHECK, CONTROL, READING)


def role_of(roles: dict, key: str) -> str:
    """The role of verdict ``key`` in a chapter's ``ROLES`` (a key like ``abrupt_copy`` takes
    the role of its family, ``abrupt``, unless it has its own; the longest family named wins:
    ``mechanism_whitened_copy`` is of ``mechanism_whitened``)."""
    parts = key.split("_")
    role = next((roles[f] for f in ("_".join(parts[:i]) for i in range(len(parts), 0, -1))
                 if f in roles), None)
    if role not in ROLES:
        raise KeyError(f"verdict {key!r} has no role in {sorted(roles)}; give it one of {ROLES} "
                       "in its chapter's rules.ROLES.")
    return role


@dataclass(frozen=True)
class Verdict:
    """One claim's verdict: the effect measured, its interval, the rule that decided, and for an
    undetermined verdict what would decide it."""

    key: str  # short name, stored in summaries (``capacity``, ``data``, ...)
    claim: str  # the claim, one sentence
    word: str  # one of WORDS
    effect: float
    ci_low: float
    ci_high: float
    rule: str  # the rule, as stated before the data
    to_decide: str = ""  # for undetermined: what would decide it
    reason: str = ""  # why no effect, or no verdict from it, could be read (else "")
    bound: float = math.nan  # the value the rule compares with (the claimed value for `near`)
    margin: float = 0.0  # half-width of the band around `bound` that `near` accepts

    def __post_init__(self):
        if self.word not in WORDS:
            raise ValueError(f"verdict word must be one of {WORDS}, got {self.word!r}")
        if self.word == UNDETERMINED and not self.to_decide:
            raise ValueError(f"the undetermined verdict {self.key!r} must say what would decide it")

    @property
    def interval_holds_effect(self) -> bool:
        """Whether the effect lies inside its interval, so that "x [lo, hi]" reads true (not when
        the interval failed, or rests on too few replicates to hold anything)."""
        if not all(math.isfinite(v) for v in (self.effect, self.ci_low, self.ci_high)):
            return False
        slack = 1e-9 * max(1.0, abs(self.ci_high - self.ci_low), abs(self.effect))
        return self.ci_low - slack <= self.effect <= self.ci_high + slack

    def interval_words(self, spec: str = ".2f") -> str:
        """What the interval says of an effect it does not hold: no interval, or one beside it
        (its ends formatted with ``spec``)."""
        if not (math.isfinite(self.ci_low) and math.isfinite(self.ci_high)):
            return "no interval"
        return f"outside its own interval [{self.ci_low:{spec}}, {self.ci_high:{spec}}]"

    def markdown(self, digits: int = 2) -> str:
        """``**word**: effect x [lo, hi]; rule ... (To decide it: ...)`` for a verdict box (an
        estimate outside its own interval is given by its reason, never as "x [lo, hi]")."""
        if self.interval_holds_effect:
            text = (f"**{self.word}**: {self.effect:.{digits}f} "
                    f"[{self.ci_low:.{digits}f}, {self.ci_high:.{digits}f}]")
            if self.reason:
                text += f" ({self.reason})"
        elif self.reason.startswith(FAILED_INTERVAL) or not math.isfinite(self.effect):
            text = f"**{self.word}**: {self.reason or 'no estimate'}"  # the reason gives both
        else:
            text = f"**{self.word}**: {self.effect:.{digits}f}, {self.interval_words(f'.{digits}f')}"
            if self.reason:
                text += f" ({self.reason})"
        text += f". Rule: {self.rule}"
        if self.word == UNDETERMINED:
            text += f" To decide it: {self.to_decide}"
        return text


def above(key: str, claim: str, effect: float, ci_low: float, ci_high: float, bound: float,
          to_decide: str, what: str = "the effect", replicates: int | None = None,
          min_replicates: int = MIN_REPLICATES) -> Verdict:
    """Claim: ``effect > bound``.  Supported when the whole interval lies above ``bound``,
    contradicted when it lies wholly below, undetermined when it straddles the bound.  With a
    calibrated 95 % interval each false verdict happens at most 2.5 % of the time.  Every rule
    first asks :func:`interval_failure` whether the interval can carry a verdict at all
    (``replicates``: the bootstrap replicates behind it, None for an interval that has none;
    ``min_replicates``: the fewest its coverage test holds at)."""
    rule = (f"supported if the 95 % interval of {what} lies above {bound:g}, contradicted if it "
            f"lies below, undetermined otherwise.")
    return _decide(key, claim, effect, ci_low, ci_high, rule, to_decide, bound, 0.0,
                   supported=ci_low > bound, contradicted=ci_high < bound, replicates=replicates,
                   min_replicates=min_replicates)


def below(key: str, claim: str, effect: float, ci_low: float, ci_high: float, bound: float,
          to_decide: str, what: str = "the effect", replicates: int | None = None,
          min_replicates: int = MIN_REPLICATES) -> Verdict:
    """Claim: ``effect < bound``; the mirror image of :func:`above`."""
    rule = (f"supported if the 95 % interval of {what} lies below {bound:g}, contradicted if it "
            f"lies above, undetermined otherwise.")
    return _decide(key, claim, effect, ci_low, ci_high, rule, to_decide, bound, 0.0,
                   supported=ci_high < bound, contradicted=ci_low > bound, replicates=replicates,
                   min_replicates=min_replicates)


def near(key: str, claim: str, effect: float, ci_low: float, ci_high: float, claimed: float,
         margin: float, to_decide: str, what: str = "the effect",
         replicates: int | None = None, min_replicates: int = MIN_REPLICATES) -> Verdict:
    """Claim: ``effect == claimed`` within ``margin`` (an equivalence test).  Supported when the
    whole interval lies inside ``claimed ± margin``, contradicted when it misses that band
    entirely, undetermined otherwise (too wide to tell, or straddling an edge)."""
    lo, hi = claimed - margin, claimed + margin
    rule = (f"supported if the 95 % interval of {what} lies inside {claimed:g} ± {margin:g} "
            f"([{lo:g}, {hi:g}]), contradicted if it lies wholly outside, undetermined otherwise.")
    return _decide(key, claim, effect, ci_low, ci_high, rule, to_decide, claimed, margin,
                   supported=inside_band(ci_low, ci_high, claimed, margin),
                   contradicted=ci_high < lo or ci_low > hi, replicates=replicates,
                   min_replicates=min_replicates)


def inside_band(ci_low: float, ci_high: float, claimed: float, margin: float) -> bool:
    """Does the whole interval lie inside ``claimed ± margin``?  (The equivalence reading that
    :func:`near` supports a claim with; a wide interval that merely contains it does not.)"""
    return bool(claimed - margin <= ci_low and ci_high <= claimed + margin)


def unavailable(key: str, claim: str, reason: str, to_decide: str, rule: str = "") -> Verdict:
    """An undetermined verdict for a claim this run could not measure (``reason`` says why)."""
    nan = float("nan")
    return Verdict(key, claim, UNDETERMINED, nan, nan, nan, rule or "no estimate, no verdict.",
                   to_decide, reason)


def one_run_per_cell(key: str, claim: str) -> Verdict:
    """The undetermined verdict of a claim read from a grid with one training run per (P, D)
    cell: no interval can contain the spread between runs."""
    return unavailable(key, claim, "one training run per (P, D) cell: the spread between runs "
                       "cannot enter the interval.",
                       "train two or more seeds per cell (-p n_seeds=3).")


def interval_failure(effect: float, ci_low: float, ci_high: float,
                     replicates: int | None = None, min_replicates: int = MIN_REPLICATES) -> str:
    """Why an interval cannot carry a verdict, or '' when it can: a value that is not finite,
    fewer bootstrap replicates than ``min_replicates``, or an estimate outside its own
    interval (a bootstrap that did not resample what varies, or a fit stuck at a bound)."""
    if not all(math.isfinite(float(v)) for v in (effect, ci_low, ci_high)):
        return "the effect or its interval is not finite"
    if replicates is not None and replicates < min_replicates:
        return (f"only {replicates} bootstrap replicates; this rule's 95 % interval needs at "
                f"least {min_replicates}")
    slack = 1e-9 * max(1.0, abs(ci_high - ci_low), abs(effect))
    if not ci_low - slack <= effect <= ci_high + slack:
        return (f"{FAILED_INTERVAL}: the estimate {effect:.4g} lies outside its own interval "
                f"[{ci_low:.4g}, {ci_high:.4g}]")
    return ""


def _decide(key, claim, effect, ci_low, ci_high, rule, to_decide, bound, margin, supported,
            contradicted, replicates=None, min_replicates=MIN_REPLICATES):
    values = tuple(float(v) for v in (effect, ci_low, ci_high))
    failure = interval_failure(*values, replicates, min_replicates)
    if failure and not all(math.isfinite(v) for v in values):
        return unavailable(key, claim, failure, to_decide, rule)
    if failure:  # the numbers are shown, but no verdict is read from them
        return Verdict(key, claim, UNDETERMINED, *values, rule,
                       f"an interval that can carry a verdict (n_boot >= {min_replicates}, "
                       f"more runs). {to_decide}", failure, float(bound), float(margin))
    word = SUPPORTED if supported else CONTRADICTED if contradicted else UNDETERMINED
    return Verdict(key, claim, word, *values, rule, to_decide,
                   bound=float(bound), margin=float(margin))


def words(verdicts) -> dict[str, str]:
    """``{key: word}``: the form stored in a chapter's summary."""
    return {v.key: v.word for v in verdicts}


def verdict_table(verdicts) -> pd.DataFrame:
    """One row per verdict: claim, verdict, effect and interval, and what would decide it."""
    return pd.DataFrame([{"claim": v.claim, "verdict": v.word, "effect": v.effect,
                          "ci_low": v.ci_low, "ci_high": v.ci_high,
                          "to decide": v.to_decide if v.word == UNDETERMINED else ""}
                         for v in verdicts])


def weakest_link(chain) -> Verdict | None:
    """Where a chain of argument breaks first: its first contradicted link, else its first
    undetermined one; None when every link is supported.  ``chain`` is in the argument's order."""
    for word in (CONTRADICTED, UNDETERMINED):
        for link in chain:
            if link.word == word:
                return link
    return None
