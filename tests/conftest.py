"""Shared test setup: never touch the network, keep caches in a temporary folder."""

import os

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
