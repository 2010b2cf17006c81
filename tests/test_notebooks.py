"""The notebooks through papermill and the book build, as a user runs them (smoke profile)."""

import json
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import papermill
import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
import build_book  # noqa: E402


@pytest.mark.slow
def test_smoke_book_builds_without_warnings(smoke_book):
    root, run = smoke_book
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert f"The book is at {root / '_build' / 'html' / 'index.html'}" in run.stdout
    log = json.loads((root / "book" / "executed" / "build_log.json").read_text())
    assert {r["notebook"] for r in log} == set(build_book.notebook_names())
    assert all(r["status"] == "ok" and r["profile"] == "smoke" for r in log)


@pytest.mark.slow
def test_theorem1_page_has_glued_numbers_offline_math_and_no_errors(smoke_book):
    root, _ = smoke_book
    notebook = nbformat.read(root / "book" / "executed" / "theorem1_clt.ipynb", 4)
    assert not notebook.metadata.papermill.get("exception")
    glued = {o.metadata["scrapbook"]["name"] for c in notebook.cells if c.cell_type == "code"
             for o in c.get("outputs", []) if "scrapbook" in o.get("metadata", {})}
    source = (REPO / "notebooks" / "theorem1_clt.md").read_text()
    import re
    quoted = set(re.findall(r"\{glue:(?:text|md)\}`(t1_\w+)", source))
    assert quoted and quoted <= glued, quoted - glued
    values = {o.metadata["scrapbook"]["name"]: o.data.get("text/plain") for c in notebook.cells
              if c.cell_type == "code" for o in c.get("outputs", [])
              if "scrapbook" in o.get("metadata", {})}
    not_finite = [k for k in quoted if values[k] in ("nan", "inf", "-inf")]
    assert not not_finite, f"glued values that are not finite in the smoke build: {not_finite}"
    html = (root / "_build" / "html" / "book" / "executed" / "theorem1_clt.html").read_text()
    assert "_static/mathjax/tex-mml-chtml.js" in html
    assert "cdn.jsdelivr" not in html and "Traceback" not in html
    assert (root / "_build" / "html" / "_static" / "mathjax" / "tex-mml-chtml.js").exists()
    assert "profile: smoke" in html




@pytest.mark.long
def test_mistyped_parameter_stops_the_notebook_with_the_fix(tmp_path):
    nb = jupytext.read(REPO / "notebooks" / "theorem1_clt.md")
    nb.metadata.pop("jupytext", None)
    nbformat.write(nb, tmp_path / "t1.ipynb")
    with pytest.raises(papermill.PapermillExecutionError) as err:
        papermill.execute_notebook(tmp_path / "t1.ipynb", tmp_path / "out.ipynb",
                                   parameters={"profile": "smoke", "n_window": 3},
                                   cwd=REPO / "notebooks", kernel_name="python3",
                                   progress_bar=False)
    assert err.value.ename == "ParameterError"
    assert "did you mean 'n_windows'" in err.value.evalue


def test_a_failing_notebook_fails_the_build(tmp_path):
    (tmp_path / "broken.md").write_text(
        "---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\n"
        "kernelspec:\n  display_name: Python 3\n  language: python\n  name: python3\n---\n\n"
        "# Broken\n\n```{code-cell} ipython3\n:tags: [parameters]\nprofile = None\n```\n\n"
        "```{code-cell} ipython3\nraise RuntimeError('boom')\n```\n")
    result = build_book.execute(tmp_path / "broken.md", "smoke", tmp_path, tmp_path / "log.json", 60)
    assert result["status"].startswith("FAILED") and "boom" in result["status"]


PAGES = ("theorem2_bias_variance", "theorem3_snr", "theorem4_emergence", "integration",
         "public_evidence", "ceiling", "overview", "trust")


@pytest.mark.slow
@pytest.mark.parametrize("name", PAGES)
def test_every_page_quotes_only_glued_values(smoke_book, name):
    import re
    root, _ = smoke_book
    notebook = nbformat.read(root / "book" / "executed" / f"{name}.ipynb", 4)
    assert not notebook.metadata.papermill.get("exception")
    glued = {o.metadata["scrapbook"]["name"] for c in notebook.cells if c.cell_type == "code"
             for o in c.get("outputs", []) if "scrapbook" in o.get("metadata", {})}
    source = (REPO / "notebooks" / f"{name}.md").read_text()
    quoted = set(re.findall(r"\{glue:(?:text|md)\}`(\w+)", source))
    assert quoted and quoted <= glued, quoted - glued
    html = (root / "_build" / "html" / "book" / "executed" / f"{name}.html").read_text()
    assert "Traceback" not in html and "profile: smoke" in html
    # no widget (a progress bar drawn by tqdm.auto where ipywidgets is installed): the book
    # shows text, and a widget's script would be fetched from a CDN
    assert "widgets" not in notebook.metadata and "cdn.jsdelivr" not in html


@pytest.mark.slow
def test_the_instructors_page_numbers_exercises_as_the_chapters_print_them(smoke_book):
    import re

    from scaling_utils import teaching
    root, _ = smoke_book
    html = root / "_build" / "html" / "book" / "executed"
    table = teaching.exercises(REPO)
    for page, mine in table.groupby("page"):
        path = html / f"{page}.html"
        path = path if path.exists() else html.parent / f"{page}.html"  # the book's own pages
        shown = [int(n) for n in re.findall(r'<span class="caption-number">Exercise (\d+)',
                                            path.read_text())]
        assert shown == sorted(mine.number.astype(int)), page
    instructors = (html / "instructors.html").read_text()
    assert "Traceback" not in instructors and "t1-ex-neff" in instructors


def test_pages_that_read_stored_results_run_after_the_chapters():
    order = build_book.notebook_names()
    assert order[-6:] == ["integration", "public_evidence", "ceiling", "overview",
                          "instructors", "reproducibility"]
    assert {"theorem3_snr", "theorem4_emergence", "trust"} <= set(order[:-6])


def test_the_build_stops_at_the_first_failing_notebook(tmp_path, monkeypatch, capsys):
    ran = []

    def fake_execute(path, profile, executed, log, timeout, executor=None, progress=False):
        ran.append(path.stem)
        return {"notebook": path.stem, "profile": profile, "seconds": 0.0,
                "status": "FAILED: boom" if path.stem == "theorem2_bias_variance" else "ok"}

    monkeypatch.setattr(build_book, "execute", fake_execute)
    code = build_book.main(["--profile", "smoke", "--root", str(tmp_path), "--no-site", "--jobs",
                            "1", "--only", "theorem4_emergence", "theorem2_bias_variance",
                            "theorem3_snr"])
    # Theorem 2 starts first (the longest) and fails: Theorem 3, which reads its runs, never starts
    assert code == 1 and ran == ["theorem2_bias_variance"]
    out = capsys.readouterr()
    assert "Stopped: theorem4_emergence, theorem3_snr not run" in out.err
    assert "theorem2_bias_variance       0.0  FAILED: boom" in out.out  # the closing table


def test_notebooks_run_side_by_side_only_after_the_runs_they_read():
    """Two at a time: a chapter starts once the chapter whose runs it reads is done, the reading
    pages once every chapter is, and the last page (it reads the run times) alone at the end."""
    import threading
    import time

    names = build_book.notebook_names()
    lock, live, seen = threading.Lock(), set(), []

    def run_one(name):
        with lock:
            seen.append((name, frozenset(live)))
            live.add(name)
        time.sleep(0.01)
        with lock:
            live.discard(name)
        return {"notebook": name, "status": "ok", "seconds": 0.0}

    runs, never = build_book.run_all(names, run_one, jobs=2, started=lambda n: None,
                                     finished=lambda runs: None)
    assert never == [] and sorted(r["notebook"] for r in runs) == sorted(names)
    order = [r["notebook"] for r in runs]
    for name, beside in seen:
        needs = build_book.prerequisites(name, names)
        assert needs <= set(order[:order.index(name)]) and not needs & beside, name
        assert len(beside) <= 1
    assert order[-1] == build_book.LAST and seen[-1][1] == frozenset()
    assert build_book.prerequisites("theorem3_snr", names) == {"theorem2_bias_variance"}


def test_parameter_cells_carry_one_line_help_from_the_profiles():
    import re
    from scaling_utils.profiles import NOTEBOOKS, parameters_cell
    for name in NOTEBOOKS:
        text = (REPO / "notebooks" / f"{name}.md").read_text()
        cell = re.search(r":tags: \[parameters\]\n\n(.*?)\n```", text, re.S).group(1)
        assert cell == parameters_cell(name), f"{name}: regenerate with profiles.parameters_cell"
    assert "sizes: tuple = None  # student sizes" in parameters_cell("theorem2_bias_variance")


def test_papermill_reads_every_parameter_with_its_help():
    # a line papermill cannot parse is dropped from `papermill --help-notebook` with a warning
    from papermill.translators import PythonTranslator
    from scaling_utils.profiles import NOTEBOOKS, parameters_cell
    for name, specs in NOTEBOOKS.items():
        read = PythonTranslator.inspect({"source": parameters_cell(name)})
        assert [p.name for p in read] == [s.name for s in specs], name
        assert all(p.help for p in read), name


@pytest.mark.slow
def test_every_launch_button_opens_a_tracked_notebook_with_its_install_cell(smoke_book):
    import re
    from urllib.parse import parse_qs, unquote, urlparse
    root, run = smoke_book
    assert run.returncode == 0, run.stderr[-2000:]
    tracked = set(subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                                 check=True).stdout.split())
    untracked_ok = set(subprocess.run(["git", "ls-files", "--others", "--exclude-standard"], cwd=REPO,
                                      capture_output=True, text=True, check=True).stdout.split())
    pages = sorted((root / "_build" / "html" / "book" / "executed").glob("*.html"))
    targets = {}
    for page in pages:
        html = page.read_text()
        colab = re.findall(r'href="(https://colab\.research\.google\.com/github/[^"]+)"', html)
        binder = re.findall(r'href="(https://mybinder\.org/v2/gh/[^"]+)"', html)
        assert len(colab) == 1 and len(binder) == 1, page.name
        path = unquote(colab[0]).split("/blob/main/", 1)[1]
        assert parse_qs(urlparse(unquote(binder[0].replace("&amp;", "&"))).query)["urlpath"] == [f"tree/{path}"]
        targets[page.stem] = path
    assert set(targets) == {p.stem for p in (REPO / "notebooks").glob("*.md")}
    for name, path in targets.items():
        assert path == f"launch/book/executed/{name}.ipynb"
        assert path in tracked | untracked_ok, f"{path} is not in the repository"
        first = nbformat.read(REPO / path, 4).cells[0]
        assert "pip" in first.source and "scaling_utils" in first.source
    assert (REPO / "binder" / "postBuild").exists() and (REPO / "binder" / "requirements.txt").exists()


@pytest.mark.slow
def test_the_reproducibility_page_credits_the_model_and_text(smoke_book):
    root, _ = smoke_book
    html = " ".join((root / "_build" / "html" / "book" / "executed" / "reproducibility.html")
                    .read_text().split())
    for credit in ("SmolLM2-135M-Instruct", "Apache License 2.0", "Wikipedia",
                   "Creative Commons Attribution-ShareAlike 3.0", "public domain", "MIT licence"):
        assert credit in html, credit


def test_every_reference_says_where_to_find_it_and_every_citation_has_one():
    import re
    bib = (REPO / "book" / "references.bib").read_text()
    entries = dict(re.findall(r"@\w+\{([^,]+),(.*?)\n\}", bib, re.S))
    for key, body in entries.items():
        assert re.search(r"^\s*(url|doi|isbn)\s*=", body, re.M), f"{key}: no url, doi or isbn"
    cited = {key.strip() for source in (REPO / "notebooks").glob("*.md")
             for keys in re.findall(r"\{cite(?::[pt])?\}`([^`]+)`", source.read_text())
             for key in keys.split(",")}
    assert cited and cited <= set(entries), cited - set(entries)


@pytest.mark.slow
def test_each_pages_notebook_download_is_its_plain_copy(smoke_book):
    root, _ = smoke_book
    downloads = root / "_build" / "html" / "_sources" / "book" / "executed"
    plain = REPO / "launch" / "book" / "executed"
    for name in ("theorem2_bias_variance.ipynb", "instructors.ipynb"):
        assert (downloads / name).read_bytes() == (plain / name).read_bytes()
        assert "{glue" not in (downloads / name).read_text()
    html = (root / "_build" / "html" / "book" / "executed" / "theorem2_bias_variance.html").read_text()
    assert "_sources/book/executed/theorem2_bias_variance.ipynb" in html
