"""Grade handed-in copies of the course notebooks with the exercises' otter-grader checks.

    python scripts/grade.py SUBMISSION.ipynb [...] [--checks teaching/checks]

For each ``grader.check("<label>")`` cell, the code cells since the previous check (or since the
cell that makes the grader) are the answer: they run in one namespace per notebook, in order,
with numpy (``np``), ``math`` and ``scipy.stats`` (``stats``) already imported, and then that
exercise's check runs on what they defined. The rest of the notebook is not run, so grading
takes seconds whatever the chapter computes. An answer that raises, or still holds ``...``,
scores 0 for its exercise, with the reason. This runs the submitted code: grade in a sandbox
you trust.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from scaling_utils import teaching

REPO = Path(__file__).resolve().parent.parent
CHECKS = REPO / teaching.CHECKS
CHECK_CELL = re.compile(r'^\s*grader\.check\(\s*["\']([\w-]+)["\']\s*\)\s*$')
GRADER_CELL = re.compile(r"^\s*grader\s*=\s*otter\.Notebook\(", re.MULTILINE)
UNANSWERED = re.compile(r"^\s*\w+\s*=\s*\.\.\.\s*(#.*)?$", re.MULTILINE)


@dataclass(frozen=True)
class Mark:
    """One exercise of one submission: the points its check gave, of how many, and why not."""
    label: str
    points: float
    possible: float
    error: str = ""


def answer_cells(notebook) -> list[tuple[str, str]]:
    """(label, the answer's code) for each check cell of a notebook, in order: the code cells
    since the previous check, or since the cell that makes the grader."""
    pairs, since = [], []
    for cell in (c for c in notebook.cells if c.cell_type == "code"):
        match = CHECK_CELL.match(cell.source)
        if match:
            pairs.append((match[1], "\n\n".join(since)))
            since = []
        elif GRADER_CELL.search(cell.source):
            since = []
        else:
            since.append(cell.source)
    return pairs


def grade(path: Path, checks: Path = CHECKS) -> list[Mark]:
    """Every checked exercise of the notebook at ``path``, graded."""
    import otter

    namespace = {}
    exec("import math\nimport numpy as np\nfrom scipy import stats", namespace)
    marks = []
    with tempfile.TemporaryDirectory() as scratch, contextlib.chdir(scratch):
        grader = otter.Notebook(tests_dir=str(checks.resolve()))
        for label, code in answer_cells(nbformat.read(path, 4)):
            if not (checks / f"{label}.py").exists():
                marks.append(Mark(label, 0.0, 0.0, f"no check named {label} in {checks}"))
                continue
            error = "not answered yet (a name still holds ...)" if UNANSWERED.search(code) else ""
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    exec(compile(code, f"<answer {label}>", "exec"), namespace)
            except Exception as err:  # a broken answer scores 0; the others are still graded
                error = error or f"the answer raised {type(err).__name__}: {err}"
            result = grader.check(label, global_env=namespace)
            score = 0.0 if error else float(result.score)
            marks.append(Mark(label, score, float(result.possible),
                              error or ("" if score == result.possible else _first_failure(result))))
    return marks


def _first_failure(result) -> str:
    """The first failing test case's message, on one line."""
    lines = [line.strip() for line in str(result).splitlines()
             if re.match(r"^\s*\w+(Error|Exception): ", line)]
    return lines[0] if lines else "a check failed"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("submissions", nargs="+", type=Path)
    parser.add_argument("--checks", type=Path, default=CHECKS)
    args = parser.parse_args(argv)
    for path in args.submissions:
        marks = grade(path, args.checks)
        got, possible = sum(m.points for m in marks), sum(m.possible for m in marks)
        print(f"{path}: {got:g} of {possible:g} points")
        for mark in marks:
            print(f"  {mark.label}: {mark.points:g} of {mark.possible:g}"
                  + (f"  ({mark.error})" if mark.error else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
