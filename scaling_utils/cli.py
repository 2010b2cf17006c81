"""One-step commands for the book's notebooks (``python -m scaling_utils ...``).

    python -m scaling_utils params NOTEBOOK
    python -m scaling_utils run NOTEBOOK --profile smoke -p max_length=64 -p corpus=shakespeare
    python -m scaling_utils build --profile cpu

``params`` lists each parameter, its meaning and its value in every profile; ``run`` validates
every value first (the notebook's own checks), then converts the MyST source and executes it
with papermill in one step and prints where the executed notebook is; ``build`` executes every
notebook and builds the site (``scripts/build_book.py``, whose other options it passes on).
Values are YAML, as with papermill's ``-y``: ``-p "sizes=[[1, 16, 2], [2, 64, 4]]"``; a value
that names an existing file or folder from the current folder is passed as an absolute path.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
from pathlib import Path

import yaml

from .cache import ENV_VAR, CacheUnwritableError, pin_cache_dir
from .executor import execute_notebook
from .profiles import (NOTEBOOKS, PROFILE_NAMES, ParameterError, check_names, parameter_table,
                       resolve_parameters)

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = REPO / "notebooks"


# What an interrupted command says, once: what was kept and how to go on.
INTERRUPTED = ("interrupted: every result computed so far is kept in the cache; run the same "
               "command again to resume from there (no partial notebook was left).")


class UsageError(ValueError):
    """A command-line value that cannot be read."""


def parse_assignment(text: str, many: bool = False) -> tuple[str, list]:
    """``NAME=V`` (or ``NAME=V1,V2`` / ``NAME=V1;V2`` when ``many``) with YAML values; a path
    that exists from the current folder is made absolute, since notebooks run in notebooks/."""
    name, sep, values = text.partition("=")
    if not sep or not name.strip():
        raise UsageError(f"expected NAME=VALUE, got {text!r}")
    parts = (values.split(";") if ";" in values else values.split(",")) if many else [values]
    try:
        return name.strip(), [_absolute(yaml.safe_load(v)) for v in parts]
    except yaml.YAMLError as err:
        raise UsageError(f"the value of {name.strip()!r} is not valid YAML ({err}); quote lists, "
                         "e.g. -p 'sizes=[[1, 16, 2], [2, 64, 4]]' (write 1000000, not 1e6)") from err


def _absolute(value):
    if isinstance(value, str) and value and Path(value).expanduser().exists():
        return str(Path(value).expanduser().resolve())
    return value


def validate(notebook: str, parameters: dict):
    """The notebook's first-cell checks, run here from the folder the notebook runs in (so that
    relative paths mean the same)."""
    check_names(notebook, parameters)  # a name is written into code: never an undeclared one
    with contextlib.chdir(NOTEBOOK_DIR):
        return resolve_parameters(notebook, parameters)


def params_text(notebook: str) -> str:
    """A plain-text table of a notebook's parameters."""
    rows = parameter_table(notebook)
    lines = [f"parameters of {notebook} (None = the profile's value; default profile cpu)", ""]
    for row in rows:
        lines.append(f"{row['name']}  ({row['type']})  {row['meaning']}")
        lines.append("    " + "   ".join(f"{p}: {row[p]!r}" for p in PROFILE_NAMES))
    return "\n".join(lines)


def default_output(notebook: str, profile: str, parameters: dict) -> Path:
    """``runs/NOTEBOOK-PROFILE[-NAME=VALUE...].ipynb``, named after the values given, so that
    runs with other values never overwrite each other (a value that is not a short plain word,
    a list say, is named by a hash of it)."""
    import hashlib
    import re

    parts = []
    for name, value in parameters.items():
        if name == "profile":
            continue
        text = str(value)
        if not re.fullmatch(r"[\w.+-]{1,24}", text):
            text = hashlib.sha256(repr(value).encode()).hexdigest()[:8]
        parts.append(f"{name}={text}")
    return REPO / "runs" / ("-".join([notebook, profile, *parts]) + ".ipynb")


def run(notebook: str, profile: str, assignments: list[str], out: Path | None,
        timeout: int = 1800) -> int:
    parameters = {"profile": profile}
    for text in assignments:
        name, (value,) = parse_assignment(text)
        parameters[name] = value
    if not NOTEBOOK_DIR.is_dir():
        raise UsageError(f"`run` needs the book's sources: run it from a checkout ({NOTEBOOK_DIR} "
                         "is missing).")
    validate(notebook, parameters)  # raises ParameterError before anything runs
    target = (out or default_output(notebook, profile, parameters)).resolve()
    print(f"running {notebook} with {parameters} ...", flush=True)
    report = execute_notebook(NOTEBOOK_DIR / f"{notebook}.md", target, parameters,
                              cwd=NOTEBOOK_DIR, timeout=timeout, progress=True)
    status = "ok" if report["error"] is None else f"FAILED: {report['error']}"
    print(f"{status} in {report['seconds']} s; executed notebook: {target}")
    return 0 if report["error"] is None else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scaling_utils",
                                     description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p_params = commands.add_parser("params", help="each parameter, its meaning and profile values")
    p_params.add_argument("notebook", choices=sorted(NOTEBOOKS))
    p_run = commands.add_parser("run", help="validate, convert and execute one notebook")
    p_run.add_argument("notebook", choices=sorted(NOTEBOOKS))
    p_run.add_argument("--profile", default="cpu", choices=PROFILE_NAMES)
    p_run.add_argument("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE",
                       help="a parameter value (YAML), e.g. -p max_length=64 "
                            "-p 'sizes=[[1, 16, 2], [2, 64, 4]]'")
    p_run.add_argument("-o", "--out", type=Path, default=None,
                       help="executed notebook (default runs/NOTEBOOK-PROFILE.ipynb, followed "
                            "by -NAME=VALUE for each -p given)")
    p_run.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    p_build = commands.add_parser("build", help="execute every notebook and build the site; "
                                  "other options go to scripts/build_book.py (--only, --no-site, ...)")
    p_build.add_argument("--profile", default="cpu", choices=PROFILE_NAMES)
    args, rest = parser.parse_known_args(argv)
    if rest and args.command != "build":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if (folder := pin_cache_dir()) is not None and args.command != "params":
        print(f"results cache: {folder} (${ENV_VAR})", flush=True)

    if args.command == "params":
        print(params_text(args.notebook))
        return 0
    if args.command == "run":
        try:
            return run(args.notebook, args.profile, args.parameter, args.out, args.timeout)
        except (ParameterError, CacheUnwritableError, UsageError) as err:
            print(f"not run: {err}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print(INTERRUPTED, file=sys.stderr)
            return 130
    script = REPO / "scripts" / "build_book.py"
    if not script.exists():
        print(f"`build` needs the book's sources: run it from a checkout ({script} is missing).",
              file=sys.stderr)
        return 2
    return subprocess.call([sys.executable, str(script), "--profile", args.profile, *rest])
