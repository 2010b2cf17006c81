"""Shared test setup: never touch the network, keep caches in a temporary folder."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


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


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory):
    """Execute every notebook with the smoke profile and build the site in a scratch folder."""
    root = tmp_path_factory.mktemp("book")
    cache = tmp_path_factory.mktemp("cache")
    env = {**os.environ, "SCALING_UTILS_CACHE": str(cache)}
    run = subprocess.run([sys.executable, str(Path(__file__).resolve().parent.parent / "scripts" / "build_book.py"),
                          "--profile", "smoke", "--root", str(root)],
                         capture_output=True, text=True, env=env, timeout=900)
    return root, run
