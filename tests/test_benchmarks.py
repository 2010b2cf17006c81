"""The benchmark command writes one table that the reproducibility page can read."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scaling_utils.report import load_benchmarks

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.long
def test_benchmark_command_writes_a_table_the_book_reads(tmp_path):
    out = tmp_path / "benchmarks.json"
    run = subprocess.run([sys.executable, str(REPO / "benchmarks" / "run.py"), "--sections",
                          "source", "fit", "--devices", "cpu", "--out", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert f"written to {out}" in run.stdout
    table, machine = load_benchmarks(out)
    assert set(table.section) == {"source", "fit"}
    assert (table.value > 0).all()
    nll = table[table.measure.str.startswith("exact NLL")]
    assert list(nll.target.unique()) == [">= 1e6"]
    assert machine["cores"] >= 1


def test_missing_or_old_benchmark_files(tmp_path):
    assert load_benchmarks(tmp_path / "absent.json") is None
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"fit": {"seconds": 1.0}}))
    with pytest.raises(ValueError, match="make benchmark"):
        load_benchmarks(old)


def test_book_rows_and_the_phases_of_a_build_go_into_their_own_sections():
    import importlib.util

    spec = importlib.util.spec_from_file_location("benchmarks_run", REPO / "benchmarks" / "run.py")
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    rows = run.table({"books": [{"notebook": "trust", "profile": "cpu", "seconds": 160.0},
                                {"phase": "error_rates", "profile": "cpu", "seconds": 150.0}]})
    sections = {r["section"]: r for r in rows}
    assert sections["book"]["measure"] == "trust (cpu)" and sections["book"]["value"] == 160.0
    assert sections["book phases"]["measure"] == "computing 'error_rates' results (cpu)"
