"""Every page of the smoke-built book in a real browser (Debian's headless Chromium): math
typeset, images load, internal links resolve, no tracebacks or unrendered glue, every figure
numbered with a caption and alt text, no TeX left as text, no True/False in a table, no warning
in a cell's output; a screenshot of each page is kept in $BROWSER_ARTIFACTS
(default: the test's scratch folder)."""

import functools
import html
import http.server
import io
import json
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
NEEDS_CHROMIUM = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed: run `make browser` (apt-get install "
                             "chromium) to enable the browser checks")


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


# Injected into every page the test serves: once MathJax has typeset, it lists what a reader
# cannot see whole at this width (a formula or table cut off by its box, or running past the
# screen's right edge with no scroll bar to reach it, or a page wider than the screen) in a
# <pre id="layout-report">.
LAYOUT_PROBE = """<script>
window.addEventListener("DOMContentLoaded", () => {
  const ready = window.MathJax && MathJax.startup ? MathJax.startup.promise : Promise.resolve();
  ready.then(() => setTimeout(() => {
    // headless Chromium's window is at least 500 px wide: a narrower width is laid out by
    // narrowing the page itself (below 540 px the theme's layout is the same)
    const asked = Number(new URLSearchParams(location.search).get("width"));
    if (asked) document.documentElement.style.width = asked + "px";
    const problems = [], width = asked || document.documentElement.clientWidth;
    const SLACK = 4;  // px: an italic letter's overhang is not a cut
    const OWN_BOXES = "mjx-container, div.math, div.output, div.cell_output, table, " +
                      ".pst-scrollable-table-container, .table-wrapper, div.highlight, pre";
    const name = (el) => (el.tagName.toLowerCase() + ": " + el.textContent.trim().slice(0, 50));
    const page = document.documentElement;
    if ((asked ? document.body.scrollWidth : page.scrollWidth) > width + SLACK)
      problems.push("the page is wider than the screen (" + document.body.scrollWidth + " px)");
    for (const el of document.querySelectorAll("mjx-container, table")) {
      // a formula's drawn part (its hidden accessible copy has a width of its own)
      const drawn = el.tagName === "TABLE" ? el : (el.querySelector("mjx-math") || el);
      const box = drawn.getBoundingClientRect();
      const right = Math.max(box.right, box.left + drawn.scrollWidth);
      let scrolls = false, clipped = false;
      for (let a = drawn === el ? el : drawn.parentElement; a && a !== document.body;
           a = a.parentElement) {  // the box itself may be what scrolls
        const overflow = getComputedStyle(a).overflowX;
        if (overflow === "visible" || right <= a.getBoundingClientRect().right + SLACK) continue;
        // only the formula's or table's own box may scroll: a page column that scrolls
        // sideways hides the overflow from the reader as much as one that cuts it off
        if ((overflow === "auto" || overflow === "scroll") && a.matches(OWN_BOXES)) scrolls = true;
        else clipped = true;
        break;
      }
      if (clipped) problems.push("cut off: " + name(el));
      else if (!scrolls && right > width + SLACK) problems.push("past the right edge: " + name(el));
    }
    const report = document.createElement("pre");
    report.id = "layout-report";
    report.textContent = JSON.stringify(problems);
    document.body.appendChild(report);
  }, 200));
});
</script>"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send_head(self):  # every page with the layout probe before </body>
        path = Path(self.translate_path(self.path))
        if path.suffix != ".html" or not path.is_file():
            return super().send_head()
        body = path.read_bytes().replace(b"</body>", LAYOUT_PROBE.encode() + b"</body>", 1)
        self.send_response(200)
        self.send_header("Content-type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)


def _layout_problems(dom: str) -> list[str]:
    """What the layout probe found (an empty list), or that it never reported."""
    report = re.search(r'<pre id="layout-report"[^>]*>(.*?)</pre>', dom, re.S)
    if report is None:
        return ["the layout probe did not report (the page's scripts did not finish)"]
    return json.loads(html.unescape(report.group(1)))


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


@pytest.mark.slow
@NEEDS_CHROMIUM
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

    def render_phone(page):  # the DOM at a phone's width, for the layout only
        return _chromium("--window-size=500,2400", "--dump-dom", f"{base}/{page}?width=390")

    with ThreadPoolExecutor(3) as pool:  # browsers wait on the server much of the time
        doms = dict(zip(pages, pool.map(render, pages)))
        phones = dict(zip(pages, pool.map(render_phone, pages)))
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
        problems += [f"{page} at 1280 px: {p}" for p in _layout_problems(dom)]
        problems += [f"{page} at 390 px: {p}" for p in _layout_problems(phones[page])]
        problems += [f"{page}: {p}" for p in _image_problems(site, static)]
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
    assert _text_problems("<p>in 9.0 of 30.0 layers</p>") == [
        "a count printed as a float: '9.0 of 30.0 layers'"]
    assert _text_problems("<table><tr><th>median_exponent</th></tr></table>") == [
        "a table header as a code name: median_exponent"]
    assert _text_problems("<p>-3.01 [-3.08, -3.04] and 0.05 [0.0003, 0.099]</p>") == [
        "an estimate outside its interval: -3.01 [-3.08, -3.04]"]


def test_image_and_layout_problems_find_an_empty_figure_and_a_cut_off_table(tmp_path):
    import numpy as np
    from matplotlib import pyplot as plt

    (tmp_path / "_images").mkdir()
    for name, drawn in (("empty.png", False), ("plot.png", True)):
        fig, ax = plt.subplots(figsize=(4, 3))
        ax.axis("off")
        if drawn:
            ax.axis("on")
            ax.plot(np.linspace(0, 1, 50), np.random.default_rng(0).random(50), lw=3)
        fig.savefig(tmp_path / "_images" / name)
        plt.close(fig)
    page = '<img src="../../_images/empty.png"><img src="../../_images/plot.png">'
    assert [p.split(" (")[0] for p in _image_problems(tmp_path, page)] == [
        "an empty figure: ../../_images/empty.png"]
    assert _layout_problems('<pre id="layout-report">["cut off: table: a"]</pre>') == [
        "cut off: table: a"]
    assert _layout_problems("<p>no report</p>")[0].startswith("the layout probe did not report")


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
    for whole in re.findall(rf"\b\d+\.0+ (?:of \d+\.?\d* )?(?:{COUNTED})\b", text):
        problems.append(f"a count printed as a float: {whole!r}")
    for header in re.findall(r"<th[^>]*>\s*([a-z][a-z0-9]*(?:_[a-z0-9]+)+)\s*</th>", html):
        problems.append(f"a table header as a code name: {header}")
    for estimate, low, high in re.findall(rf"({NUMBER}) \[({NUMBER}), ({NUMBER})\]", text):
        value, low, high = (float(v.replace(",", "").replace("−", "-")) for v in (estimate, low, high))
        if low <= high and not low <= value <= high:
            problems.append(f"an estimate outside its interval: {estimate} [{low:g}, {high:g}]")
    return problems


# nouns a whole number counts, and a number as the pages print it
COUNTED = ("layers?|runs?|seeds?|sizes?|windows?|tokens|steps|classes|heads|checkpoints|students"
           "|worlds|sets|pages|notebooks|exercises|replicates|sequences|attention layers")
NUMBER = r"[−-]?\d[\d,]*(?:\.\d+)?(?:e[−-]?\d+)?"


def _image_problems(site: Path, html: str) -> list[str]:
    """Figures with nothing drawn: an image where under 1 % of the pixels differ from the
    background (a figure left with a line of text where its data were not there). Empty axes
    with ticks and labels draw about 2 %: this check does not see them."""
    import numpy as np
    from matplotlib import image

    problems = []
    for src in sorted(set(re.findall(r'<img\b[^>]*src="([^"]*_images/[^"]+\.png)"', html))):
        pixels = image.imread(site / "_images" / src.split("_images/", 1)[1])
        flat = pixels[..., :3].reshape(-1, 3)
        background = np.median(flat, axis=0)
        drawn = np.mean(np.abs(flat - background).max(axis=1) > 0.1)
        if drawn < EMPTY_FIGURE:
            problems.append(f"an empty figure: {src} ({drawn:.1%} of its pixels drawn)")
    return problems


EMPTY_FIGURE = 0.01  # the share of drawn pixels below which a figure shows nothing



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
