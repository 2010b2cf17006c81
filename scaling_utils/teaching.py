"""The course kit's facts, read from the book's sources: every exercise with its number (as the
book prints it), page and kind (checked by a test in ``teaching/checks``, or answered in
words), the notebooks' recorded run times, and which chapters a class can run live."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

CLASS_MINUTES = 90
FITS = f"fits a {CLASS_MINUTES}-minute class"  # the plan's column
# A chapter fits one class when its smoke run takes at most this long on a 2-core machine: it
# runs while the derivation is discussed, and leaves the rest of the class for its exercises.
LIVE_RUN_MINUTES = 15
CHECKS = Path("teaching") / "checks"  # the exercises' checks, in the repository
# an exercise directive (a fence of backticks or colons) with its option lines, one of them its label
EXERCISE = re.compile(r"^(?:`{3,}|:{3,})\{exercise\}[^\n]*\n(?::[\w-]+:[^\n]*\n)*?:label: ([\w-]+)",
                      re.MULTILINE)
# A suggested course, one class per row: its title, the pages it reads (run live at the smoke
# profile), the exercises done in class and those assigned after it (labels; every exercise once).
COURSE = (
    ("The claims, and the question in the title", ("overview", "ceiling"),
     ("ceiling-ex-optimum",), ("ceiling-ex-exponential",)),
    ("Theorem 1: a central limit theorem for representations", ("theorem1_clt",),
     ("t1-ex-neff", "t1-ex-ks"), ("t1-ex-try",)),
    ("Theorem 2: bias, variance and a floor", ("theorem2_bias_variance",),
     ("t2-ex-identity", "t2-ex-seeds"), ("t2-ex-window",)),
    ("Theorem 3: how the signal-to-noise ratio scales", ("theorem3_snr",),
     ("t3-ex-bias",), ("t3-ex-centring", "t3-ex-whitened")),
    ("Theorem 4: emergence at a threshold", ("theorem4_emergence",),
     ("t4-ex-power", "t4-ex-scatter"), ("t4-ex-directions", "t4-ex-layers")),
    ("Putting it together: can the verdicts be trusted?",
     ("integration", "public_evidence", "trust", "errata"),
     ("t5-ex-chain", "trust-ex-margin"), ("t6-ex-floor", "errata-ex-scale")),
)


def toc_pages(root: Path) -> list[str]:
    """The book's pages in the order of its table of contents (names without folder)."""
    import yaml

    config = yaml.safe_load((Path(root) / "_toc.yml").read_text())
    files = [config["root"]] + [chapter["file"] for part in config.get("parts", [])
                                for chapter in part.get("chapters", [])]
    return [Path(f).name for f in files]


def exercises(root: Path) -> pd.DataFrame:
    """One row per exercise in the book's order: ``number`` (Sphinx counts exercises through
    the whole book in the table of contents' order), ``label``, ``page`` and ``checked``
    (whether ``teaching/checks/<label>.py`` checks its answer)."""
    root = Path(root)
    rows = []
    for page in toc_pages(root):
        source = page_source(root, page)
        if source is not None:
            for label in EXERCISE.findall(source.read_text()):
                rows.append({"number": len(rows) + 1, "label": label, "page": page,
                             "checked": (root / CHECKS / f"{label}.py").exists()})
    return pd.DataFrame(rows, columns=["number", "label", "page", "checked"])


def read_times(path: Path) -> dict:
    """The run times recorded by ``benchmarks/run.py --teaching``: ``{"profiles": {profile:
    {notebook: seconds}}, "commit": ..., "written": ..., "cores": ...}``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no recorded run times at {path}: record them with "
                                "`.venv/bin/python benchmarks/run.py --teaching`")
    return json.loads(path.read_text())


def number_ranges(numbers) -> str:
    """Exercise numbers as a reader writes them: 1-3, 7, 9-10."""
    numbers, spans = sorted(int(n) for n in numbers), []
    for n in numbers:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in spans)


def class_plan(times: dict, table: pd.DataFrame, titles: dict[str, str]) -> pd.DataFrame:
    """One row per page the course reads (:data:`COURSE`): its minutes at the smoke and cpu
    profiles (run alone, empty result cache), its exercises, and whether it fits a class
    (smoke run at most :data:`LIVE_RUN_MINUTES`)."""
    smoke, cpu = times["profiles"]["smoke"], times["profiles"]["cpu"]
    taught = {page for _, pages, _, _ in COURSE for page in pages}
    rows = []
    for page, title in titles.items():
        mine = table[table.page == page]
        if page not in taught:
            continue
        runs = page in smoke  # a notebook; the book's own pages (errata) run nothing
        rows.append({
            "page": title,
            "minutes at smoke": round(smoke[page] / 60, 1) if runs else 0.0,
            "minutes at cpu": round(cpu.get(page, float("nan")) / 60, 1) if runs else 0.0,
            "exercises": number_ranges(mine.number) if len(mine) else "none",
            "checked automatically": int(mine.checked.sum()),
            FITS: smoke[page] / 60 <= LIVE_RUN_MINUTES if runs else True,
        })
    return pd.DataFrame(rows)


def page_source(root: Path, page: str) -> Path | None:
    """The source of a page: a notebook's MyST text, or a page of the book's own."""
    return next((p for p in (Path(root) / "notebooks" / f"{page}.md",
                             Path(root) / "book" / f"{page}.md") if p.exists()), None)


def page_titles(root: Path) -> dict[str, str]:
    """Each page of the book (in its order) with the title its source gives (first heading;
    the landing page, whose heading is the book's title, is the overview)."""
    titles = {}
    for page in toc_pages(root)[1:]:
        source = page_source(root, page)
        heading = re.search(r"^# (.+)$", source.read_text(), re.M) if source else None
        titles[page] = heading[1].strip() if heading else page
    return {toc_pages(root)[0]: "Overview (the landing page)", **titles}


def course_plan(table: pd.DataFrame, times: dict, titles: dict[str, str]) -> pd.DataFrame:
    """The suggested course (:data:`COURSE`) with its exercises as the book numbers them and the
    minutes its pages take to run live at the smoke profile."""
    number = dict(zip(table.label, table.number))
    smoke = times["profiles"]["smoke"]
    return pd.DataFrame([{
        "class": i + 1, "topic": topic, "pages": "; ".join(titles.get(p, p) for p in pages),
        "minutes to run at smoke": round(sum(smoke.get(p, 0.0) for p in pages) / 60, 1),
        "in class": number_ranges(number[label] for label in in_class),
        "assigned after": number_ranges(number[label] for label in after),
    } for i, (topic, pages, in_class, after) in enumerate(COURSE)])
