"""Every page of the smoke-built book in a real browser (Debian's headless Chromium): math
typeset, images load, internal links resolve, no tracebacks or unrendered glue, every figure
numbered with a caption and alt text, no TeX left as text, no True/False in a table, no warning
in a cell's output; a screenshot of each page is kept in $BROWSER_ARTIFACTS
(default: the test's scratch folder)."""

import functools
import http.server
import os
import re
import shutil
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest


CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None)
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed: run `make browser` (apt-get install "
                             "chromium) to enable the browser checks")]


@pytest.fixture(scope="module")
def served(smoke_book):
    root, run = smoke_book
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    site = root / "_build" / "html"
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield site, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _chromium(*args: str) -> str:
    run = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                          "--disable-dev-shm-usage", "--virtual-time-budget=15000", *args],
                         capture_output=True, text=True, timeout=120)
    return run.stdout


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def test_every_page_renders_in_a_browser(served, tmp_path):
    site, base = served
    shots = Path(os.environ.get("BROWSER_ARTIFACTS", tmp_path / "screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html")
                   if p.name not in ("genindex.html", "search.html") and "_static" not in p.parts)
    assert "book/executed/overview.html" in pages or "index.html" in pages
    def render(page):  # the page's DOM after scripts ran, and a screenshot, in one launch
        return _chromium(f"--screenshot={shots / (page.replace('/', '_') + '.png')}",
                         "--window-size=1280,2400", "--dump-dom", f"{base}/{page}")

    with ThreadPoolExecutor(3) as pool:  # browsers wait on the server much of the time
        doms = dict(zip(pages, pool.map(render, pages)))
    problems = []
    for page in pages:
        url = f"{base}/{page}"
        static = (site / page).read_text()
        dom = doms[page]
        n_math = len(re.findall(r'class="[^"]*\bmath\b', static))
        n_typeset = dom.count("<mjx-container")
        if n_math and n_typeset < n_math:
            problems.append(f"{page}: {n_typeset} of {n_math} formulas typeset by MathJax")
        if "Traceback (most recent call last)" in dom or "{glue:" in dom:
            problems.append(f"{page}: a traceback or unrendered glue")
        problems += [f"{page}: {p}" for p in _figure_problems(dom)]
        problems += [f"{page}: {p}" for p in _text_problems(static)]
        for attr, target in re.findall(r'\b(src|href)="([^"#]+)', static):
            if urllib.parse.urlparse(target).scheme or target.startswith("mailto:"):
                continue  # external: never fetched (the tests run offline)
            if _status(urllib.parse.urljoin(url, target)) != 200:
                problems.append(f"{page}: broken {attr} {target}")
    assert not problems, "\n".join(problems[:40])
    assert len(list(shots.glob("*.png"))) == len(pages)


def test_text_problems_finds_what_a_reader_should_never_see():
    clean = '<p>The width is <span class="math">\\(\\ln 9\\)</span>, 2.20.</p>'
    assert _text_problems(clean) == []
    shown = "<p>For copying, <span>&lt;IPython.core.display.Markdown object&gt;</span></p>"
    assert _text_problems(shown) == [
        "a Python object printed as text: &lt;IPython.core.display.Markdown object&gt;"]
    assert _text_problems("<p>falls as $n^{-0.9}$ here</p>")[0].startswith("TeX as text")


def _text_problems(html: str) -> list[str]:
    """Stumbles in what a reader sees: TeX left as text outside the math (a glued value with
    math in it), Python's True/False in a table cell, warnings printed by a cell, and a glued
    object printed as its Python repr (Markdown glued into ``{glue:text}``, not ``{glue:md}``)."""
    problems = []
    body = re.sub(r"<(script|style|pre|code)\b.*?</\1>", " ", html, flags=re.S)
    body = re.sub(r'<span class="math[^"]*">.*?</span>|<div class="math[^"]*">.*?</div>', " ",
                  body, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", body)
    for tex in re.findall(r"\$[^$\s][^$\n]{0,40}\$|\\(?:frac|mathrm|lVert|sqrt|ge|le)\b", text):
        problems.append(f"TeX as text: {tex.strip()[:60]!r}")
    for cell in re.findall(r"<td[^>]*>\s*(True|False)\s*</td>", html):
        problems.append(f"a table cell reads {cell}")
    outputs = re.findall(r'<div class="cell_output[^"]*">(.*?)</div>\s*</div>', html, re.S)
    for warning in re.findall(r"\b(\w*Warning): ", " ".join(outputs)):
        problems.append(f"a {warning} in a cell's output")
    for shown in re.findall(r"&lt;[\w.]+ object(?: at 0x[0-9a-f]+)?&gt;", text):
        problems.append(f"a Python object printed as text: {shown}")
    return problems


def _figure_problems(html: str) -> list[str]:
    """Plots (images the notebooks drew) outside a numbered, captioned figure, or without alt text."""
    problems = []
    for img in re.findall(r"<img\b[^>]*>", html):
        src = re.search(r'src="([^"]*)"', img)
        if not src or "_images/" not in src.group(1):  # logos, icons
            continue
        alt = re.search(r'alt="([^"]*)"', img)
        if not alt or len(alt.group(1).strip()) < 10:
            problems.append(f"image {src.group(1)} has no alt text")
    figures = re.findall(r"<figure\b.*?</figure>", html, re.S)
    plots = sum(1 for img in re.findall(r"<img\b[^>]*>", html) if "_images/" in img)
    captioned = [f for f in figures if "<figcaption" in f and "_images/" in f]
    if plots != len(captioned):
        problems.append(f"{plots} plots but {len(captioned)} captioned figures")
    problems += ["a figure without a number" for f in captioned if 'class="caption-number"' not in f]
    return problems
