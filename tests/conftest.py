"""Shared test setup: never touch the network, keep caches in a temporary folder."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# The smoke book builds in a second process while the tests run (see below): threads that wait
# passively leave the core to it instead of spinning
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture
def cache_folder(tmp_path, monkeypatch):
    """An empty result cache for one test."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("SCALING_UTILS_CACHE", str(folder))
    return folder


# The dequantised offline model is expensive to create (about 45 s): keep it in the user's
# cache even when a test empties the result cache.
os.environ.setdefault("SCALING_UTILS_MODEL_CACHE",
                      os.path.join(os.path.expanduser("~"), ".cache", "scaling_utils", "models"))


BUILD_BOOK = Path(__file__).resolve().parent.parent / "scripts" / "build_book.py"


_SMOKE_BUILD = pytest.StashKey()


@pytest.hookimpl(trylast=True)  # after -k / -m have deselected what will not run
def pytest_collection_modifyitems(session, config, items):
    """When a selected test reads the smoke book, start building it now, in its own process,
    and run those tests last: the build (about two minutes, mostly one core) overlaps the rest
    of the suite instead of adding to it."""
    readers = [item for item in items if "smoke_book" in getattr(item, "fixturenames", ())]
    if not readers or config.option.collectonly:
        return
    items[:] = [item for item in items if item not in readers] + readers
    root = Path(tempfile.mkdtemp(prefix="smoke_book_"))
    # one thread, waiting passively: two processes share two cores without spinning threads
    # of one stealing the time of the other
    env = {**os.environ, "SCALING_UTILS_CACHE": str(root / "cache"), "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    out, err = (open(root / name, "w") for name in ("stdout.txt", "stderr.txt"))
    process = subprocess.Popen([sys.executable, str(BUILD_BOOK), "--profile", "smoke",
                                "--root", str(root / "book")], stdout=out, stderr=err, text=True,
                               env=env)
    config.stash[_SMOKE_BUILD] = (root, process, out, err)


def pytest_unconfigure(config):
    """Stop a smoke build still running when the session ends early."""
    root, process, *_ = config.stash.get(_SMOKE_BUILD, (None, None))
    if process is not None and process.poll() is None:
        process.kill()
    if root is not None:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def smoke_book(request):
    """Every notebook executed with the smoke profile and the site built in a scratch folder:
    ``(root, completed process)``, from the build started at collection."""
    root, process, out, err = request.config.stash[_SMOKE_BUILD]
    try:
        process.wait(timeout=900)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for stream in (out, err):
        stream.close()
    run = subprocess.CompletedProcess(process.args, process.returncode,
                                      (root / "stdout.txt").read_text(),
                                      (root / "stderr.txt").read_text())
    return root / "book", run
