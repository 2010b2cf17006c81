"""Results cached on disk by a hash of their configuration, written atomically.

A run that is interrupted leaves either a complete entry or none, so re-running resumes
where it stopped.  Each entry is a pickle with a SHA-256 checksum beside it; an entry that
fails the check raises :class:`CacheCorruptError` naming the file and how to recover.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import __version__

ENV_VAR = "SCALING_UTILS_CACHE"


class CacheCorruptError(RuntimeError):
    """A cache entry exists but cannot be read back."""


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """The cache folder: ``path``, else $SCALING_UTILS_CACHE, else ~/.cache/scaling_utils."""
    chosen = path or os.environ.get(ENV_VAR) or Path.home() / ".cache" / "scaling_utils"
    folder = Path(chosen).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def config_hash(config: Any) -> str:
    """Stable short hash of a JSON-serialisable configuration (numpy values become lists;
    anything else that JSON cannot hold is an error, never an abbreviated repr)."""
    text = json.dumps(config, sort_keys=True, default=_plain)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        return value.tolist()
    raise TypeError(f"cache keys must be JSON values, got {type(value).__name__}: {value!r:.80}")


def array_digest(*arrays) -> str:
    """Short SHA-256 of the arrays' bytes (content, not just shape), for cache keys."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cached(kind: str, config: Any, compute: Callable[[], Any],
           folder: str | os.PathLike | None = None, refresh: bool = False) -> Any:
    """Return the cached result for ``config``, computing and storing it on a miss.

    The entry lives at ``<cache>/<kind>/<hash>.pkl`` with the configuration beside it in JSON,
    so a user can see what each entry holds.
    """
    base = cache_dir(folder) / kind
    config = {"config": config, "scaling_utils": __version__}  # new code, new entries
    key = config_hash(config)
    path = base / f"{key}.pkl"
    if path.exists() and not refresh:
        return load_entry(path)
    result = compute()
    payload = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    meta = {**config, "sha256": hashlib.sha256(payload).hexdigest()}
    # checksum first: a crash between the two writes leaves no payload, hence a plain miss
    atomic_write_bytes(base / f"{key}.json", json.dumps(meta, indent=1, default=_plain).encode())
    atomic_write_bytes(path, payload)
    return result


def load_entry(path: Path) -> Any:
    """Read one cache entry, verifying its checksum."""
    meta_path = path.with_suffix(".json")
    fix = (f"Delete {path} (and {meta_path.name}) or pass refresh=True to recompute it; "
           "other entries are unaffected.")
    try:
        payload = path.read_bytes()
        expected = json.loads(meta_path.read_text())["sha256"]
    except (OSError, ValueError, KeyError) as err:
        raise CacheCorruptError(f"cache entry {path} has no readable checksum ({err}). {fix}") from err
    if hashlib.sha256(payload).hexdigest() != expected:
        raise CacheCorruptError(f"cache entry {path} fails its checksum (truncated or edited). {fix}")
    try:
        return pickle.loads(payload)
    except Exception as err:  # unpickling an entry written by an incompatible version
        raise CacheCorruptError(f"cache entry {path} cannot be unpickled ({err}). {fix}") from err
