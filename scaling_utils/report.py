"""Glueing computed numbers into the book's prose (myst-nb ``glue``), as plain Python values.

numpy scalars would be stored as ``np.float64(...)`` text, which ``{glue:text}`` cannot format.
"""

from __future__ import annotations

import numbers

import numpy as np


def glue_numbers(**values) -> None:
    """Glue each keyword as a plain int or float (NaN where a part was not run)."""
    from myst_nb import glue

    for key, value in values.items():
        if isinstance(value, (bool, np.bool_)):
            value = int(value)
        elif isinstance(value, numbers.Integral):
            value = int(value)
        elif value is None:
            value = float("nan")
        else:
            value = float(value)
        glue(key, value, display=False)


def glue_text(**texts: str) -> None:
    """Glue each keyword as Markdown, for ``{glue:md}`` (a plain string would keep its quotes)."""
    from IPython.display import Markdown
    from myst_nb import glue

    for key, text in texts.items():
        glue(key, Markdown(text), display=False)


class SummaryMissingError(FileNotFoundError):
    """A page that reads another notebook's results ran before that notebook."""


def _summary_path(notebook: str, profile: str, folder=None):
    from .cache import cache_dir

    return cache_dir(folder) / "summaries" / f"{notebook}-{profile}.json"


def save_summary(cfg, folder=None, **values) -> None:
    """Store a notebook's headline numbers (plain floats, or strings) for the pages that relate
    the theorems, atomically, under ``<cache>/summaries/<notebook>-<profile>.json``.  ``cfg`` is
    the notebook's validated configuration; a run with other values than its profile's is
    stored beside it under its variant (``-<hash>``), so it never replaces the profile's."""
    import json

    from .cache import atomic_write_bytes

    plain = {k: (v if isinstance(v, str) else float(v)) for k, v in values.items()}
    name = cfg.profile + (f"-{cfg.variant}" if cfg.variant else "")
    atomic_write_bytes(_summary_path(cfg.notebook, name, folder), json.dumps(plain, indent=1).encode())


def load_summary(notebook: str, profile: str, folder=None) -> dict:
    """The headline numbers a notebook stored when it last ran with ``profile``."""
    import json

    path = _summary_path(notebook, profile, folder)
    if not path.exists():
        raise SummaryMissingError(
            f"no results of notebook {notebook!r} with profile {profile!r} (looked for {path}). "
            f"Run it first: papermill notebooks/{notebook}.ipynb out.ipynb -p profile {profile} "
            f"(`make book` runs every notebook in order).")
    return json.loads(path.read_text())


def load_benchmarks(path) -> tuple["pd.DataFrame", dict] | None:
    """The table written by ``benchmarks/run.py`` and the machine it ran on, or None when the
    benchmarks have not been run here."""
    import json
    from pathlib import Path

    import pandas as pd

    path = Path(path)
    if not path.exists():
        return None
    report = json.loads(path.read_text())
    if "table" not in report:
        raise ValueError(f"{path} has no benchmark table (written by an older benchmarks/run.py); "
                         "run `make benchmark` again.")
    return pd.DataFrame(report["table"]), report.get("machine", {})
