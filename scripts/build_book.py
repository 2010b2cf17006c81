"""Execute every notebook with papermill under one profile, then build the Jupyter Book.

    python scripts/build_book.py [--profile cpu] [--root DIR] [--only NAME ...] [--no-site]
                                 [--executor SPEC]

Notebook sources are MyST text files in notebooks/; executed copies go to
<root>/book/executed/ (a build output).  The build stops at the first notebook that raises
(exit 1), because with execution off the book would otherwise render the traceback silently,
and the pages after it would read results that were never stored.
``--root`` builds in another folder (the book sources are copied there), which the tests use
so that a smoke build never overwrites the executed cpu-profile notebooks.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scaling_utils.cache import pin_cache_dir  # noqa: E402
from scaling_utils.cli import INTERRUPTED  # noqa: E402
from scaling_utils.executor import execute_notebook  # noqa: E402
from scaling_utils.profiles import NOTEBOOKS, PROFILE_NAMES  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
BOOK_SOURCES = ("_config.yml", "_toc.yml", "book")
# Pages that read what the others stored run after them, in this order; the last one reads the
# run times of all the others.
READERS = ("integration", "public_evidence", "ceiling", "overview", "reproducibility")
LAST = READERS[-1]


def notebook_names() -> list[str]:
    names = sorted(p.stem for p in (REPO / "notebooks").glob("*.md"))
    order = {name: i for i, name in enumerate(READERS, 1)}
    return sorted(names, key=lambda n: order.get(n, 0))


def execute(path: Path, profile: str, executed: Path, log: Path, timeout: int,
            executor: str | None = None, progress: bool = False) -> dict:
    """Run one MyST notebook with papermill and report how it went (``progress``: a bar of
    executed cells with the elapsed time, on stderr)."""
    name = path.stem
    target = executed / f"{name}.ipynb"
    parameters = {"profile": profile}
    if executor and any(p.name == "executor" for p in NOTEBOOKS[name]):
        parameters["executor"] = executor
    if name == LAST:
        parameters["build_log"] = str(log)
    run = execute_notebook(path, target, parameters, cwd=REPO / "notebooks", timeout=timeout,
                           progress=progress)
    if target.exists():  # the page prints the profile itself; hide papermill's cell
        result = nbformat.read(target, 4)
        for cell in result.cells:
            tags = cell.metadata.get("tags", [])
            if "injected-parameters" in tags and "remove-cell" not in tags:
                cell.metadata["tags"] = tags + ["remove-cell"]
        nbformat.write(result, target)
    return {"notebook": name, "profile": profile, "seconds": run["seconds"],
            "status": "ok" if run["error"] is None else f"FAILED: {run['error']}"}


def times_table(runs: list[dict]) -> str:
    """The closing table: each notebook's status and run time, and the total."""
    width = max(len(r["notebook"]) for r in runs)
    lines = [f"\n{'notebook':<{width}}  {'seconds':>8}  status"]
    lines += [f"{r['notebook']:<{width}}  {r['seconds']:>8.1f}  {r['status'][:60]}" for r in runs]
    lines.append(f"{'total':<{width}}  {sum(r['seconds'] for r in runs):>8.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu", choices=PROFILE_NAMES)
    parser.add_argument("--root", type=Path, default=REPO, help="folder to build the book in")
    parser.add_argument("--only", nargs="*", help="execute only these notebooks")
    parser.add_argument("--no-site", action="store_true", help="execute notebooks only")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per notebook cell")
    parser.add_argument("--executor", default=None,
                        help="where the training grids run: processes:N, dask[:ADDRESS] or "
                             "slurm[:PARTITION] (see scaling_utils.executor)")
    args = parser.parse_args(argv)
    pin_cache_dir()  # a relative $SCALING_UTILS_CACHE means from here, not from notebooks/

    root = args.root.resolve()
    if root != REPO:
        for item in BOOK_SOURCES:
            src, dst = REPO / item, root / item
            if src.is_dir():
                shutil.copytree(src, dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns("executed"))
            else:
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
    executed = root / "book" / "executed"
    executed.mkdir(parents=True, exist_ok=True)
    log = executed / "build_log.json"
    runs: list[dict] = []
    names = args.only or notebook_names()
    for i, name in enumerate(names):
        print(f"executing {name} (profile {args.profile}) ...", flush=True)
        try:
            runs.append(execute(REPO / "notebooks" / f"{name}.md", args.profile, executed, log,
                                args.timeout, args.executor, progress=True))
        except KeyboardInterrupt:
            print(f"\n{name}: {INTERRUPTED}", file=sys.stderr)
            return 130
        print(f"  {runs[-1]['status']} in {runs[-1]['seconds']} s", flush=True)
        log.write_text(json.dumps(runs, indent=1))
        if runs[-1]["status"] != "ok":
            print(times_table(runs), flush=True)
            print(f"notebook {name} failed; its traceback is in {executed / (name + '.ipynb')}. "
                  f"Stopped: {', '.join(names[i + 1:]) or 'nothing'} not run.", file=sys.stderr)
            return 1
    print(times_table(runs), flush=True)
    if args.no_site:
        return 0
    build = subprocess.run([Path(sys.executable).parent / "jupyter-book", "build", str(root),
                            "--all", "-W", "-n", "--keep-going"], cwd=root)
    if build.returncode != 0:
        print("the book build reported warnings or errors (see above)", file=sys.stderr)
        return build.returncode
    print(f"\nThe book is at {root / '_build' / 'html' / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
