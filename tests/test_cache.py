"""Atomic, hash-keyed results: hits skip work, corrupt entries fail clearly, crashes leave nothing,
entries are no pickles and follow the umask, an unwritable cache fails before any work, and input
files are known by their content."""

import errno
import os
import stat
import tempfile

import numpy as np
import pytest

from scaling_utils import cache
from scaling_utils.cache import CacheCorruptError, CacheUnwritableError, cached


def test_second_call_is_a_hit(cache_folder):
    calls = []
    compute = lambda: calls.append(1) or {"value": 42}
    assert cached("demo", {"a": 1}, compute) == {"value": 42}
    assert cached("demo", {"a": 1}, compute) == {"value": 42}
    assert len(calls) == 1
    cached("demo", {"a": 2}, compute)
    assert len(calls) == 2


def test_refresh_recomputes(cache_folder):
    calls = []
    cached("demo", {}, lambda: calls.append(1))
    cached("demo", {}, lambda: calls.append(1), refresh=True)
    assert len(calls) == 2


def test_corrupt_entry_names_the_file_and_the_fix(cache_folder):
    cached("demo", {"a": 1}, lambda: list(range(100)))
    entry = next((cache_folder / "demo").glob("*.npz"))
    entry.write_bytes(entry.read_bytes()[:10])
    with pytest.raises(CacheCorruptError, match=r"not a whole entry.*Delete it \(`rm .*\.npz .*\.json`\)"):
        cached("demo", {"a": 1}, lambda: None)
    assert cached("demo", {"a": 1}, lambda: "again", refresh=True) == "again"


def test_interrupted_compute_leaves_no_entry(cache_folder):
    def crash():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cached("demo", {"a": 1}, crash)
    assert not list((cache_folder / "demo").glob("*")) if (cache_folder / "demo").exists() else True
    assert cached("demo", {"a": 1}, lambda: "done") == "done"
    assert not list((cache_folder / "demo").glob(".*tmp"))


def test_a_crash_while_writing_leaves_no_partial_entry(cache_folder, monkeypatch):
    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        cached("demo", {"a": 1}, lambda: list(range(1000)))
    monkeypatch.undo()
    assert not list((cache_folder / "demo").glob("*"))  # neither entry nor temporary file
    assert cached("demo", {"a": 1}, lambda: "fresh", folder=cache_folder) == "fresh"


def test_keys_accept_numpy_and_reject_other_objects():
    import numpy as np
    assert cache.config_hash({"x": np.arange(3)}) == cache.config_hash({"x": [0, 1, 2]})
    assert cache.config_hash({"x": np.arange(2000)}) != cache.config_hash({"x": np.arange(1999)})
    with pytest.raises(TypeError, match="JSON values"):
        cache.config_hash({"x": object()})


def test_no_entry_is_a_pickle(cache_folder):
    cached("demo", {"a": 1}, lambda: {"values": list(range(10))})
    files = sorted(p.suffix for p in (cache_folder / "demo").iterdir())
    assert files == [".json", ".npz"]
    entry = next((cache_folder / "demo").glob("*.npz"))
    assert entry.read_bytes()[:2] == b"PK"  # a zip of .npy arrays and JSON, read without pickle


@pytest.mark.parametrize("mask, mode", [(0o002, 0o664), (0o022, 0o644), (0o077, 0o600)])
def test_entries_follow_the_umask(cache_folder, mask, mode):
    before = os.umask(mask)
    try:
        cached("demo", {"mask": mask}, lambda: [1, 2])
    finally:
        os.umask(before)
    for path in (cache_folder / "demo").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == mode, path


def test_a_cache_under_a_file_fails_naming_the_variable(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("SCALING_UTILS_CACHE", str(tmp_path / "file" / "cache"))
    with pytest.raises(CacheUnwritableError, match=r"file/cache cannot be written.*SCALING_UTILS_CACHE"):
        cache.check_writable()


def test_a_read_only_cache_fails_before_any_computation(cache_folder, monkeypatch):
    from scaling_utils.profiles import resolve_parameters

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(CacheUnwritableError, match="Read-only file system.*SCALING_UTILS_CACHE"):
        resolve_parameters("theorem2_bias_variance", {"profile": "smoke"})


def test_file_digest_follows_the_content(tmp_path):
    path, records = tmp_path / "input.txt", tmp_path / "records"
    path.write_text("abcd")
    first = cache.file_digest(path, records)
    assert cache.file_digest(path, records) == first
    path.write_text("abce")  # same length, edited in place within the same second
    assert cache.file_digest(path, records) != first
    settled = os.stat(path).st_mtime_ns - 10_000_000_000
    os.utime(path, ns=(settled, settled))  # an old file: its recorded digest is reused ...
    old = cache.file_digest(path, records)
    path.write_text("abcf")  # ... until it changes again
    assert cache.file_digest(path, records) != old


def test_an_intact_entry_of_a_type_that_moved_is_computed_again(cache_folder):
    import hashlib

    from scaling_utils.cache import CacheStaleError, _entry_bytes, load_entry

    first = cached("moved", {"a": 1}, lambda: {"x": 1.0}, folder=cache_folder)
    path = next((cache_folder / "moved").glob("*.npz"))
    # the same entry as an older version wrote it: a result type that no longer exists here
    payload = _archive_of({"__type__": "dataclass", "class": "scaling_utils.clt:Gone", "fields": {}})
    path.write_bytes(_entry_bytes({"key": path.stem, "kind": "moved",
                                   "sha256": hashlib.sha256(payload).hexdigest()}, payload))
    with pytest.raises(CacheStaleError, match="cannot be read by this version"):
        load_entry(path)
    assert cached("moved", {"a": 1}, lambda: {"x": 2.0}, folder=cache_folder) == {"x": 2.0}
    assert cached("moved", {"a": 1}, lambda: {"x": 3.0}, folder=cache_folder) == {"x": 2.0}
    assert first == {"x": 1.0}
    # the two-file layout of earlier versions: a plain archive, computed again
    path.write_bytes(payload)
    assert cached("moved", {"a": 1}, lambda: {"x": 4.0}, folder=cache_folder) == {"x": 4.0}


def test_an_entry_copied_over_another_key_is_refused(cache_folder):
    def entry(size):
        key = cache.config_hash({"config": {"size": size}, "scaling_utils": cache.__version__})
        return cache_folder / "runs" / f"{key}.npz"

    cached("runs", {"size": "small"}, lambda: "small run")
    cached("runs", {"size": "large"}, lambda: "large run")
    entry("large").write_bytes(entry("small").read_bytes())
    with pytest.raises(CacheCorruptError, match="written for key .* copied or renamed"):
        cached("runs", {"size": "large"}, lambda: None)


def test_racing_writers_of_one_key_leave_one_whole_entry(cache_folder):
    # two processes computing the same key with different bytes (runs carry timings): whichever
    # rename lands last wins whole; the entry always reads back as one writer's result
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with context.Pool(2) as pool:
        pool.starmap(_write_many, [(str(cache_folder), w) for w in ("A", "B")])
    for i in range(200):
        got = cached("race", {"i": i}, lambda: "missing")
        assert got in ({"writer": "A", "i": i}, {"writer": "B", "i": i})


def _write_many(folder: str, writer: str) -> None:
    for i in range(200):
        cached("race", {"i": i}, lambda i=i: {"writer": writer, "i": i}, folder=folder,
               refresh=True)


def _archive_of(tree: dict) -> bytes:
    import io
    import json

    buffer = io.BytesIO()
    np.savez(buffer, __tree__=np.frombuffer(json.dumps(tree).encode(), np.uint8))
    return buffer.getvalue()


def test_a_full_disk_names_the_folder_and_the_space_needed(cache_folder, monkeypatch):
    real_open = os.open

    def full(path, *args):
        if str(path).endswith(".tmp"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(path, *args)

    monkeypatch.setattr(os, "open", full)
    with pytest.raises(OSError, match=r"no space left to write .*demo.* bytes\) in .*SCALING_UTILS_CACHE"):
        cached("demo", {"a": 1}, lambda: list(range(10)))


def test_each_entry_records_its_compute_time_and_a_folder_sums_them_by_kind(cache_folder):
    import time

    def slow(seconds):
        def compute():
            time.sleep(seconds)
            return seconds
        return compute

    cached("train", {"a": 1}, slow(0.05))
    cached("train", {"a": 2}, slow(0.05))
    cached("theorem1/capture", {"a": 1}, slow(0.02))
    cached("train", {"a": 1}, slow(1.0))  # a hit adds nothing
    phases = cache.phase_seconds()
    assert list(phases) == ["train", "theorem1/capture"]
    assert 0.1 <= phases["train"] < 0.5 and 0.02 <= phases["theorem1/capture"] < 0.3


def test_a_block_counts_what_it_read_from_the_cache_and_what_it_computed(tmp_path):
    from scaling_utils.cache import count_results, describe_counts
    with count_results() as counts:
        cache.cached("demo", {"a": 1}, lambda: 1, folder=tmp_path)
        cache.cached("demo", {"a": 1}, lambda: 1, folder=tmp_path)
        cache.cached("train", {"a": 2}, lambda: 2, folder=tmp_path)
    assert counts == {"demo": {"read": 1, "computed": 1}, "train": {"read": 0, "computed": 1}}
    assert describe_counts(counts) == ("Read from the result cache: demo 1. Computed in this run: "
                                       "demo 1, training runs 1.")
    cache.cached("demo", {"a": 3}, lambda: 3, folder=tmp_path)  # outside a block: not counted
    assert counts["demo"] == {"read": 1, "computed": 1}


@pytest.mark.long
def test_workers_counts_come_back_to_the_block(tmp_path):
    from functools import partial

    from scaling_utils.cache import count_results
    from scaling_utils.executor import run_jobs
    job = partial(cache.cached, "demo", compute=int, folder=str(tmp_path))
    cache.cached("demo", {"i": 0}, int, folder=tmp_path)
    with count_results() as counts:
        assert run_jobs(job, [{"i": i} for i in range(3)], "processes:2") == [0, 0, 0]
    assert counts == {"demo": {"read": 1, "computed": 2}}


def test_an_enclosing_block_counts_what_an_inner_one_did(tmp_path):
    from scaling_utils.cache import count_results
    with count_results() as outer:
        with count_results() as inner:
            cache.cached("demo", {"b": 1}, lambda: 1, folder=tmp_path)
    assert inner == outer == {"demo": {"read": 0, "computed": 1}}
