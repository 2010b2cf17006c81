"""Shared test setup: never touch the network, keep result caches in temporary folders (the
converted offline model stays in the user's model cache)."""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# The smoke book builds in a second process while the tests run (see below): threads that wait
# passively leave the core to it instead of spinning
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# Several test workers share the cores: numpy's OpenBLAS, loaded after this line, starts one
# thread per worker instead of one per core, which would spin against each other
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


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


# The smoke book is built once per test session, in a folder named by this variable: the
# session that starts (the only process, or the controller of `pytest -n`) creates it and
# removes it at the end; whichever process first finds a test that reads the book starts the
# build there, and every process waits for its return code in that folder.
SMOKE_FOLDER = "SCALING_UTILS_TEST_SMOKE_BOOK"
_OWNER = pytest.StashKey()
_OWN_CACHE = pytest.StashKey()


def pytest_configure(config):
    if hasattr(config, "workerinput"):  # a worker of `pytest -n` inherits the folders below
        return
    if "SCALING_UTILS_CACHE" not in os.environ:
        # tests that use no `cache_folder` share one scratch result cache, never the user's
        cache = Path(tempfile.mkdtemp(prefix="scaling_utils_test_cache_"))
        os.environ["SCALING_UTILS_CACHE"] = str(cache)
        config.stash[_OWN_CACHE] = cache
    if SMOKE_FOLDER not in os.environ:
        root = Path(tempfile.mkdtemp(prefix="smoke_book_"))
        os.environ[SMOKE_FOLDER] = str(root)
        config.stash[_OWNER] = root


@pytest.hookimpl(trylast=True)  # after -k / -m have deselected what will not run
def pytest_collection_modifyitems(session, config, items):
    """Tests marked ``long`` run first and tests that read the smoke book last: the book's build
    (started when collection is finished, below) overlaps the rest of the suite instead of adding
    to it, and short tests fill the cores at the end instead of one long test running alone."""
    readers = [item for item in items if _reads_smoke_book(item)]
    rest = [item for item in items if item not in readers]
    items[:] = sorted(rest, key=lambda item: item.get_closest_marker("long") is None) + readers


def pytest_collection_finish(session):
    """Start building the smoke book (a few minutes beside the tests) in its own process when a
    test that will run reads it and no other process of the session has started it."""
    config = session.config
    if config.option.collectonly or not any(_reads_smoke_book(item) for item in session.items):
        return
    root = Path(os.environ[SMOKE_FOLDER])
    try:
        (root / "book").mkdir()
    except FileExistsError:  # another worker started it
        return
    # one thread, waiting passively: the build shares the cores with the tests without its
    # threads spinning; two notebooks at a time: the tests that read the book wait for it
    env = {**os.environ, "SCALING_UTILS_CACHE": str(root / "cache"), "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    command = (f'"{sys.executable}" "{BUILD_BOOK}" --profile smoke --jobs 2 --root "{root / "book"}"'
               f' > "{root / "stdout.txt"}" 2> "{root / "stderr.txt"}"; echo $? > "{root / "rc"}"')
    process = subprocess.Popen(["sh", "-c", command], env=env, start_new_session=True)
    (root / "pid").write_text(str(process.pid))  # a group: stopped as a whole


def _reads_smoke_book(item) -> bool:
    """The test uses the smoke book and is not skipped outright (a true ``skipif``)."""
    if "smoke_book" not in getattr(item, "fixturenames", ()):
        return False
    return not any(m.name == "skip" or (m.name == "skipif" and m.args and m.args[0] is True)
                   for m in item.iter_markers())


def _stop(root: Path) -> None:
    """Stop the build and everything it started (notebook kernels, the site builder)."""
    if (root / "pid").exists() and not (root / "rc").exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.killpg(int((root / "pid").read_text()), signal.SIGKILL)


def pytest_unconfigure(config):
    """Stop a smoke build still running when the session ends early; keep its folder when the
    build failed (its output names the problem), remove it otherwise."""
    if _OWN_CACHE in config.stash:
        os.environ.pop("SCALING_UTILS_CACHE", None)
        shutil.rmtree(config.stash[_OWN_CACHE], ignore_errors=True)
    if _OWNER not in config.stash:
        return
    root = config.stash[_OWNER]
    _stop(root)
    os.environ.pop(SMOKE_FOLDER, None)
    if not (root / "book").exists() or _return_code(root) == 0:
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"\nThe smoke book build did not succeed; its output is in {root}")


def _return_code(root: Path) -> int | None:
    try:
        return int((root / "rc").read_text())
    except (OSError, ValueError):
        return None


@pytest.fixture(scope="session")
def smoke_book():
    """Every notebook executed with the smoke profile and the site built in a scratch folder:
    ``(root, completed process)``, from the build started at collection."""
    root = Path(os.environ[SMOKE_FOLDER])
    deadline = time.monotonic() + 900
    while (code := _return_code(root)) is None and time.monotonic() < deadline:
        time.sleep(1)
    if code is None:  # out of time: stopped, and reported as killed
        _stop(root)
    run = subprocess.CompletedProcess(["build_book.py", "--profile", "smoke"],
                                      -9 if code is None else code,
                                      (root / "stdout.txt").read_text(),
                                      (root / "stderr.txt").read_text())
    return root / "book", run
