"""Grids on other executors: a Dask LocalCluster and local processes give the serial results and
share the cache; submitit's map_array path; bad specifications name the fix."""

import json
import math

import numpy as np
import pytest

from scaling_utils import runs, train
from scaling_utils.executor import ExecutorError, open_executor, run_jobs
from scaling_utils.profiles import ParameterError, resolve_parameters
from scaling_utils.synthetic import preset_source
from scaling_utils.train import StudentSpec, TrainConfig

SOURCE = preset_source("tiny", seed=1)
EVAL, _, _ = train.evaluation_set(SOURCE, 32, 16, seed=99)
CONFIGS = [TrainConfig(StudentSpec(1, 8, 2), D=16 * 16 * 12, vocab_size=SOURCE.n_symbols,
                       context=16, batch_size=16, n_evals=2, seed=s) for s in range(3)]


@pytest.mark.long
def test_dask_cluster_trains_the_grid_into_the_shared_cache(tmp_path, monkeypatch):
    distributed = pytest.importorskip("dask.distributed")
    cache = tmp_path / "shared"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        on_cluster = runs.run_grid(CONFIGS, SOURCE, EVAL, device="cpu", cache=str(cache),
                                    executor=client)
    assert [r.config.seed for r in on_cluster] == [0, 1, 2]  # input order kept
    assert len(list((cache / "train").glob("*.npz"))) == 3  # written by the workers

    def no_training(*args, **kwargs):
        raise AssertionError("the serial run should read the cluster's results back")

    monkeypatch.setattr(train, "train_budgets", no_training)
    read_back = runs.run_grid(CONFIGS, SOURCE, EVAL, device="cpu", cache=str(cache),
                               progress=False)
    for a, b in zip(on_cluster, read_back):
        np.testing.assert_array_equal(a.curve_loss, b.curve_loss)
    monkeypatch.undo()
    # Workers train with this process's thread count (part of the key): the same bits as here.
    serial = runs.run_grid(CONFIGS, SOURCE, EVAL, device="cpu", cache=str(tmp_path / "own"),
                            progress=False)
    for a, b in zip(on_cluster, serial):
        np.testing.assert_array_equal(a.curve_loss, b.curve_loss)


def test_a_grid_sends_only_the_runs_still_to_train_to_its_executor(tmp_path):
    import concurrent.futures

    class Counting(concurrent.futures.ThreadPoolExecutor):
        """Runs jobs in threads and counts them."""
        jobs = 0

        def map(self, fn, *iterables, **kwargs):
            items = list(iterables[0])
            Counting.jobs += len(items)
            return super().map(fn, items, **kwargs)

    cache = str(tmp_path)
    first = runs.run_grid(CONFIGS[:2], SOURCE, EVAL, device="cpu", cache=cache, progress=False)
    with Counting(1) as pool:
        grid = runs.run_grid(CONFIGS, SOURCE, EVAL, device="cpu", cache=cache, executor=pool)
    assert Counting.jobs == 1  # the two stored runs are read here, not sent to a worker
    assert [r.config.seed for r in grid] == [0, 1, 2]
    np.testing.assert_array_equal(grid[0].curve_loss, first[0].curve_loss)
    with Counting(1) as pool:  # everything stored: no worker at all
        runs.run_grid(CONFIGS, SOURCE, EVAL, device="cpu", cache=cache, executor=pool)
    assert Counting.jobs == 1


def test_local_processes_keep_the_input_order():
    assert run_jobs(math.sqrt, [9, 4, 1], "processes:2") == [3.0, 2.0, 1.0]
    assert run_jobs(math.sqrt, [9, 4], None) == [3.0, 2.0]


def test_submitit_executor_is_driven_through_map_array(tmp_path):
    submitit = pytest.importorskip("submitit")
    executor = submitit.AutoExecutor(folder=tmp_path / "%j", cluster="debug")
    assert run_jobs(math.sqrt, [16, 25], executor) == [4.0, 5.0]


@pytest.mark.parametrize("spec, match", [("dusk", "unknown executor"),
                                         ("processes:0", "positive integer"),
                                         ("processes:two", "positive integer")])
def test_bad_executor_names_the_fix(spec, match):
    with pytest.raises(ExecutorError, match=match), open_executor(spec):
        pass


def test_objects_that_are_not_executors_are_refused():
    with pytest.raises(ExecutorError, match="dask Client"):
        run_jobs(math.sqrt, [1], object())


def test_executor_parameter_is_checked_before_anything_runs():
    with pytest.raises(ParameterError, match="must start with one of"):
        resolve_parameters("theorem4_emergence", {"profile": "smoke", "executor": "dusk:x"})
    cfg = resolve_parameters("theorem4_emergence", {"profile": "smoke", "executor": "dask:tcp://h:8786"})
    assert cfg.executor == "dask:tcp://h:8786"


def _sweep(*args: str):
    """scripts/sweep.py run as a user would, output captured."""
    import subprocess
    import sys
    from pathlib import Path
    sweep = Path(__file__).resolve().parent.parent / "scripts" / "sweep.py"
    return subprocess.run([sys.executable, str(sweep), *args], capture_output=True, text=True,
                          timeout=600)


@pytest.mark.long
def test_sweep_validates_every_run_first_then_runs_each(tmp_path):
    from pathlib import Path
    bad = _sweep("reproducibility", "--profile", "smoke", "--grid", "seeds=0,1",
                 "--out", str(tmp_path / "bad"))
    assert bad.returncode == 2 and "did you mean 'seed'" in bad.stderr
    assert bad.stderr.startswith("not run: ") and "Traceback" not in bad.stderr
    assert not (tmp_path / "bad").exists()  # nothing ran
    good = _sweep("reproducibility", "--profile", "smoke", "--grid", "seed=0,1",
                  "--out", str(tmp_path / "ok"))
    assert good.returncode == 0, good.stdout + good.stderr
    index = json.loads((tmp_path / "ok" / "index.json").read_text())
    assert [run["parameters"]["seed"] for run in index] == [0, 1]
    assert all(run["error"] is None and Path(run["output"]).exists() for run in index)


def test_each_executor_names_the_thread_count_its_jobs_train_with():
    import os
    import torch
    from scaling_utils.executor import worker_threads
    own, cores = torch.get_num_threads(), os.cpu_count() or 1
    assert worker_threads(None) == worker_threads("serial") == own
    assert worker_threads("processes:2") == max(1, cores // 2)
    assert worker_threads("dask") == 1 and worker_threads("dask:tcp://h:8786") == own


def test_a_sweep_checks_list_shapes_before_running_anything(tmp_path):
    run = _sweep("theorem2_bias_variance", "--profile", "smoke",
                 "--grid", "sizes=[[1,8,2],[1,16,2]];[[1,8]]", "--out", str(tmp_path / "out"))
    assert run.returncode != 0 and "'sizes': each size must be three" in run.stderr
    assert not (tmp_path / "out").exists()


def test_notebooks_run_in_their_folder_without_moving_the_process(tmp_path, monkeypatch):
    """The kernel starts in ``cwd`` while the calling process stays where it is: notebooks run
    side by side in threads, and a process-wide change of folder by one would move the other's
    kernel (the instructors' page once read its recorded times from the wrong folder)."""
    import os

    from scaling_utils.executor import execute_notebook

    folder = tmp_path / "notebooks"
    folder.mkdir()
    source = tmp_path / "where.md"
    source.write_text("---\njupytext:\n  formats: md:myst\n  text_representation:\n"
                      "    extension: .md\n    format_name: myst\n"
                      "kernelspec:\n  display_name: Python 3\n  language: python\n"
                      "  name: python3\n---\n\n```{code-cell} ipython3\nimport os\n"
                      "open('where.txt', 'w').write(os.getcwd())\n```\n")
    here = os.getcwd()
    chdir = os.chdir

    def stay(path):  # papermill's file reader "moves" to the folder it is in: allowed
        if os.path.realpath(path) != os.path.realpath(here):
            pytest.fail(f"the process moved to {path}")
        chdir(path)

    monkeypatch.setattr(os, "chdir", stay)
    run = execute_notebook(source, tmp_path / "out" / "where.ipynb", {}, cwd=folder, timeout=60)
    assert run["error"] is None, run
    assert (folder / "where.txt").read_text() == str(folder.resolve())
    assert os.getcwd() == here
