"""Grade handed-in copies of the course notebooks with the exercises' otter-grader checks.

    python scripts/grade.py SUBMISSION.ipynb [...] [--checks teaching/checks]

Each answer cell (the code cell before a ``grader.check("<label>")`` cell) runs in one namespace
per notebook, in order, with numpy (``np``), ``math`` and ``scipy.stats`` (``stats``) already
imported; then that exercise's check runs on what it defined. The rest of the notebook is not
run, so grading takes seconds whatever the chapter computes. An answer cell that raises scores
0 for its exercise, with the error. This runs the submitted code: grade in a sandbox you trust.
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

REPO = Path(__file__).resolve().parent.parent
CHECKS = REPO / "teaching" / "checks"
CHECK_CELL = re.compile(r'^\s*grader\.check\(\s*["\']([\w-]+)["\']\s*\)\s*$')


@dataclass(frozen=True)
class Mark:
    """One exercise of one submission: the points its check gave, of how many, and why not."""
    label: str
    points: float
    possible: float
    error: str = ""


def answer_cells(notebook) -> list[tuple[str, str]]:
    """(label, answer cell's code) for each check cell of a notebook, in order."""
    cells = [c for c in notebook.cells if c.cell_type == "code"]
    pairs = []
    for before, cell in zip(cells, cells[1:]):
        match = CHECK_CELL.match(cell.source)
        if match:
            pairs.append((match[1], before.source))
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
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    exec(compile(code, f"<answer {label}>", "exec"), namespace)
            except Exception as error:  # a broken answer scores 0; the others are still graded
                marks.append(Mark(label, 0.0, _possible(checks / f"{label}.py"),
                                  f"{type(error).__name__}: {error}"))
                continue
            result = grader.check(label, global_env=namespace)
            possible = _possible(checks / f"{label}.py")
            marks.append(Mark(label, result.grade * possible, possible,
                              "" if result.grade == 1 else _first_failure(result)))
    return marks


def _possible(check: Path) -> float:
    """The points a check file gives in all (the sum over its test cases)."""
    return float(sum(float(p) for p in re.findall(r"@test_case\(points=([\d.]+)", check.read_text())))


def _first_failure(result) -> str:
    """The first failing test case's message, on one line."""
    lines = [line.strip() for line in str(result).splitlines()
             if line.strip().startswith(("AssertionError", "TypeError", "NameError", "ValueError"))]
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
