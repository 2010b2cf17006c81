"""Run one notebook over a grid of parameter values, on this machine or a cluster.

    python scripts/sweep.py theorem1_clt --profile gpu \
        --grid model=EleutherAI/pythia-70m,EleutherAI/pythia-160m --set max_length=1024 \
        --executor dask:tcp://head:8786 --out sweeps/pythia

Every combination is validated before anything runs (a mistyped name or value stops the sweep
with the notebook's own message), then executed with papermill by the executor
(:mod:`scaling_utils.executor`).  Executed notebooks go to ``--out`` with ``index.json``, which
lists each run's parameters, status and time.  A run whose values differ from its profile stores
its summary under its own variant, so a sweep never replaces the book's results.  Values are
read as YAML, like papermill's ``-y`` (see ``--help`` for list values).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from scaling_utils.cache import atomic_write_bytes, pin_cache_dir  # noqa: E402
from scaling_utils.cli import UsageError, parse_assignment, validate  # noqa: E402
from scaling_utils.executor import execute_notebook, run_jobs  # noqa: E402
from scaling_utils.profiles import NOTEBOOKS, ParameterError  # noqa: E402


def combinations(profile: str, fixed: list[str], grid: list[str]) -> list[dict]:
    base = {"profile": profile}
    for text in fixed:
        name, (value,) = parse_assignment(text, many=False)
        base[name] = value
    axes = [parse_assignment(text, many=True) for text in grid]
    names = [name for name, _ in axes]
    return [{**base, **dict(zip(names, values))}
            for values in itertools.product(*(values for _, values in axes))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="values are YAML, as with papermill's -y:\n"
               "  --grid seed=0,1,2                      three runs\n"
               "  --grid \"sizes=[[1,8,2],[1,16,2]];[[2,64,4],[2,128,4]]\"\n"
               "                                         two runs, each with two sizes\n"
               "                                         (';' separates values that hold commas)\n"
               "  --set \"D=[65536, 1048576]\"        a list shared by every run\n"
               "every combination is validated (names, types, list shapes, input files, the\n"
               "cache) before any runs.")
    parser.add_argument("notebook", choices=sorted(NOTEBOOKS))
    parser.add_argument("--profile", default="cpu", choices=["smoke", "cpu", "gpu"])
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a parameter value shared by every run")
    parser.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2",
                        help="a parameter swept over these values (grids multiply)")
    parser.add_argument("--executor", default=None,
                        help="serial (default), processes:N, dask[:ADDRESS] or slurm[:PARTITION]")
    parser.add_argument("--out", type=Path, default=None, help="folder of the executed notebooks")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per notebook cell")
    args = parser.parse_args(argv)
    pin_cache_dir()  # a relative $SCALING_UTILS_CACHE means from here, not from notebooks/

    try:
        runs = combinations(args.profile, args.set, args.grid)
    except UsageError as err:
        parser.error(str(err))
    try:
        for parameters in runs:  # fail before anything runs
            validate(args.notebook, parameters)
    except ParameterError as err:
        print(f"not run: {err}", file=sys.stderr)
        return 2
    out = (args.out or REPO / "sweeps" / args.notebook).resolve()
    targets = [out / f"{args.notebook}-{i:03d}.ipynb" for i in range(len(runs))]
    job = partial(_run_one, str(REPO / "notebooks" / f"{args.notebook}.md"), args.timeout)
    reports = run_jobs(job, list(zip(map(str, targets), runs)), args.executor)
    index = [{"output": str(t), "parameters": p, **r} for t, p, r in zip(targets, runs, reports)]
    atomic_write_bytes(out / "index.json", json.dumps(index, indent=1).encode())
    for row in index:
        status = "ok" if row["error"] is None else f"FAILED: {row['error']}"
        print(f"{Path(row['output']).name}  {row['seconds']:8.1f} s  {status}  {row['parameters']}")
    print(f"index of the runs: {out / 'index.json'}")
    return 1 if any(r["error"] for r in reports) else 0


def _run_one(source: str, timeout: int, item: tuple[str, dict]) -> dict:
    target, parameters = item
    return execute_notebook(source, target, parameters, cwd=Path(source).parent, timeout=timeout)


if __name__ == "__main__":
    sys.exit(main())
