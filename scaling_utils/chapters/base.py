"""What every chapter's ``study`` returns, and how the pages that relate the chapters find them.

A chapter's result holds its tables and its verdicts; the numbers and texts its prose glues come
with their keys already prefixed (``t2_eps``, ``t2_verdict_capacity``), and ``summary()`` is
what :func:`~scaling_utils.report.save_summary` stores for the overview and integration pages.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, ClassVar, Mapping

from ..cache import count_results, describe_counts
from ..verdicts import Verdict


def says_what_was_cached(study: Callable) -> Callable:
    """A chapter's ``study`` that ends by printing how many of its results it read from the
    result cache and how many it computed (so a reader knows what a re-run recomputed)."""
    @functools.wraps(study)
    def counted(cfg):
        with count_results() as counts:
            result = study(cfg)
        print(describe_counts(counts))
        return result
    return counted


@dataclass(frozen=True, kw_only=True)
class ChapterResult:
    """The interface shared by every chapter's result.  A subclass sets ``PREFIX`` and writes
    ``_numbers`` and ``_texts`` (unprefixed keys) and ``summary``; the verdicts' Markdown is
    glued as ``<PREFIX>_verdict_<key>`` for every chapter alike."""

    PREFIX: ClassVar[str] = ""
    verdicts: tuple[Verdict, ...]

    def verdict(self, key: str) -> Verdict:
        """The verdict on claim ``key``."""
        for verdict in self.verdicts:
            if verdict.key == key:
                return verdict
        raise KeyError(f"no verdict {key!r}: this chapter decides "
                       f"{[v.key for v in self.verdicts]}")

    def numbers(self) -> dict:
        """Every number the prose glues, keys prefixed (``t2_eps``)."""
        return {f"{self.PREFIX}_{key}": value for key, value in self._numbers().items()}

    def texts(self) -> dict:
        """Every Markdown text the prose glues, keys prefixed: the verdicts (``verdict_<key>``)
        and their claims as worded by the study (``claim_<key>``) first."""
        verdicts = {f"verdict_{v.key}": v.markdown() for v in self.verdicts}
        verdicts.update({f"claim_{v.key}": v.claim for v in self.verdicts})
        return {f"{self.PREFIX}_{key}": text for key, text in {**verdicts, **self._texts()}.items()}

    def summary(self) -> dict:
        """The headline numbers stored for the pages that relate the theorems."""
        raise NotImplementedError

    def reasons(self) -> dict:
        """Why a stored number is missing (``NaN``), by summary key; empty when none is."""
        return {}

    def _numbers(self) -> dict:
        return {}

    def _texts(self) -> dict:
        return {}


@dataclass(frozen=True)
class Chapter:
    """One chapter in the registry: its notebook, its short label, its simulated worlds
    (``worlds(values)`` at a profile's parameter values) with the version that keys their
    cached error rates, and what each of its verdicts is about (``rules.ROLES``)."""

    notebook: str
    short: str  # "Thm 2"
    title: str  # "2. Loss = entropy + capacity bias + data variance"
    worlds: Callable[[Mapping], list]
    worlds_version: int
    roles: Mapping[str, str]  # verdict key (or family) -> paper's claim, book's check, control
