"""The four theorem chapters, each a package with the same rooms:

- ``study.py``: the chapter's ``study(cfg)`` (validated parameters in) and its result type (a
  :class:`~.base.ChapterResult`: tables, glued numbers and texts, verdicts);
- ``estimators.py``: what the chapter measures, from plain arrays and tables;
- ``rules.py``: the ``decide_*`` functions, their bounds as named constants, the claim texts;
- ``worlds.py``: the simulated worlds on which the rules' false-verdict rates are measured;
- ``text.py``: the phrases and tables the prose reads, built from results.

:func:`chapters` is the one registry that the trust, overview and integration pages read.
"""

from __future__ import annotations

from .base import Chapter, ChapterResult

__all__ = ["Chapter", "ChapterResult", "chapter", "chapters"]


def chapters() -> tuple[Chapter, ...]:
    """Every chapter in book order."""
    from . import t1_clt, t2_bias_variance, t3_snr, t4_emergence

    return tuple(Chapter(package.NOTEBOOK, package.SHORT, package.TITLE, package.worlds,
                         package.WORLDS_VERSION, package.rules.ROLES)
                 for package in (t1_clt, t2_bias_variance, t3_snr, t4_emergence))


def chapter(notebook: str) -> Chapter:
    """The registry entry of ``notebook`` (e.g. ``"theorem2_bias_variance"``)."""
    for entry in chapters():
        if entry.notebook == notebook:
            return entry
    raise KeyError(f"no chapter {notebook!r}; the chapters are "
                   f"{[c.notebook for c in chapters()]}")
