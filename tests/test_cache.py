"""Atomic, hash-keyed results: hits skip work, corrupt entries fail clearly, crashes leave nothing."""

import pytest

import os

from scaling_utils import cache
from scaling_utils.cache import CacheCorruptError, cached


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
    entry = next((cache_folder / "demo").glob("*.pkl"))
    entry.write_bytes(entry.read_bytes()[:10])
    with pytest.raises(CacheCorruptError, match=r"checksum.*Delete .*refresh=True"):
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
    assert cached("demo", {"a": 1}, lambda: "fresh") == "fresh"


def test_keys_accept_numpy_and_reject_other_objects():
    import numpy as np
    assert cache.config_hash({"x": np.arange(3)}) == cache.config_hash({"x": [0, 1, 2]})
    assert cache.config_hash({"x": np.arange(2000)}) != cache.config_hash({"x": np.arange(1999)})
    with pytest.raises(TypeError, match="JSON values"):
        cache.config_hash({"x": object()})
