"""Plain notebooks for Jupyter, Colab and Binder: copies for a course (students' without the
solutions, instructors' with them, both with answer cells checked by otter-grader) and the
notebooks that the book's launch buttons open (solutions kept, an install cell first).

    python scripts/student_copies.py [--out student_notebooks]      # student/ and instructor/
    python scripts/student_copies.py --launch                       # launch/book/executed/*.ipynb

The book's MyST-only syntax shows as raw text outside Jupyter Book, so it is rewritten as plain
Markdown: theorem-like blocks and exercises become bold headings with their text, citations
author-year text, cross-references their label, and exercises are numbered as in the book.
Each number glued into the prose becomes the value the last build computed (read from its
executed notebook, with the profile named at the top), or where no build is there its name in
code font, printed by the code cell that computes it (``glue_numbers(show=True, ...)``).
Outputs are not included.

An exercise with a check in ``teaching/checks/<label>.py`` (an otter-grader test file) gets an
answer cell after it, holding the names the check reads (``name = ...`` for students, the
solution's code for instructors), and a cell that runs the check, ``grader.check("<label>")``;
``scripts/grade.py`` grades handed-in copies with the same checks.
"""

from __future__ import annotations

import argparse
import ast
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import jupytext
import nbformat
import yaml

from scaling_utils import teaching
from scaling_utils.profiles import NOTEBOOKS

REPO = Path(__file__).resolve().parent.parent
CHECKS = REPO / teaching.CHECKS
EXECUTED = REPO / "book" / "executed"
# Launch buttons open <path_to_book>/<page>.ipynb of the repository (sphinx-book-theme).
LAUNCH_DIR = REPO / "launch"
LAUNCH_PAGES = "book/executed"
# a solution block: an opening fence of 3+ backticks or colons with {solution}, up to the
# same fence on a line of its own
SOLUTION = re.compile(r"^(?P<fence>`{3,}|:{3,})\{solution\}.*?^(?P=fence)[ \t]*$\n?",
                      re.MULTILINE | re.DOTALL)
# the code of a checked solution: it becomes the answer cell of a course's copies
SOLUTION_CODE = re.compile(r"\n*^```python\n.*?^```[ \t]*$", re.MULTILINE | re.DOTALL)
DIRECTIVE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{(?P<name>[\w:-]+)\}[ \t]*(?P<title>.*?)$\n"
                       r"(?P<body>.*?)^(?P=fence)[ \t]*$\n?", re.MULTILINE | re.DOTALL)
ROLE = re.compile(r"\{(?P<name>[\w:-]+)\}`(?P<text>[^`]*)`")
HEADINGS = {"prf:theorem": "Theorem", "prf:definition": "Definition", "prf:remark": "Remark",
            "prf:assumption": "Assumption", "prf:lemma": "Lemma", "prf:proof": "Proof",
            "prf:proposition": "Proposition",
            "exercise": "Exercise", "solution": "Solution", "admonition": None}
UNTITLED = ("solution",)  # their argument is the label of what they answer, not a title
GLUE_CALL = re.compile(r"\b(glue_numbers|glue_text)\(")
GLUE_RESULT = re.compile(r"\bglue_result\(([^()]*)\)")
PLAIN_NOTE = ("*This is a plain copy of a chapter of the executable companion. Numbers that the "
              "book prints in its text appear here as `names` in code font: each is printed by "
              "the code cell that computes it.*")
GLUED_NOTE = ("*This is a plain copy of a chapter of the executable companion. The numbers in its "
              "text are those the book's last build computed, at the `{profile}` profile; the "
              "code cells compute them again when you run them.*")
PROFILE_KEY = "(profile)"  # where glued_values keeps the profile the build ran with
READER_NOTE = ("*This page computes nothing itself: it reads the results that the chapter "
               "notebooks stored with the same profile. Run the four chapters first, in this "
               "same environment (their launch copies, or `python -m scaling_utils run NOTEBOOK` "
               "in a checkout).*")


def strip_solutions(text: str) -> str:
    """Markdown with every solution block removed."""
    return SOLUTION.sub("", text)


def exercise_numbers() -> dict[str, int]:
    """Each exercise's number as the book prints it (label -> number)."""
    table = teaching.exercises(REPO)
    return dict(zip(table.label, table.number.astype(int)))


@dataclass(frozen=True)
class Answer:
    """What an exercise's answer cell holds: the names its check reads, and the solution's code."""
    label: str
    names: tuple[str, ...]
    solution: str

    def stub(self) -> str:
        return "\n".join(f"{name} = ..." for name in self.names)


def check_names(path: Path) -> tuple[str, ...]:
    """The names an otter-grader check file reads: the arguments of its test cases, in order."""
    names = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef) and node.decorator_list:
            names += [a.arg for a in node.args.args if a.arg not in names]
    return tuple(names)


def answers(checks: Path = CHECKS) -> dict[str, Answer]:
    """Every checked exercise, by label: the names its check reads and the code of its solution
    (the ```python block in the solution's text)."""
    found = {}
    for source in sorted((REPO / "notebooks").glob("*.md")):
        text = source.read_text()
        for match in DIRECTIVE.finditer(text):
            label = match["title"].strip()
            if match["name"] != "solution" or not (checks / f"{label}.py").exists():
                continue
            code = re.search(r"^```python\n(.*?)^```$", match["body"], re.M | re.S)
            if code is None:
                raise ValueError(f"the solution of {label} in {source.name} has no ```python "
                                 "block, which its check in teaching/checks needs")
            found[label] = Answer(label, check_names(checks / f"{label}.py"), code[1].strip())
    missing = {p.stem for p in checks.glob("*.py")} - set(found)
    if missing:
        raise ValueError(f"checks without a solved exercise in notebooks/: {sorted(missing)}")
    return found


def glued_values(executed: Path) -> dict[str, str]:
    """Every value glued in an executed notebook, as its plain text (Markdown for text), and the
    profile it ran with (under :data:`PROFILE_KEY`)."""
    notebook = nbformat.read(executed, 4)
    parameters = notebook.metadata.get("papermill", {}).get("parameters", {})
    values = {PROFILE_KEY: str(parameters.get("profile") or "cpu")}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            scrapbook = output.get("metadata", {}).get("scrapbook", {})
            if scrapbook.get("name"):
                prefix = scrapbook.get("mime_prefix", "")
                data = {k.removeprefix(prefix): v for k, v in output.get("data", {}).items()}
                name = scrapbook["name"]
                values[name] = data.get("text/markdown", data.get("text/plain", ""))
    return values


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


@dataclass(frozen=True)
class Context:
    """What the plain text of one page needs from the rest of the book: author-year labels,
    figure and exercise numbers, and the values the last build glued (empty: print names)."""
    citations: dict
    figures: dict = field(default_factory=dict)
    exercises: dict = field(default_factory=dict)
    glued: dict = field(default_factory=dict)


def plain_markdown(text: str, citations: dict[str, tuple[str, str]] | Context,
                   figures: dict[str, int] | None = None) -> str:
    """``text`` with every MyST directive and role rewritten as plain Markdown (``figures``:
    figure label -> number, for ``{numref}``; or a whole :class:`Context`)."""
    page = citations if isinstance(citations, Context) else Context(citations, figures or {})
    text = re.sub(r"^\([\w-]+\)=[ \t]*\n", "", text, flags=re.MULTILINE)  # targets of {ref}
    text = DIRECTIVE.sub(lambda m: _directive(m, page), text)
    return ROLE.sub(lambda m: _role(m, page), text)


def _glued(key: str, spec: str, page: Context) -> str:
    """A glued value as the book prints it (``{glue:text}`key:spec```), or its name where no
    build is there to read it from."""
    if key not in page.glued:
        return f"`{key}`"
    value = page.glued[key]
    if spec:
        try:
            return format(float(value), spec)
        except ValueError:
            return value
    return value.strip("'") if value.startswith("'") else value


def _directive(match: re.Match, page: Context) -> str:
    name, title = match["name"], match["title"].strip()
    if name.startswith("glue"):  # a glued block: its value, or its name (printed by its cell)
        return _glued(title, "", page) + "\n"
    if name not in HEADINGS:
        raise ValueError(f"no plain-Markdown form for the directive {{{name}}}: add one to "
                         "scripts/student_copies.py")
    label = _label(match)
    body = "\n".join(line for line in match["body"].splitlines() if not re.match(r"^:[\w-]+:", line))
    body = plain_markdown(body.strip("\n"), page)
    heading = HEADINGS[name]
    if name == "admonition":
        heading, title = title or "Note", ""
    if name == "exercise" and label in page.exercises:
        heading = f"Exercise {page.exercises[label]}"
    if name == "solution" and title in page.exercises:
        heading = f"Solution to Exercise {page.exercises[title]}"
    if name in UNTITLED:
        title = ""
    head = f"**{heading}{f' ({title})' if title else ''}.**"
    return f"{head}\n\n{body}\n"


def _role(match: re.Match, page: Context) -> str:
    name, text = match["name"], match["text"]
    if name == "numref":
        label = re.sub(r".*<(.*)>$", r"\1", text)
        if label not in page.figures:
            raise ValueError(f"{{numref}} to {label!r}, which is no figure of this notebook")
        return f"Figure {page.figures[label]}"
    if name.startswith("glue"):
        key, _, spec = text.partition(":")
        return _glued(key, spec, page)
    if name in ("cite", "cite:p", "cite:t"):
        refs = [page.citations.get(k.strip(), (k.strip(), "n.d.")) for k in text.split(",")]
        if name == "cite:t":
            return "; ".join(f"{a} ({y})" for a, y in refs)
        return "(" + "; ".join(f"{a} {y}" for a, y in refs) + ")"
    if name in ("ref", "doc", "prf:ref", "eq"):
        shown = re.match(r"(.*?)\s*<(.*)>$", text)
        return shown.group(1) if shown else f"*{text.split('/')[-1]}*"
    return text


CHECKOUT = "scaling-companion"  # where a launch notebook that reads the repository clones it


def install_cell(repository: str, extra: dict[str, str] | None = None,
                 checkout: bool = False) -> str:
    """The first cell of a launch notebook: installs the package, its notebook tools and the
    offline data packages where they are missing (Colab); a no-op where they are (Binder).
    ``extra``: module -> pinned requirement, installed where the module is missing (a course's
    copies add the grading library).  ``checkout``: the page reads the repository's own files
    (its ``repository`` parameter), so outside a checkout the cell clones it and moves into its
    ``notebooks/`` folder, where the page's relative paths hold."""
    data = [line.strip() for line in (REPO / "requirements" / "data.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    clone = [
        "# This page reads the repository's own files: outside a checkout, fetch one.",
        "import os",
        "if not os.path.exists(os.path.join('..', '_toc.yml')):",
        f"    if not os.path.isdir({CHECKOUT!r}):",
        f"        subprocess.check_call(['git', 'clone', '-q', '--depth', '1', {repository!r}, "
        f"{CHECKOUT!r}])",
        f"    os.chdir(os.path.join({CHECKOUT!r}, 'notebooks'))",
    ] if checkout else []
    return "\n".join([
        "# Install the companion's package and its offline data where they are missing (Colab).",
        "import importlib.util, subprocess, sys",
        'if importlib.util.find_spec("scaling_utils") is None:',
        "    pip = [sys.executable, '-m', 'pip', 'install', '-q']",
        f"    subprocess.check_call(pip + ['scaling-utils[offline] @ git+{repository}'])",
        f"    subprocess.check_call(pip + ['--no-deps', {', '.join(map(repr, data))}])",
    ] + [f"if importlib.util.find_spec({module!r}) is None:\n"
         f"    subprocess.check_call([sys.executable, '-m', 'pip', 'install', '-q', {requirement!r}])"
         for module, requirement in (extra or {}).items()] + clone)



def reads_repository(notebook: str) -> bool:
    """Does the page read the repository's own files (a ``repository`` parameter)?"""
    return any(p.name == "repository" for p in NOTEBOOKS[notebook])


GRADER_CELL = ("# The answer cells below are checked by otter-grader, with the checks in checks/ "
               "beside this notebook.\nimport otter\n\ngrader = otter.Notebook(tests_dir=\"checks\")")
COPIES = ("student", "instructor")  # a course's two copies: answers to fill in, answers filled
NOT_FOR_STUDENTS = ("instructors",)  # pages a course's copies leave out
# the grading library (module -> requirement), pinned as the environment installs it
GRADING = {"otter": next(line.strip() for line in
                         (REPO / "requirements" / "base.txt").read_text().splitlines()
                         if line.startswith("otter-grader=="))}


def _label(block: re.Match) -> str | None:
    """The ``:label:`` option of a directive block, if it has one."""
    found = re.search(r"^:label: ([\w-]+)", block["body"], re.M)
    return found[1] if found else None


def split_after_exercises(text: str, labels) -> list[tuple[str, str | None]]:
    """``text`` cut after each exercise whose label is in ``labels`` (after its solution, where
    one follows): the pieces, each with the label of the exercise it ends with (or None)."""
    pieces, start = [], 0
    blocks = list(DIRECTIVE.finditer(text))
    for i, block in enumerate(blocks):
        label = _label(block)
        if block["name"] != "exercise" or label not in labels:
            continue
        end = block.end()
        after = blocks[i + 1] if i + 1 < len(blocks) else None
        if after and after["name"] == "solution" and after["title"].strip() == label \
                and not text[end:after.start()].strip():
            end = after.end()
        pieces.append((text[start:end], label))
        start = end
    return pieces + [(text[start:], None)] if text[start:].strip() or not pieces else pieces


def plain_notebook(source: Path, keep_solutions: bool, install: str | None = None,
                   copy: str | None = None, glued: dict | None = None,
                   numbers: dict | None = None, checked: dict | None = None):
    """The MyST notebook ``source`` as a plain notebook without outputs. ``copy`` ("student" or
    "instructor") adds each checked exercise's answer cell (names to fill in, or the solution)
    and its check; ``glued`` (key -> text) puts the values of a build into the prose.
    ``numbers`` and ``checked`` (:func:`exercise_numbers`, :func:`answers`) are read from the
    book's sources when not given."""
    nb = jupytext.read(source)
    nb.metadata.pop("jupytext", None)
    figures = {}  # label -> number, in the order the figures appear
    cells = []
    for cell in nb.cells:
        cells.append(cell)
        figure = cell.metadata.get("mystnb", {}).get("figure")
        if cell.cell_type == "code" and figure:
            figures[figure["name"]] = len(figures) + 1
            cells.append(nbformat.v4.new_markdown_cell(
                f"**Figure {len(figures)}.** {figure['caption']}"))
    page = Context(read_citations(), figures,
                   exercise_numbers() if numbers is None else numbers, glued or {})
    checked = {} if not copy else answers() if checked is None else checked
    answered = page.exercises if copy else {}  # every exercise gets an answer cell in a copy
    plain = []
    for cell in cells:
        if cell.cell_type == "code":
            code = GLUE_CALL.sub(lambda m: f"{m[1]}(show=True, ", cell.source)
            cell.source = GLUE_RESULT.sub(lambda m: f"glue_result({m[1]}, show=True)", code)
            plain.append(cell)
            continue
        text = cell.source if keep_solutions else strip_solutions(cell.source)
        if copy:  # a solution's code goes into the answer cell, not beside it
            text = SOLUTION.sub(lambda m: SOLUTION_CODE.sub("", m[0]), text)
        for piece, label in split_after_exercises(text, answered):
            plain.append(nbformat.v4.new_markdown_cell(plain_markdown(piece, page).strip("\n")))
            if label and label not in checked and copy == "student":
                plain.append(nbformat.v4.new_markdown_cell(
                    f"**Your answer to Exercise {page.exercises[label]}** (in words; no automatic "
                    "check):\n\n..."))
            elif label in checked:
                if not any(GRADER_CELL == c.source for c in plain):
                    plain.append(nbformat.v4.new_code_cell(GRADER_CELL))
                answer = checked[label]
                head = f"# Exercise {page.exercises[label]}: " + (
                    "your answer (replace each ...)" if copy == "student" else "a solution")
                body = answer.stub() if copy == "student" else answer.solution
                plain.append(nbformat.v4.new_code_cell(f"{head}\n{body}"))
                plain.append(nbformat.v4.new_code_cell(f'grader.check("{label}")'))
    nb.cells = plain
    first_markdown = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown")
    notes = [GLUED_NOTE.format(profile=glued.get(PROFILE_KEY, "?")) if glued else PLAIN_NOTE] + (
        [READER_NOTE] if "load_summary(" in source.read_text() else [])
    nb.cells.insert(first_markdown + 1, nbformat.v4.new_markdown_cell("\n\n".join(notes)))
    if install:
        nb.cells.insert(0, nbformat.v4.new_code_cell(install))
    for i, cell in enumerate(nb.cells):  # stable ids: the tracked launch notebooks do not churn
        cell.id = f"cell-{i}"
    return nb


def repository_url() -> str:
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    return config["repository"]["url"]


def export(out: Path, keep_solutions: bool = False, install: bool = False,
           copy: str | None = None, executed: Path | None = None) -> list[Path]:
    """Every notebook as a plain copy in ``out``; with ``copy`` (a course's), every page but the
    instructors' own, the grading library in the install cell, the checks beside them and, where
    ``executed`` holds the last build's notebooks, its numbers in the prose."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    numbers, checked = exercise_numbers(), answers() if copy else {}
    repository = repository_url()
    for source in sorted((REPO / "notebooks").glob("*.md")):
        if copy and source.stem in NOT_FOR_STUDENTS:
            continue
        setup = install_cell(repository, GRADING if copy else None,
                             reads_repository(source.stem)) if install else None
        target = out / f"{source.stem}.ipynb"
        built = executed / target.name if executed else None
        glued = glued_values(built) if built and built.exists() else None
        nbformat.write(plain_notebook(source, keep_solutions, setup, copy, glued, numbers, checked),
                       target)
        written.append(target)
    if copy:
        shutil.copytree(CHECKS, out / "checks", dirs_exist_ok=True)
    return written


def export_course(out: Path, executed: Path = EXECUTED) -> dict[str, list[Path]]:
    """A course's copies: ``out/student`` (solutions removed, answer cells to fill in) and
    ``out/instructor`` (solutions kept, answer cells filled), each with ``checks/``."""
    return {copy: export(out / copy, keep_solutions=copy == "instructor", install=True,
                         copy=copy, executed=executed) for copy in COPIES}


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
        written = export_course(args.out)
        built = "with the numbers of the last build" if any(EXECUTED.glob("*.ipynb")) else \
            "with names where the book prints numbers (run `make book` first for the numbers)"
        print(f"{len(written['student'])} notebooks for students (solutions removed) in "
              f"{args.out / 'student'} and for instructors in {args.out / 'instructor'}, "
              f"{built}; each folder's checks/ holds the exercises' checks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
