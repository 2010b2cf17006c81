"""The pages that relate the chapters (overview, integration): they read the typed results the
chapters stored (``report.load_result``) and compute every sentence they state from them."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .chapters import chapters
from .verdicts import (CONTRADICTED, FAILED_INTERVAL, PAPER, READING, SUPPORTED, UNDETERMINED,
                       Verdict, role_of, weakest_link)

# The paper's argument (its Appendix E.4) in order: noise falls with context, so the SNR grows
# (with context, with data, with size), so capabilities switch on at thresholds; meanwhile the
# loss approaches its floor.  Each link is the chapter's verdict keys starting with the name.
CHAIN = (("theorem1_clt", "rate"), ("theorem3_snr", "context"), ("theorem3_snr", "data"),
         ("theorem3_snr", "size"), ("theorem4_emergence", "threshold"),
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


def effect_text(v: Verdict) -> str:
    """A verdict's effect with its interval, as the tables print it; an estimate outside its own
    interval is never printed as if the interval held it, and a missing effect gives the
    reason instead."""
    if pd.isna(v.effect):
        return v.reason
    if v.reason.startswith(FAILED_INTERVAL):
        return f"{v.effect:.3g}, outside its own interval [{v.ci_low:.3g}, {v.ci_high:.3g}]"
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
