"""Compare two builds number by number: every stored summary (values, verdicts, reasons) and
every number and text glued into the executed notebooks' prose.

    python scripts/compare_summaries.py BEFORE AFTER [--profiles smoke cpu] [--only NOTEBOOK ...]
                                        [--tolerance 0]

BEFORE and AFTER are build folders, each holding ``cache/summaries`` (the result cache a build
wrote, ``SCALING_UTILS_CACHE``) and ``book/executed`` (its executed notebooks); a folder that
lacks one of them is compared on the other.  Exit status 0 when nothing differs beyond
``--tolerance`` (relative), 1 otherwise, with one line per difference.  Keys present in only
one build are listed too.  A result's digest (``result_sha256``) is not compared: it changes
whenever the result's type moves, while every value it holds is compared through the summary
and the glued numbers.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

IGNORED = {"result_sha256"}
PREFIX = "application/papermill.record/"


def summaries(folder: Path, profiles) -> dict:
    """``{notebook-profile: {key: value}}`` of the stored summaries under ``folder``."""
    out = {}
    for path in sorted((folder / "cache" / "summaries").glob("*.json")):
        name = path.stem
        if not any(name.endswith(f"-{p}") for p in profiles):
            continue
        record = json.loads(path.read_text())
        values = {k: v for k, v in record["values"].items() if k not in IGNORED}
        out[name] = {**values, **{f"missing:{k}": v for k, v in record["missing"].items()}}
    return out


def glued(folder: Path) -> dict:
    """``{notebook: {glue key: value}}`` read from the executed notebooks under ``folder``."""
    out = {}
    for path in sorted((folder / "book" / "executed").glob("*.ipynb")):
        values = {}
        for cell in json.loads(path.read_text())["cells"]:
            for output in cell.get("outputs", []):
                name = output.get("metadata", {}).get("scrapbook", {}).get("name")
                if name:
                    data = output.get("data", {})
                    values[name] = next((v for k, v in data.items() if k.startswith(PREFIX)), data)
        out[path.stem] = values
    return out


def differences(before: dict, after: dict, tolerance: float, where: str) -> list[str]:
    lines = []
    for group in sorted(set(before) | set(after)):
        a, b = before.get(group), after.get(group)
        if a is None or b is None:
            lines.append(f"{where} {group}: only in {'after' if a is None else 'before'}")
            continue
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                lines.append(f"{where} {group}.{key}: only in {'after' if key not in a else 'before'}")
            elif not same(a[key], b[key], tolerance):
                lines.append(f"{where} {group}.{key}: {a[key]!r} -> {b[key]!r}")
    return lines


def same(a, b, tolerance: float) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if math.isnan(a) and math.isnan(b):
            return True
        return a == b or abs(a - b) <= tolerance * max(abs(a), abs(b))
    if isinstance(a, str) and isinstance(b, str):
        try:  # glued numbers are stored as their text
            return same(float(a), float(b), tolerance)
        except ValueError:
            return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k], tolerance) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y, tolerance) for x, y in zip(a, b))
    return a == b


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--profiles", nargs="+", default=["smoke", "cpu"])
    parser.add_argument("--only", nargs="+", help="compare only these notebooks")
    parser.add_argument("--tolerance", type=float, default=0.0,
                        help="relative difference accepted between two numbers (default 0)")
    args = parser.parse_args(argv)
    def keep(found: dict) -> dict:
        return {k: v for k, v in found.items()
                if not args.only or any(k == n or k.startswith(f"{n}-") for n in args.only)}

    before_s, after_s = (keep(summaries(f, args.profiles)) for f in (args.before, args.after))
    before_g, after_g = (keep(glued(f)) for f in (args.before, args.after))
    lines = differences(before_s, after_s, args.tolerance, "summary")
    lines += differences(before_g, after_g, args.tolerance, "glued")
    counts = (sum(len(v) for v in after_s.values()), sum(len(v) for v in after_g.values()))
    print(f"compared {counts[0]} stored values and {counts[1]} glued values: "
          f"{len(lines)} difference(s)")
    print("\n".join(lines))
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
