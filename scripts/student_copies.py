"""Export student copies of the notebooks: exercises kept, solutions removed, no outputs.

    python scripts/student_copies.py [--out student_notebooks]

Each MyST notebook in notebooks/ becomes <out>/<name>.ipynb; every ``{solution}`` block is
dropped, so a class can work the exercises and the teacher keeps the book with solutions.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import jupytext
import nbformat

REPO = Path(__file__).resolve().parent.parent
# a solution block: an opening fence of 3+ backticks or colons with {solution}, up to the
# same fence on a line of its own
SOLUTION = re.compile(r"^(?P<fence>`{3,}|:{3,})\{solution\}.*?^(?P=fence)[ \t]*$\n?",
                      re.MULTILINE | re.DOTALL)


def strip_solutions(text: str) -> str:
    """Markdown with every solution block removed."""
    return SOLUTION.sub("", text)


def export(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sorted((REPO / "notebooks").glob("*.md")):
        nb = jupytext.read(source)
        nb.metadata.pop("jupytext", None)
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.source = strip_solutions(cell.source)
        target = out / f"{source.stem}.ipynb"
        nbformat.write(nb, target)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "student_notebooks")
    args = parser.parse_args(argv)
    written = export(args.out)
    print(f"{len(written)} student notebooks (solutions removed) in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
