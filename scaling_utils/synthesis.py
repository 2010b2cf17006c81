"""The pages that relate the chapters (overview, integration): they read the typed results the
chapters stored (``report.load_result``) and compute every sentence they state from them."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from .chapters import chapters
from .verdicts import (CONTRADICTED, PAPER, READING, SUPPORTED, UNDETERMINED,
                       Verdict, role_of, weakest_link)

# The paper's argument (its Appendix E.4) in order: noise falls with context, so the SNR grows
# (with context, with data, with size), so capabilities switch on at thresholds (abruptly, at
# one threshold per capability, because success is a function of the SNR); meanwhile the loss
# approaches its floor.  Each link is the chapter's verdict keys starting with the name.
CHAIN = (("theorem1_clt", "rate"), ("theorem3_snr", "context"), ("theorem3_snr", "data"),
         ("theorem3_snr", "size"), ("theorem4_emergence", "abrupt"),
         ("theorem4_emergence", "shared"), ("theorem4_emergence", "mechanism"),
         ("theorem4_emergence", "collapse"), ("theorem2_bias_variance", "capacity"),
         ("theorem2_bias_variance", "coupling"), ("theorem2_bias_variance", "entropy"))


def chapter_notebooks() -> tuple[str, ...]:
    """The chapters' notebooks in book order: the stored results the overview and integration
    pages read."""
    return tuple(c.notebook for c in chapters())


def chapter_verdicts(profile: str, folder=None, seed: int | None = None
                     ) -> dict[str, tuple[Verdict, ...]]:
    """Every chapter's verdicts, as stored when it last ran with ``profile`` and ``seed``."""
    from .report import load_result

    return {c.notebook: tuple(load_result(c.notebook, profile, folder, seed).verdicts)
            for c in chapters()}


def overview_table(by_chapter: dict[str, tuple[Verdict, ...]]) -> pd.DataFrame:
    """One row per verdict of the book: the theorem, what the verdict is about (the paper's
    claim, the book's check or a control: ``rules.ROLES``), the claim, the verdict, the effect
    with its interval, and what would decide an undetermined one."""
    entries = {c.notebook: c for c in chapters()}
    rows = []
    for name, chapter in by_chapter.items():
        for v in chapter:
            rows.append({"theorem": entries[name].short,
                         "role": role_of(entries[name].roles, v.key), "claim": v.claim,
                         "verdict": v.word,
                         "effect [95 % CI]": effect_text(v),
                         "what would decide it": v.to_decide if v.word == "undetermined" else ""})
    return pd.DataFrame(rows)


def paper_claims(by_chapter: dict[str, tuple[Verdict, ...]]) -> list[Verdict]:
    """The verdicts on the paper's own claims (``rules.ROLES``), in book order: what the
    landing page counts and draws."""
    roles = {c.notebook: c.roles for c in chapters()}
    return [v for name, verdicts in by_chapter.items() for v in verdicts
            if role_of(roles[name], v.key) == PAPER]


def effect_text(v: Verdict) -> str:
    """A verdict's effect with its interval, as the tables print it; an estimate outside its own
    interval is never printed as if the interval held it, and a missing effect gives the
    reason instead."""
    if pd.isna(v.effect):
        return v.reason
    if not v.interval_holds_effect:
        return f"{v.effect:.3g}, {v.interval_words('.3g')}"
    return f"{v.effect:.3g} [{v.ci_low:.3g}, {v.ci_high:.3g}]"


def at_a_glance(table: pd.DataFrame) -> str:
    """The answer in a few lines (Markdown), from the paper's claims in an
    :func:`overview_table`: which held, which failed, and which could not be told, with what
    would tell them.  The book's checks and controls are not counted."""
    claims = table[table.role == PAPER]
    lines = []
    for word, label in ((SUPPORTED, "Supported"), (CONTRADICTED, "Contradicted"),
                        (UNDETERMINED, "Undetermined")):
        rows = claims[claims.verdict == word]
        if not len(rows):
            lines.append(f"- **{label}: none** of the paper's {len(claims)} claims.")
            continue
        items = "; ".join(
            f"{r.theorem}: {r.claim.rstrip('.')} ({r['effect [95 % CI]']}"
            + (f"; would be told by {r['what would decide it'].rstrip('.')})" if word == UNDETERMINED
               else ")") for _, r in rows.iterrows())
        lines.append(f"- **{label}: {len(rows)} of {len(claims)}.** {items}.")
    return "\n".join(lines)


@dataclass(frozen=True)
class SeedComparison:
    """A chapter's verdicts at its own seed beside those at other profile seeds whose results are
    stored (``scripts/sweep.py NOTEBOOK --grid seed=1,2`` stores them): the rules' check on
    training runs, windows and bootstraps that share nothing with the page's."""

    table: pd.DataFrame  # one row per verdict: its key, its role, one column per stored seed
    seed: int  # the page's seed
    others: tuple  # other seeds with stored results, shown in the table
    missing: tuple  # other seeds looked for and not stored
    commits: dict  # seed -> commit that wrote its result
    reading: str  # the sentence the page prints (Markdown)


def seed_comparison(cfg, result, others: int = 2, folder=None) -> SeedComparison:
    """The verdicts of ``result`` (computed with ``cfg``) beside those stored for the first
    ``others`` other seeds with every other value of ``cfg`` the same."""
    from .report import (SummaryCorruptError, SummaryMissingError, load_result, stored_about,
                         stored_name_at)
    from .runinfo import git_commit

    roles = {c.notebook: c.roles for c in chapters()}[cfg.notebook]
    wanted = [s for s in range(cfg.seed + others + 1) if s != cfg.seed][:others]
    columns, commits, missing = {cfg.seed: result.verdicts}, {cfg.seed: git_commit()}, []
    for seed in wanted:
        name = stored_name_at(cfg, seed)
        try:
            columns[seed] = load_result(cfg.notebook, name, folder).verdicts
            commits[seed] = stored_about(cfg.notebook, name, folder)["commit"]
        except (SummaryMissingError, SummaryCorruptError):
            missing.append(seed)
    rows = []
    for v in result.verdicts:
        row = {"verdict": v.key, "role": role_of(roles, v.key)}
        for seed, verdicts in columns.items():
            at = {w.key: w for w in verdicts}.get(v.key)
            row[f"seed {seed}"] = f"{at.word}: {effect_text(at)}" if at else "not decided"
        rows.append(row)
    found = tuple(s for s in columns if s != cfg.seed)
    return SeedComparison(pd.DataFrame(rows), cfg.seed, found, tuple(missing), commits,
                          _seeds_reading(cfg, result.verdicts, columns, commits, missing))


def _listed(seeds) -> str:
    """``1``, ``1 and 2``, ``1, 2 and 3``."""
    seeds = [str(s) for s in seeds]
    return seeds[0] if len(seeds) == 1 else ", ".join(seeds[:-1]) + " and " + seeds[-1]


def _seeds(seeds) -> str:
    return f"seed{'s' if len(seeds) > 1 else ''} {_listed(seeds)}"


def _seeds_reading(cfg, verdicts, columns: dict, commits: dict, missing: list) -> str:
    """Which other seeds confirm the page's verdicts, and how to store the ones missing."""
    sweep = (f"`python scripts/sweep.py {cfg.notebook} --profile {cfg.profile} --grid "
             f"seed={','.join(map(str, missing))}` stores "
             f"{'them' if len(missing) > 1 else 'it'}")
    found = [s for s in columns if s != cfg.seed]
    if not found:
        return (f"No results at profile {_seeds(missing)} are stored beside this build, so its "
                f"verdicts are not yet checked at other seeds; {sweep}, and this page then sets "
                f"them beside seed {cfg.seed}'s.")
    same = [v.key for v in verdicts
            if all({w.key: w.word for w in columns[s]}.get(v.key) == v.word for s in found)]
    differ = [f"`{v.key}`" for v in verdicts if v.key not in same]
    text = (f"At profile {_seeds(found)} the rules give the same verdict as at seed {cfg.seed} "
            f"for {len(same)} of {len(verdicts)} verdicts"
            + (f"; they differ for {_listed(differ)}" if differ else "") + ".")
    outside = _outside_other_intervals(columns)
    if outside:
        text += (" Estimates outside another seed's interval (the intervals then miss a source "
                 "of variance between seeds, or the seeds differ by chance): "
                 + "; ".join(outside) + ".")
    stale = [s for s in found if commits[s] != commits[cfg.seed]]
    if stale:
        text += (f" The results at {_seeds(stale)} were written by another commit "
                 f"({', '.join(commits[s] for s in stale)}; this page: {commits[cfg.seed]}): "
                 "run them again before reading them as a check of these rules.")
    if missing:
        text += f" Profile {_seeds(missing)}: not stored; {sweep}."
    return text


def _outside_other_intervals(columns: dict) -> list[str]:
    """Each verdict's estimate at one seed that lies outside its interval at another seed."""
    found = []
    for seed, verdicts in columns.items():
        for v in verdicts:
            for other, others in columns.items():
                w = {x.key: x for x in others}.get(v.key)
                if other == seed or w is None or not all(
                        math.isfinite(x) for x in (v.effect, w.ci_low, w.ci_high)):
                    continue
                if not w.ci_low <= v.effect <= w.ci_high:
                    found.append(f"`{v.key}` at seed {seed} ({v.effect:.3g}) outside seed "
                                 f"{other}'s [{w.ci_low:.3g}, {w.ci_high:.3g}]")
    return found


def chain(by_chapter: dict[str, tuple[Verdict, ...]]) -> list[Verdict]:
    """The verdicts of the paper's chain of argument, in its order (a claim's other readings
    left out: the chain follows the theorem as stated)."""
    roles = {c.notebook: c.roles for c in chapters()}
    links = []
    for name, prefix in CHAIN:
        links += [v for v in by_chapter[name]
                  if v.key.startswith(prefix) and role_of(roles[name], v.key) != READING]
    return links


@dataclass(frozen=True)
class IntegrationResult:
    """The chain of argument, link by link, and where it breaks first."""

    chain: tuple
    counts: dict  # verdict word -> number of links
    weakest: Verdict | None
    verdicts: tuple = ()  # the page relates verdicts; it adds none of its own


def study(cfg, folder=None) -> IntegrationResult:
    """Read every chapter's stored result at ``cfg.profile`` and ``cfg.seed`` and lay out the
    chain."""
    links = tuple(chain(chapter_verdicts(cfg.profile, folder, cfg.seed)))
    counts = {w: sum(v.word == w for v in links) for w in ("supported", "contradicted",
                                                             "undetermined")}
    return IntegrationResult(links, counts, weakest_link(links))


def weakest_sentence(weakest: Verdict | None) -> str:
    """The sentence that says where the chain breaks (a contradicted link) or is first left
    open (an undetermined one)."""
    if weakest is None:
        return "**Every link is supported** in this run."
    if weakest.word == "contradicted":
        return f"**The chain breaks first at the link \"{weakest.claim}\"**: it is contradicted."
    return (f"**No link is contradicted; the first left open is \"{weakest.claim}\"** "
            f"(undetermined: {weakest.to_decide})")
