"""Glueing computed numbers into the book's prose (myst-nb ``glue``), as plain Python values.

numpy scalars would be stored as ``np.float64(...)`` text, which ``{glue:text}`` cannot format.
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd


def glue_numbers(show: bool = False, **values) -> None:
    """Glue each keyword as a plain int or float (NaN where a part was not run); ``show`` also
    prints them (plain copies of the notebooks, where no glue reaches the text)."""
    from myst_nb import glue

    if show:
        print("  ".join(f"{key} = {value:.4g}" if isinstance(value, float) else f"{key} = {value}"
                        for key, value in values.items()))
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


def glue_text(show: bool = False, **texts: str) -> None:
    """Glue each keyword as Markdown, for ``{glue:md}`` (a plain string would keep its quotes);
    ``show`` also prints them (plain copies of the notebooks)."""
    from IPython.display import Markdown
    from myst_nb import glue

    for key, text in texts.items():
        if show:
            print(f"{key}: {text}")
        glue(key, Markdown(text), display=False)


def glue_result(result, show: bool = False) -> None:
    """Glue every number and text of a chapter's result (:class:`~.chapters.ChapterResult`),
    their keys already prefixed: the one call each chapter's glue cell makes."""
    glue_numbers(show, **result.numbers())
    glue_text(show, **result.texts())


def significant(value, digits: int = 3) -> str:
    """A number as a reader wants it in a table: ``digits`` significant figures, thousands
    separated above 1,000, no trailing zeros; yes or no for a truth value (never Python's
    True/False); text stays as it is."""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if not isinstance(value, numbers.Real):
        return str(value)
    if not np.isfinite(value):
        return "–" if np.isnan(value) else str(value)
    rounded = f"{value:.{digits}g}"
    if isinstance(value, numbers.Integral) or abs(float(rounded)) >= 10 ** digits:
        return f"{value:,.0f}"
    return rounded


def show_table(table, digits: int = 3):
    """A table for the page: index hidden, every number with ``digits`` significant figures,
    headers in words (``gain_per_doubling`` reads "gain per doubling"; the data keep their
    names)."""
    return (table.style.hide(axis="index").format(lambda v: significant(v, digits))
            .format_index(lambda c: c.replace("_", " ") if isinstance(c, str) else c, axis=1))


class SummaryMissingError(FileNotFoundError):
    """A page that reads another notebook's results ran before that notebook."""


class SummaryCorruptError(ValueError):
    """A stored summary that is truncated, edited by hand, or not one at all."""


# Stored with a summary for every value that is not a finite number (strict JSON has no NaN).
NOT_A_NUMBER = "not a finite number in this run (a part the profile skips, or no estimate)"


def _summary_path(notebook: str, profile: str, folder=None):
    from .cache import cache_dir

    return cache_dir(folder) / "summaries" / f"{notebook}-{profile}.json"


def rebuild_command(notebook: str, profile: str, seed: int | None = None) -> str:
    """The command that runs ``notebook`` again with ``profile`` (a stored name: the profile, or
    a variant ``profile-<hash>``, which ``seed`` made when given) and stores its summary."""
    base = profile.split("-")[0]
    if seed is not None and base != profile:
        return f".venv/bin/python -m scaling_utils run --profile {base} {notebook} -p seed={seed}"
    return (f".venv/bin/python scripts/build_book.py --profile {base} --only {notebook} --no-site"
            + ("" if base == profile else " (with the same parameters as the sweep that made it)"))


def _digest(notebook: str, profile: str, values: dict, about: dict) -> str:
    import hashlib
    import json

    record = {"notebook": notebook, "profile": profile, "values": values, "about": about}
    return hashlib.sha256(json.dumps(record, sort_keys=True, allow_nan=False).encode()).hexdigest()


def save_summary(cfg, result=None, *, folder=None, reasons=None, **values) -> None:
    """Store a notebook's headline numbers (plain floats, or strings) for the pages that relate
    the theorems, atomically, under ``<cache>/summaries/<notebook>-<profile>.json``.  ``cfg`` is
    the notebook's validated configuration; a run with other values than its profile's is
    stored beside it under its variant (``-<hash>``), so it never replaces the profile's.
    ``result``, a chapter's typed result, is stored beside it (``.result.npz``, read back by
    :func:`load_result`) and its verdicts go into the summary as ``verdicts: {claim: word}``;
    a :class:`~.chapters.ChapterResult` given without ``values`` stores its own ``summary()``
    with its ``reasons()``.
    The file is strict JSON: a value that is not finite is stored as ``null`` with its reason
    (``reasons[key]``, else :data:`NOT_A_NUMBER`), and a SHA-256 of the values (and of the
    result's bytes) is checked on read, so an edited or truncated file is refused rather than
    read as a result."""
    import hashlib
    import json
    import math

    from .cache import atomic_write_bytes
    from .codec import dumps
    from .verdicts import words

    from .chapters.base import ChapterResult

    if isinstance(result, ChapterResult) and not values:
        values, reasons = result.summary(), {**result.reasons(), **(reasons or {})}
    plain, missing = {}, {}
    for key, value in values.items():
        value = value if isinstance(value, str) else float(value)
        if isinstance(value, float) and not math.isfinite(value):
            value, missing[key] = None, (reasons or {}).get(key, NOT_A_NUMBER)
        plain[key] = value
    name = cfg.profile + (f"-{cfg.variant}" if cfg.variant else "")
    path = _summary_path(cfg.notebook, name, folder)
    if result is not None:
        plain["verdicts"] = words(result.verdicts)
        payload = dumps(result)
        atomic_write_bytes(path.with_suffix(".result.npz"), payload)
        plain["result_sha256"] = hashlib.sha256(payload).hexdigest()
    from .runinfo import git_commit

    about = {"seed": cfg.seed, "commit": git_commit(), "written": _now()}
    record = {"notebook": cfg.notebook, "profile": name, "values": plain, "missing": missing,
              "about": about, "sha256": _digest(cfg.notebook, name, plain, about)}
    atomic_write_bytes(path, json.dumps(record, indent=1, allow_nan=False).encode())


def load_summary(notebook: str, profile: str, folder=None, seed: int | None = None) -> dict:
    """The headline numbers a notebook stored when it last ran with ``profile`` (and ``seed``,
    every other value its profile's; default the profile's seed): ``null`` values come back as
    NaN, ``verdicts`` as ``{claim: word}``; the file is checked against its digest first."""
    values = _read_record(notebook, stored_name(notebook, profile, seed), folder, seed)["values"]
    return {k: float("nan") if v is None else v for k, v in values.items()}


def stored_name(notebook: str, profile: str, seed: int | None = None) -> str:
    """The name a notebook's results are stored under when it ran with ``profile`` and ``seed``
    and every other value its profile's: the profile itself at the profile's seed, else the
    profile with the variant's hash (as :func:`save_summary` names it); without ``seed``,
    ``profile`` as given (a profile, or a stored name such as ``smoke-<hash>``)."""
    from .profiles import NotebookConfig, profile_values

    if seed is None:  # the profile's own results, or a stored name given as it is
        return profile
    values = profile_values(notebook, profile)
    if seed == values["seed"]:
        return profile
    return f"{profile}-{NotebookConfig(notebook, profile, {**values, 'seed': seed}).variant}"


def stored_name_at(cfg, seed: int) -> str:
    """The name the results of ``cfg`` (a notebook's validated configuration) with another
    ``seed`` and every other value the same are stored under (as :func:`save_summary` names
    them)."""
    from .profiles import NotebookConfig

    other = NotebookConfig(cfg.notebook, cfg.profile, {**cfg.values, "seed": seed})
    return cfg.profile + (f"-{other.variant}" if other.variant else "")


def stored_about(notebook: str, name: str, folder=None) -> dict:
    """Where a stored result comes from: its seed, the commit and the time it was written."""
    return _read_record(notebook, name, folder)["about"]


def _read_record(notebook: str, name: str, folder=None, seed: int | None = None) -> dict:
    """A stored summary record, after checking it against its digest."""
    import json

    path = _summary_path(notebook, name, folder)
    rebuild = rebuild_command(notebook, name, seed)
    if not path.exists():
        raise SummaryMissingError(
            f"no results of notebook {notebook!r} stored as {name!r} (looked for {path}). "
            f"Run it first: `{rebuild}` (`make book` runs every notebook in order).")
    try:
        record = json.loads(path.read_text(), parse_constant=_refuse_constant)
        values, about = record["values"], record["about"]
        valid = isinstance(values, dict) and record["sha256"] == _digest(notebook, name, values,
                                                                         about)
    except (ValueError, KeyError, TypeError) as err:
        raise SummaryCorruptError(f"the stored summary {path} cannot be read ({err}): it is "
                                  "truncated, written by an older version, or not a summary. "
                                  f"Rebuild it: `{rebuild}`.") from err
    if not valid:
        raise SummaryCorruptError(f"the stored summary {path} does not match its digest (edited "
                                  f"by hand or damaged). Rebuild it: `{rebuild}`.")
    return record


class SummaryMixedError(ValueError):
    """Stored results that a page would set side by side come from different versions."""


def provenance(notebooks, profile: str, seed: int | None = None, folder=None,
               allow_mixed: bool = False):
    """Which stored results a page reads: per notebook the name it is stored under, its seed,
    the commit and the time it was written.  Results from different commits are refused unless
    ``allow_mixed`` (a page would otherwise set numbers of two versions side by side)."""
    import pandas as pd

    rows = []
    for notebook in notebooks:
        name = stored_name(notebook, profile, seed)
        about = _read_record(notebook, name, folder, seed)["about"]
        rows.append({"results of": notebook, "stored as": name, "seed": about["seed"],
                     "commit": about["commit"], "written (UTC)": about["written"]})
    table = pd.DataFrame(rows)
    commits = sorted(set(table.commit))
    if len(commits) > 1 and not allow_mixed:
        raise SummaryMixedError(
            f"the stored results this page reads come from different commits ({', '.join(commits)}"
            f"):\n{table.to_string(index=False)}\nRun them again from one commit (`make book`), "
            "or pass -p allow_mixed=true to read them anyway.")
    return table


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M")


def load_result(notebook: str, profile: str, folder=None, seed: int | None = None):
    """The typed result (e.g. ``Theorem4Result``) a chapter stored with its summary, checked
    against the digest the summary holds (``seed`` as for :func:`load_summary`)."""
    import hashlib

    from .codec import CodecError, loads

    values = load_summary(notebook, profile, folder, seed)
    profile = stored_name(notebook, profile, seed)
    path = _summary_path(notebook, profile, folder).with_suffix(".result.npz")
    rebuild = rebuild_command(notebook, profile, seed)
    if "result_sha256" not in values or not path.exists():
        raise SummaryMissingError(f"notebook {notebook!r} stored no typed result with profile "
                                  f"{profile!r} (looked for {path}). Run it again: `{rebuild}`.")
    payload = path.read_bytes()
    if hashlib.sha256(payload).hexdigest() != values["result_sha256"]:
        raise SummaryCorruptError(f"the stored result {path} does not match its summary's digest "
                                  f"(edited, damaged or from another run). Rebuild it: `{rebuild}`.")
    try:
        return loads(payload)
    except CodecError as err:
        raise SummaryCorruptError(f"the stored result {path} cannot be read ({err}). "
                                  f"Rebuild it: `{rebuild}`.") from err


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not strict JSON")


def benchmark_report(path):
    """The benchmark table and a line naming the machine, or a sentence saying why there is
    none (not run here, or written by an older version)."""
    try:
        found = load_benchmarks(path)
    except ValueError as err:  # a file from an older version: say so, keep the page
        return str(err)
    if found is None:
        return ("This build ran no benchmarks: `make benchmark` measures them (a few minutes), "
                "and the next build shows them here.")
    table, machine = found
    return table, "measured on " + ", ".join(f"{k}: {v}" for k, v in machine.items())


def load_benchmarks(path) -> tuple[pd.DataFrame, dict] | None:
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
