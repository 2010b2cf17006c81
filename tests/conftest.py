"""Shared test setup: never touch the network, keep caches in a temporary folder."""

import contextlib
import os
import shutil
import signal
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
    """Tests that read the smoke book run last, so that its build (started when collection is
    finished, below) overlaps the rest of the suite instead of adding to it."""
    readers = [item for item in items if _reads_smoke_book(item)]
    items[:] = [item for item in items if item not in readers] + readers


def pytest_collection_finish(session):
    """Start building the smoke book (about two minutes, mostly one core) in its own process
    when a test that will run reads it."""
    config = session.config
    if config.option.collectonly or not any(_reads_smoke_book(item) for item in session.items):
        return
    root = Path(tempfile.mkdtemp(prefix="smoke_book_"))
    # one thread, waiting passively: two processes share two cores without spinning threads
    # of one stealing the time of the other
    env = {**os.environ, "SCALING_UTILS_CACHE": str(root / "cache"), "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    out, err = (open(root / name, "w") for name in ("stdout.txt", "stderr.txt"))
    process = subprocess.Popen([sys.executable, str(BUILD_BOOK), "--profile", "smoke",
                                "--root", str(root / "book")], stdout=out, stderr=err, text=True,
                               env=env, start_new_session=True)  # a group: stopped as a whole
    config.stash[_SMOKE_BUILD] = (root, process, out, err)


def _reads_smoke_book(item) -> bool:
    """The test uses the smoke book and is not skipped outright (a true ``skipif``)."""
    if "smoke_book" not in getattr(item, "fixturenames", ()):
        return False
    return not any(m.name == "skip" or (m.name == "skipif" and m.args and m.args[0] is True)
                   for m in item.iter_markers())


def _stop(process) -> None:
    """Stop the build and everything it started (notebook kernels, the site builder)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def pytest_unconfigure(config):
    """Stop a smoke build still running when the session ends early; keep its folder when the
    build failed (its output names the problem), remove it otherwise."""
    if _SMOKE_BUILD not in config.stash:
        return
    root, process, out, err = config.stash[_SMOKE_BUILD]
    _stop(process)
    for stream in (out, err):
        stream.close()
    if process.returncode == 0:
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"\nThe smoke book build did not succeed; its output is in {root}")


@pytest.fixture(scope="session")
def smoke_book(request):
    """Every notebook executed with the smoke profile and the site built in a scratch folder:
    ``(root, completed process)``, from the build started at collection."""
    root, process, out, err = request.config.stash[_SMOKE_BUILD]
    try:
        process.wait(timeout=900)
    except subprocess.TimeoutExpired:
        _stop(process)
    for stream in (out, err):
        stream.flush()
    run = subprocess.CompletedProcess(process.args, process.returncode,
                                      (root / "stdout.txt").read_text(),
                                      (root / "stderr.txt").read_text())
    return root / "book", run
