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
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import time
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
READERS = ("integration", "public_evidence", "ceiling", "overview", "instructors",
           "reproducibility")
LAST = READERS[-1]
# A chapter that reads runs another chapter trains waits for it: side by side, both would train
# them.  Theorem 1 reads Theorem 2's largest students, Theorem 3 its whole grid.
NEEDS = {"theorem1_clt": ("theorem2_bias_variance",),
         "theorem3_snr": ("theorem2_bias_variance",)}
# The chapters in the order they start, longest first, so that notebooks run side by side
# finish close together (a chapter not listed starts after these).
LONGEST_FIRST = ("theorem2_bias_variance", "theorem4_emergence", "theorem1_clt", "trust",
                 "theorem3_snr")


def plain_downloads(site: Path) -> None:
    """Each page's ".ipynb" download is its plain copy (the notebook its launch buttons open:
    plain Markdown, solutions kept, an install cell first), not the executed MyST notebook,
    whose glue roles and directives plain Jupyter shows as raw text."""
    downloads = site / "_sources" / "book" / "executed"
    for plain in sorted((REPO / "launch" / "book" / "executed").glob("*.ipynb")):
        if (downloads / plain.name).exists():
            shutil.copyfile(plain, downloads / plain.name)


def notebook_names() -> list[str]:
    """Every notebook, in the order the build starts them."""
    names = sorted(p.stem for p in (REPO / "notebooks").glob("*.md"))
    return _in_order(names)


def _in_order(names) -> list[str]:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST + READERS)}
    return sorted(names, key=lambda n: (n in READERS, rank.get(n, len(LONGEST_FIRST)), n))


def prerequisites(name: str, names) -> set[str]:
    """The notebooks among ``names`` that must be done before ``name`` starts."""
    others = set(names) - {name}
    if name == LAST:
        return others
    if name in READERS:
        return {n for n in others if n not in READERS}
    return set(NEEDS.get(name, ())) & others


def run_all(names: list[str], run_one, jobs: int = 1, started=print,
            finished=print) -> tuple[list[dict], list[str]]:
    """Execute ``names`` (``run_one(name)`` gives a run record), at most ``jobs`` at once, each as
    soon as its :func:`prerequisites` are done, in the order given; after a failure nothing new
    starts.  ``started(name)`` and ``finished(runs so far)`` report.  Returns the runs in the
    order they finished and the names never started."""
    pending, done, runs, running = list(names), set(), [], {}
    with concurrent.futures.ThreadPoolExecutor(max(1, jobs)) as pool:
        while pending or running:
            while len(running) < jobs and all(r["status"] == "ok" for r in runs):
                ready = [n for n in pending if prerequisites(n, names) <= done]
                if not ready:
                    break
                pending.remove(ready[0])
                started(ready[0])
                running[pool.submit(run_one, ready[0])] = ready[0]
            if not running:
                break
            for future in concurrent.futures.wait(running, return_when="FIRST_COMPLETED")[0]:
                done.add(running.pop(future))
                runs.append(future.result())
                finished(runs)
    return runs, pending


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
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="notebooks executed at once (default: 2 where there are two cores)")
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
    names = _in_order(args.only) if args.only else notebook_names()
    if args.jobs > 1:  # threads waiting for work leave the cores to the other notebooks
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        # numpy's OpenBLAS starts a thread per core in every kernel and worker; notebooks side
        # by side then spin against each other (a whitened SNR took 5x as long under load):
        # each notebook's kernels and workers get their share of the cores
        os.environ.setdefault("OPENBLAS_NUM_THREADS", str(max(1, (os.cpu_count() or 1)
                                                              // args.jobs)))

    begin = time.perf_counter()

    def run_one(name: str) -> dict:  # with when it started: two run side by side
        started = round(time.perf_counter() - begin, 1)
        return {**execute(REPO / "notebooks" / f"{name}.md", args.profile, executed, log,
                          args.timeout, args.executor, progress=args.jobs == 1),
                "started_after": started}

    def finished(runs: list[dict]) -> None:  # the log the last page reads, after each notebook
        print(f"  {runs[-1]['notebook']}: {runs[-1]['status']} in {runs[-1]['seconds']} s",
              flush=True)
        log.write_text(json.dumps(runs, indent=1))

    try:
        runs, never = run_all(names, run_one, args.jobs, finished=finished, started=lambda n: print(
            f"executing {n} (profile {args.profile}) ...", flush=True))
    except KeyboardInterrupt:
        print(f"\n{INTERRUPTED}", file=sys.stderr)
        return 130
    failed = [r for r in runs if r["status"] != "ok"]
    if failed:
        print(times_table(runs), flush=True)
        print(f"notebook {failed[0]['notebook']} failed; its traceback is in "
              f"{executed / (failed[0]['notebook'] + '.ipynb')}. "
              f"Stopped: {', '.join(never) or 'nothing'} not run.", file=sys.stderr)
        return 1
    print(times_table(runs), flush=True)
    print(f"notebooks done {time.perf_counter() - begin:.1f} s after the first started "
          f"({args.jobs} at a time)", flush=True)
    if args.no_site:
        return 0
    build = subprocess.run([Path(sys.executable).parent / "jupyter-book", "build", str(root),
                            "--all", "-W", "-n", "--keep-going"], cwd=root)
    if build.returncode != 0:
        print("the book build reported warnings or errors (see above)", file=sys.stderr)
        return build.returncode
    plain_downloads(root / "_build" / "html")
    print(f"\nThe book is at {root / '_build' / 'html' / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
