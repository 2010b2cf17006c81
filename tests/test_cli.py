"""`python -m scaling_utils`: parameters listed, values checked before anything runs, one notebook
converted and executed in one step."""

import subprocess
import sys

import nbformat
import pytest

from scaling_utils import cli


def test_params_lists_every_parameter_with_its_profile_values(capsys):
    assert cli.main(["params", "theorem2_bias_variance"]) == 0
    out = capsys.readouterr().out
    for name in ("sizes", "D", "n_seeds", "learning_rate"):
        assert f"\n{name}  (" in out
    assert "smoke: ((1, 8, 2), (1, 16, 2), (2, 32, 4))" in out


def test_run_refuses_bad_values_before_running(tmp_path, capsys):
    out = tmp_path / "t2.ipynb"
    code = cli.main(["run", "theorem2_bias_variance", "--profile", "smoke", "-p", "sizes=[[1, 8]]",
                     "-o", str(out)])
    assert code == 2 and "'sizes': each size must be three" in capsys.readouterr().err
    assert not out.exists()


def test_a_parameter_name_is_validated_like_a_value(tmp_path, capsys):
    # papermill writes names into the parameters cell as code: a crafted name must never get there
    marker = tmp_path / "ran"
    for name in (f'_;import os;os.system("touch {marker}");_x', "__import__('os')", "tokens"):
        code = cli.main(["run", "overview", "--profile", "smoke", "-p", f"{name}=1",
                         "-o", str(tmp_path / "o.ipynb")])
        assert code == 2 and "unknown parameter(s)" in capsys.readouterr().err
    assert not marker.exists() and not (tmp_path / "o.ipynb").exists()
    from scaling_utils.executor import execute_notebook
    with pytest.raises(ValueError, match="plain identifiers"):
        execute_notebook(cli.NOTEBOOK_DIR / "overview.md", tmp_path / "o.ipynb",
                         {f'_;import os;os.system("touch {marker}");_x': 1})
    assert not marker.exists()


@pytest.mark.long
def test_run_converts_and_executes_in_one_step(tmp_path, cache_folder):
    out = tmp_path / "repro.ipynb"
    run = subprocess.run([sys.executable, "-m", "scaling_utils", "run", "reproducibility",
                          "--profile", "smoke", "-p", "seed=3", "-o", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"executed notebook: {out}" in run.stdout
    injected = [c for c in nbformat.read(out, 4).cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert "seed = 3" in injected[0].source


def test_runs_with_other_values_are_written_to_other_files():
    def name(**parameters):
        return cli.default_output("theorem2_bias_variance", "cpu", {"profile": "cpu", **parameters}).name

    assert name() == "theorem2_bias_variance-cpu.ipynb"
    assert name(seed=1) == "theorem2_bias_variance-cpu-seed=1.ipynb" != name(seed=2)
    one, two = name(sizes=[[1, 8, 2]]), name(sizes=[[1, 16, 2]])
    assert one != two and one.startswith("theorem2_bias_variance-cpu-sizes=")
    assert "/" not in name(corpus="/home/me/text.txt")


def test_build_passes_its_other_options_to_the_build_script(monkeypatch):
    calls = []
    monkeypatch.setattr(cli.subprocess, "call", lambda cmd: calls.append(cmd) or 0)
    assert cli.main(["build", "--profile", "smoke", "--only", "theorem1_clt", "--no-site"]) == 0
    assert calls[0][-5:] == ["--profile", "smoke", "--only", "theorem1_clt", "--no-site"]


def test_values_are_read_as_yaml_and_existing_paths_made_absolute(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.txt").write_text("text")
    assert cli.parse_assignment("corpus=mine.txt") == ("corpus", [str(tmp_path / "mine.txt")])
    assert cli.parse_assignment("corpus=shakespeare") == ("corpus", ["shakespeare"])
    assert cli.parse_assignment("sizes=[[1, 8, 2]]") == ("sizes", [[[1, 8, 2]]])
    for bad in ("seed", "seed=[1,"):
        assert cli.main(["run", "theorem2_bias_variance", "--profile", "smoke", "-p", bad]) == 2
    assert "not valid YAML" in capsys.readouterr().err


def test_a_relative_cache_folder_means_from_where_the_command_ran(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCALING_UTILS_CACHE", "relcache")
    assert cli.main(["run", "overview", "--profile", "smoke", "-p", "nope=1"]) == 2
    import os
    assert os.environ["SCALING_UTILS_CACHE"] == str(tmp_path / "relcache")
    assert f"results cache: {tmp_path / 'relcache'}" in capsys.readouterr().out


def test_an_interrupt_says_what_was_kept_and_leaves_no_partial_notebook(tmp_path, monkeypatch,
                                                                          capsys, cache_folder):
    import papermill

    out = tmp_path / "o.ipynb"

    def interrupted(staged, target, **kwargs):
        out.write_text("{}")  # papermill writes the target as cells run
        raise KeyboardInterrupt

    monkeypatch.setattr(papermill, "execute_notebook", interrupted)
    assert cli.main(["run", "overview", "--profile", "smoke", "-o", str(out)]) == 130
    assert "interrupted: every result computed so far is kept" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".*input.ipynb"))


def test_every_documented_command_names_declared_parameters():
    # the commands a reader copies from the README, the book and the notebooks' "Try it" lines
    import re
    from pathlib import Path

    from scaling_utils.profiles import NOTEBOOKS, check_names

    repo = Path(__file__).resolve().parent.parent
    checked = 0
    for doc in [repo / "README.md", *sorted((repo / "book").glob("*.md")),
                *sorted((repo / "notebooks").glob("*.md"))]:
        text = doc.read_text().replace("\\\n", " ")
        for notebook, rest in re.findall(r"scaling_utils run (\w+)([^\n`]*)", text):
            if notebook in NOTEBOOKS:  # not the placeholder NOTEBOOK
                check_names(notebook, re.findall(r"-p ['\"]?(\w+)=", rest))
                checked += 1
        if doc.parent.name == "notebooks" and doc.stem in NOTEBOOKS:  # "Try it. `-p n_seeds=5`"
            check_names(doc.stem, re.findall(r"`-p ['\"]?(\w+)=", text))
    assert checked >= 5
