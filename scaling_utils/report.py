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
