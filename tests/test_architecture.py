"""The package keeps one shape: every chapter has the same rooms, no module outgrows one sitting,
every chapter page glues its result the same way, and the registry finds every chapter."""

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "scaling_utils"
ROOMS = {"__init__.py", "study.py", "estimators.py", "rules.py", "worlds.py", "text.py"}
GLUE_CELL = "glue_result(result)\nsave_summary(cfg, result)"
MAX_LINES = 450


def chapter_packages() -> list[Path]:
    return sorted(p for p in (PACKAGE / "chapters").iterdir() if (p / "__init__.py").exists())


def test_every_chapter_has_the_same_rooms():
    packages = chapter_packages()
    assert [p.name for p in packages] == ["t1_clt", "t2_bias_variance", "t3_snr", "t4_emergence"]
    for package in packages:
        assert {f.name for f in package.glob("*.py")} == ROOMS, package.name


def test_no_module_outgrows_one_sitting():
    long = {str(p.relative_to(REPO)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_no_chapter_imports_another_chapter():
    for package in chapter_packages():
        for module in package.glob("*.py"):
            for node in ast.walk(ast.parse(module.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module:
                    others = [p.name for p in chapter_packages() if p != package]
                    assert not any(o in node.module for o in others), (module, node.module)


def test_the_registry_lists_every_chapter_in_book_order():
    from scaling_utils.chapters import ChapterResult, chapters

    entries = chapters()
    assert [c.notebook for c in entries] == ["theorem1_clt", "theorem2_bias_variance",
                                             "theorem3_snr", "theorem4_emergence"]
    assert [c.short for c in entries] == ["Thm 1", "Thm 2", "Thm 3", "Thm 4"]
    for package in chapter_packages():
        module = __import__(f"scaling_utils.chapters.{package.name}", fromlist=["study"])
        results = [v for v in vars(module).values()
                   if isinstance(v, type) and issubclass(v, ChapterResult) and v is not ChapterResult]
        assert len(results) == 1 and results[0].PREFIX == package.name[:2], package.name


@pytest.mark.parametrize("notebook", ["theorem1_clt", "theorem2_bias_variance", "theorem3_snr",
                                      "theorem4_emergence"])
def test_every_chapter_page_glues_its_result_with_the_same_two_lines(notebook):
    source = (REPO / "notebooks" / f"{notebook}.md").read_text()
    cells = re.findall(r"```\{code-cell\} ipython3\n(.*?)```", source, re.S)
    bodies = [re.sub(r"^:tags:[^\n]*\n", "", re.sub(r"^---\n.*?\n---\n", "", c, flags=re.S)).strip()
              for c in cells]
    assert GLUE_CELL in bodies, f"{notebook}: its glue cell must read {GLUE_CELL!r}"
