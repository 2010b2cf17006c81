"""Student copies keep the exercises and drop every solution."""

import sys
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
import student_copies  # noqa: E402


def test_student_copies_have_exercises_but_no_solutions(tmp_path):
    written = student_copies.export(tmp_path)
    assert {p.stem for p in written} >= {"theorem1_clt", "theorem4_emergence"}
    for path in written:
        text = "\n".join(c.source for c in nbformat.read(path, 4).cells)
        assert "{solution}" not in text, path.name
    t2 = "\n".join(c.source for c in nbformat.read(tmp_path / "theorem2_bias_variance.ipynb", 4).cells)
    assert "{exercise}" in t2 and "telescopes" not in t2  # the solution's wording is gone


def test_strip_solutions_keeps_what_follows():
    text = "before\n````{solution} ex\n:class: dropdown\n\nanswer\n````\nafter\n"
    assert student_copies.strip_solutions(text) == "before\nafter\n"
