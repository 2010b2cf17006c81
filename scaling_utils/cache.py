"""Results cached on disk by a hash of their configuration, written atomically.

A run that is interrupted leaves either a complete entry or none, so re-running resumes
where it stopped.  Each entry is one ``.npz`` file holding the result as JSON and arrays
(:mod:`.codec`: reading it cannot run code, unlike a pickle), its SHA-256 and the key it was
written for; an entry that fails the check, or sits under another key, raises
:class:`CacheCorruptError` naming the file and how to recover.  Files are created
with the permissions the umask allows (not owner-only), so a group can share one cache folder.
Input files enter cache keys by their content (:func:`file_digest`), never by their name alone.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import secrets
import tempfile
import time
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from . import __version__
from .codec import CodecError, dumps, loads

ENV_VAR = "SCALING_UTILS_CACHE"
ENTRY_SUFFIX = ".npz"
# The counts of the innermost open :func:`count_results` block (None outside any).
_COUNTS: ContextVar[dict | None] = ContextVar("scaling_utils_cache_counts", default=None)
# What each kind of entry is, for the line a study prints.
KIND_NAMES = {"train": "training runs", "tokens": "tokenised corpora",
              "sequence_losses": "sequence losses", "student_snr": "student SNRs",
              "snr_by_context": "SNR-by-context tables", "capabilities": "capability measurements",
              "noise_sweeps": "noise sweeps", "theorem1/capture": "captures",
              "theorem1/control": "attention controls", "error_rates": "error-rate tables"}


class CacheCorruptError(RuntimeError):
    """A cache entry exists but cannot be read back."""


class CacheStaleError(CacheCorruptError):
    """A cache entry whose bytes pass their checksum but name a type this version does not have
    (written before the type moved or changed): computed again, never guessed at."""


class CacheUnwritableError(OSError):
    """The cache folder cannot be created or written."""


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """The cache folder: ``path``, else $SCALING_UTILS_CACHE, else ~/.cache/scaling_utils."""
    chosen = path or os.environ.get(ENV_VAR) or Path.home() / ".cache" / "scaling_utils"
    folder = Path(chosen).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _unwritable(folder, err) from err
    return folder


def pin_cache_dir() -> Path | None:
    """Make a relative $SCALING_UTILS_CACHE absolute, from the folder the command was started in,
    before notebooks run in another folder (where it would mean a folder inside the sources);
    returns the folder it names, or None when the variable is not set."""
    value = os.environ.get(ENV_VAR)
    if not value:
        return None
    folder = Path(value).expanduser().resolve()
    os.environ[ENV_VAR] = str(folder)
    return folder


def check_writable(path: str | os.PathLike | None = None) -> Path:
    """The cache folder, after proving that a file can be created in it: call this before the
    first computation, so that no result is computed and then lost."""
    folder = cache_dir(path)
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-check.")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise _unwritable(folder, err) from err
    return folder


def _unwritable(folder: Path, err: OSError) -> CacheUnwritableError:
    reason = os.strerror(err.errno) if err.errno else str(err)
    return CacheUnwritableError(
        err.errno or errno.EACCES,
        f"the result cache {folder} cannot be written ({reason}). Point ${ENV_VAR} at a folder "
        f"you can write (e.g. `export {ENV_VAR}=$HOME/.cache/scaling_utils`), or make this one "
        "writable; nothing has been computed yet.")


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


def text_digest(text: str) -> str:
    """Short SHA-256 of a text's UTF-8 bytes, for cache keys."""
    return hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()[:16]


# A digest is reused only for a file last changed this long before it was hashed: a write in the
# same clock tick as the hashing would otherwise leave size and times unchanged.
_SETTLED_NS = 2_000_000_000


def file_digest(path: str | os.PathLike, records: str | os.PathLike | None = None) -> str:
    """SHA-256 of a file's bytes.  Computed once, then kept (under ``records``, default the
    cache's ``digests/`` folder) beside the file's size, times and inode, and recomputed
    whenever one of those changes, so that checking large inputs on every run stays cheap."""
    path = Path(path).resolve()
    folder = Path(records) if records is not None else cache_dir() / "digests"
    record = folder / f"{hashlib.sha256(str(path).encode()).hexdigest()[:24]}.json"
    st = path.stat()
    stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
    try:
        known = json.loads(record.read_text())
        if known["path"] == str(path) and known["stat"] == stamp and \
                max(st.st_mtime_ns, st.st_ctime_ns) < known["hashed_at_ns"] - _SETTLED_NS:
            return known["sha256"]
    except (OSError, ValueError, KeyError):
        pass
    hashed_at = time.time_ns()
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            h.update(block)
    digest = h.hexdigest()
    try:
        atomic_write_bytes(record, json.dumps({"path": str(path), "stat": stamp, "sha256": digest,
                                               "hashed_at_ns": hashed_at}).encode())
    except OSError:
        pass  # a read-only place for records only costs the hashing next time
    return digest


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename (never half-written).
    The temporary file is created with mode 0o666, so the umask (and any default ACL) decides
    its permissions, as for any new file; ``tempfile.mkstemp`` would make it owner-only."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OSError(err.errno, f"no space left to write {path} ({len(data):,} bytes) in "
                          f"{path.parent}: free space there, or point ${ENV_VAR} at a folder on "
                          "a disk with room; what was computed before is kept") from err
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def cached(kind: str, config: Any, compute: Callable[[], Any],
           folder: str | os.PathLike | None = None, refresh: bool = False) -> Any:
    """Return the cached result for ``config``, computing and storing it on a miss.

    The entry lives at ``<cache>/<kind>/<hash>.npz``: one file holding the result's bytes, their
    SHA-256 and the key it was written for, replaced in one rename, so two processes writing
    the same key leave one whole entry or the other, never a mix; an entry copied over another
    key's file is refused.  The configuration is also written beside it as JSON, for people.
    """
    base = cache_dir(folder) / kind
    config = {"config": config, "scaling_utils": __version__}  # new code, new entries
    key = config_hash(config)
    path = base / f"{key}{ENTRY_SUFFIX}"
    if path.exists() and not refresh:
        try:
            result = load_entry(path, key)
            _count(kind, "read")
            return result
        except CacheStaleError:
            pass  # an older version's entry: computed again below and replaced
    start = time.perf_counter()
    result = compute()
    _count(kind, "computed")
    seconds = round(time.perf_counter() - start, 3)  # for people and `phase_seconds`, not the key
    payload = dumps(result)
    entry = {"key": key, "kind": kind, "sha256": hashlib.sha256(payload).hexdigest()}
    atomic_write_bytes(base / f"{key}.json", json.dumps({**config, **entry, "seconds": seconds},
                                                        indent=1, default=_plain).encode())
    atomic_write_bytes(path, _entry_bytes(entry, payload))
    return loads(payload)  # what a later run reads back, so a first run sees the same values


@contextmanager
def count_results() -> Iterator[dict]:
    """Count, by kind, the cached results read back and those computed inside the block (in
    this process, and in the workers of :func:`~.executor.run_jobs`): the block's value,
    ``{kind: {"read": n, "computed": m}}``."""
    counts: dict = {}
    token = _COUNTS.set(counts)
    try:
        yield counts
    finally:
        _COUNTS.reset(token)
        add_counts(counts)  # an enclosing block counts what this one did


def counting() -> bool:
    """Whether a :func:`count_results` block is open here."""
    return _COUNTS.get() is not None


def add_counts(counts: dict) -> None:
    """Add counts made elsewhere (a worker's) to the open block's, if any."""
    for kind, outcomes in counts.items():
        for outcome, n in outcomes.items():
            _count(kind, outcome, n)


def _count(kind: str, outcome: str, n: int = 1) -> None:
    counts = _COUNTS.get()
    if counts is not None:
        counts.setdefault(kind, {"read": 0, "computed": 0})[outcome] += n


def describe_counts(counts: dict) -> str:
    """One line for a reader: what came from the result cache and what was computed."""
    def listed(outcome):
        parts = [f"{KIND_NAMES.get(kind, kind)} {c[outcome]}" for kind, c in counts.items()
                 if c[outcome]]
        return ", ".join(parts) or "nothing"
    return (f"Read from the result cache: {listed('read')}. Computed in this run: "
            f"{listed('computed')}.")


def phase_seconds(folder: str | os.PathLike | None = None) -> dict[str, float]:
    """Seconds spent computing the entries of each kind in a cache folder (``train``,
    ``error_rates``, ...), read from the entries' JSON files: where a build's time went.  An
    entry computed inside another's computation counts in both."""
    base, totals = cache_dir(folder), {}
    for path in sorted(base.glob("*/*.json")) + sorted(base.glob("*/*/*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and "seconds" in record and "kind" in record:
            totals[record["kind"]] = round(totals.get(record["kind"], 0.0) + record["seconds"], 3)
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


def _entry_bytes(entry: dict, payload: bytes) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, entry=np.frombuffer(json.dumps(entry).encode(), np.uint8),
             payload=np.frombuffer(payload, np.uint8))
    return buffer.getvalue()


def load_entry(path: Path, key: str | None = None) -> Any:
    """Read one cache entry, verifying its checksum and, when ``key`` is given, that it was
    written for that key."""
    path = Path(path)
    fix = (f"Delete it (`rm {path} {path.with_suffix('.json')}`) and run again: that entry is "
           "recomputed, the others are kept.")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "entry" not in archive.files:  # the two-file layout of earlier versions
                raise CacheStaleError(f"cache entry {path} has an earlier version's layout. {fix}")
            entry = json.loads(archive["entry"].tobytes())
            payload = archive["payload"].tobytes()
    except CacheStaleError:
        raise
    except Exception as err:  # not an archive at all: cut short, or another file
        raise CacheCorruptError(f"cache entry {path} is not a whole entry (truncated or "
                                f"replaced: {type(err).__name__}: {err}). {fix}") from err
    if key is not None and entry.get("key") != key:
        raise CacheCorruptError(f"cache entry {path} was written for key {entry.get('key')!r}, "
                                f"not for {key!r}: it was copied or renamed from another entry. "
                                f"{fix}")
    if hashlib.sha256(payload).hexdigest() != entry.get("sha256"):
        raise CacheCorruptError(f"cache entry {path} holds bytes that do not match the checksum "
                                f"written with them (damaged on disk). {fix}")
    try:
        return loads(payload)
    except (CodecError, TypeError, ValueError) as err:  # intact, but another version's types
        raise CacheStaleError(f"cache entry {path} cannot be read by this version ({err}). "
                              f"{fix}") from err
