"""Content-keyed stores of frozen-backbone features, shared across fits.

A row's key is ``blake2b(backbone fingerprint + sample content)``: the fingerprint
covers everything that changes the backbone's output (its name and plugin, its
weights as actually loaded, the preprocessing, the pooling), and the sample part
(from the input adapter) covers the bytes of the input, or of the file it names (not
its path or timestamps: the same bytes under two names share a row).
So a cross-validation fold or a search candidate reuses the rows computed before
and computes only new ones, and a change anywhere can't give stale features.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import sqlite3
import threading
import time
import uuid
import warnings
import weakref
from collections import OrderedDict

import numpy as np

from sktransfer import _caches
from sktransfer._hashing import digest
from sktransfer.exceptions import FeatureCacheError, FeatureCacheWarning

DEFAULT_MEMORY_BYTES = int(os.environ.get("SKTRANSFER_FEATURE_CACHE_BYTES", 2 * 1024**3))


def backbone_fingerprint(spec, weights: bytes, *parts) -> bytes:
    """Everything that changes the features of one sample: the backbone's identity, its
    weights (from :func:`fingerprint_module`) and the adapter's and stage's ``parts``."""
    description = repr((spec.name, spec.modality, spec.plugin, spec.distribution, *parts))
    return digest(description.encode(), weights)


# Every MemoryFeatureStore of this process by its token, so that a copy (clone's deepcopy)
# or an unpickled one (a worker's) is the same store, not an empty stranger.
_MEMORY_STORES: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
_MEMORY_STORES_LOCK = threading.RLock()
# Those unpickled here without their original (in a worker process) live as long as the
# process, like feature_cache="memory": the worker's next candidate gets the same rows.
_ADOPTED_MEMORY_STORES: dict = {}


def _memory_store_for(token: str, max_bytes: int) -> MemoryFeatureStore:
    with _MEMORY_STORES_LOCK:
        store = _MEMORY_STORES.get(token)
        if store is None:
            store = _ADOPTED_MEMORY_STORES[token] = MemoryFeatureStore(max_bytes, _token=token)
        return store


class MemoryFeatureStore:
    """Feature rows in this process's memory, least recently used evicted first.

    ``feature_cache="memory"`` is one such store shared by the whole process. Pass
    your own to bound it differently or to keep a search's rows apart.

    Parameters
    ----------
    max_bytes : int, default=2 GiB
        The most bytes of rows it holds (``SKTRANSFER_FEATURE_CACHE_BYTES`` sets the
        default).

    Notes
    -----
    Rows never leave the process. A copy (``sklearn.base.clone`` deep-copies
    parameters) is the same store; so is an unpickled copy in the process that
    pickled it, while that one lives. In another process (a ``n_jobs > 1`` or Dask
    worker) it is that process's own store of the same identity, empty at first,
    shared by the candidates that process fits and kept for the life of the process
    (as ``"memory"`` is). To share rows between processes use
    :class:`DiskFeatureStore`, between machines :class:`FsspecFeatureStore`.
    """

    def __init__(self, max_bytes: int = DEFAULT_MEMORY_BYTES, *, _token: str | None = None):
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer)) or max_bytes < 0:
            raise ValueError(f"MemoryFeatureStore(max_bytes={max_bytes!r}): max_bytes must be an int >= 0.")
        self.max_bytes = int(max_bytes)
        self._token = _token or uuid.uuid4().hex
        with _MEMORY_STORES_LOCK:
            _MEMORY_STORES.setdefault(self._token, self)
        self._rows: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get_many(self, keys: list[bytes]) -> dict[bytes, np.ndarray]:
        found = {}
        with self._lock:
            for key in keys:
                row = self._rows.get(key)
                if row is not None:
                    self._rows.move_to_end(key)
                    found[key] = row
            self.hits += len(found)
            self.misses += len(keys) - len(found)
        return found

    def put_many(self, rows: dict[bytes, np.ndarray]) -> None:
        with self._lock:
            for key, row in rows.items():
                if key in self._rows:
                    continue
                self._rows[key] = row
                self._bytes += row.nbytes
            while self._bytes > self.max_bytes and self._rows:
                _, evicted = self._rows.popitem(last=False)
                self._bytes -= evicted.nbytes

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()
            self._bytes = 0
            self.hits = self.misses = 0

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self):
        return len(self._rows)

    def __reduce__(self):
        return _memory_store_for, (self._token, self.max_bytes)

    def __deepcopy__(self, memo):
        return self

    def __repr__(self):
        return f"MemoryFeatureStore(max_bytes={self.max_bytes})"


FEATURES_FILE = "features.sqlite"
_COLUMNS = ["key", "dtype", "value"]
# SQLite's own verdicts on a file that isn't a sound database. "database is locked"
# (SQLITE_BUSY) is not one: that is another process writing, waited for up to TIMEOUT.
_CORRUPT_CODES = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


class _WrongSchema(Exception):
    """The file is an SQLite database, but not one of feature rows."""


def _corruption(exc: Exception) -> str | None:
    """Why ``exc`` means the cache file is unusable as it is (so rebuilding it helps), or None."""
    if isinstance(exc, _WrongSchema):
        return str(exc)
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None and code & 0xFF in _CORRUPT_CODES:
        return str(exc)
    return None


def _inode(file: str):
    try:
        stat = os.stat(file)
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


class DiskFeatureStore:
    """Feature rows in an SQLite file under ``path``, shared by the processes of one machine.

    ``feature_cache="/some/dir"`` is ``DiskFeatureStore("/some/dir")``: ``n_jobs > 1``
    searches, or Dask workers on one machine, share its rows. A copy or an unpickled
    one is a handle on the same file.

    Parameters
    ----------
    path : str or os.PathLike
        A directory, created if missing; the rows go in its ``features.sqlite``.

    Notes
    -----
    Keep ``path`` on a local disk. SQLite's documentation warns that file locking on
    network file systems (NFS, SMB/CIFS) is often broken, and that two machines
    writing one database file there can corrupt it
    (https://www.sqlite.org/faq.html#q5, https://www.sqlite.org/howtocorrupt.html).
    For workers on several machines use :class:`FsspecFeatureStore`, whose writes
    need no locks.

    A ``features.sqlite`` that isn't a sound feature database (garbage bytes, truncated,
    another table layout) is moved aside to ``features.sqlite.corrupt-<time>-<pid>[-<n>]`` and
    started anew, with a :class:`~sktransfer.exceptions.FeatureCacheWarning`; its rows are
    recomputed. Anything else (a path that is a file, an unwritable directory, a full
    disk, another process holding the lock longer than ``TIMEOUT`` seconds) raises
    :class:`~sktransfer.exceptions.FeatureCacheError`, never a raw ``sqlite3`` error.
    """

    # A generous timeout: parallel search workers write to the same file.
    TIMEOUT = 120

    def __init__(self, path):
        self.path = os.fspath(path)
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise FeatureCacheError(
                f"feature_cache={self.path!r} is a file; pass a directory path (created if missing), 'memory' or None."
            )
        try:
            os.makedirs(self.path, exist_ok=True)
        except OSError as exc:
            raise FeatureCacheError(
                f"feature_cache={self.path!r}: the directory could not be created ({exc}); pass a writable "
                "directory path, 'memory' or None."
            ) from exc
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise FeatureCacheError(
                f"feature_cache={self.path!r} is a directory this process can't write to; pass a writable "
                "directory path, 'memory' or None."
            )
        self.file = os.path.join(self.path, FEATURES_FILE)
        self.hits = 0
        self.misses = 0
        self._run(lambda db: None)

    @staticmethod
    def _ensure_table(db) -> None:
        columns = [row[1] for row in db.execute("PRAGMA table_info(rows)")]
        if not columns:
            db.execute("CREATE TABLE IF NOT EXISTS rows (key BLOB PRIMARY KEY, dtype TEXT, value BLOB)")
        elif columns != _COLUMNS:
            raise _WrongSchema(f"its table 'rows' has columns {columns}, not {_COLUMNS}")

    def _run(self, operation):
        """``operation(db)`` in one transaction on a fresh connection. A corrupt file is
        rebuilt once and the operation retried on the empty one."""
        for attempt in range(2):
            inode = _inode(self.file)
            try:
                with contextlib.closing(sqlite3.connect(self.file, timeout=self.TIMEOUT)) as db, db:
                    self._ensure_table(db)
                    return operation(db)
            except (sqlite3.Error, _WrongSchema) as exc:
                reason = _corruption(exc)
                if reason is None or attempt:
                    raise self._error(exc) from exc
                self._move_aside(reason, inode)

    def _error(self, exc) -> FeatureCacheError:
        if getattr(exc, "sqlite_errorcode", 0) & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            what = f"another process held it locked for more than {self.TIMEOUT} s ({exc})"
        else:
            what = f"{type(exc).__name__}: {exc}"
        return FeatureCacheError(
            f"The feature cache {self.file!r} failed: {what}. Pass another feature_cache directory, 'memory' or None."
        )

    def _move_aside(self, reason: str, inode) -> None:
        # Another process may have rebuilt it already: then the file is a new one, keep it.
        if inode is not None and _inode(self.file) == inode:
            aside = stem = f"{self.file}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
            for n in itertools.count(1):  # never over an earlier one
                if not os.path.exists(aside):
                    break
                aside = f"{stem}-{n}"
            try:
                os.replace(self.file, aside)
                for suffix in ("-journal", "-wal", "-shm"):  # they belong to the bad file
                    if os.path.exists(self.file + suffix):
                        os.replace(self.file + suffix, aside + suffix)
            except FileNotFoundError:
                return  # moved by another process meanwhile
            except OSError as exc:
                raise FeatureCacheError(
                    f"The feature cache {self.file!r} is unreadable ({reason}) and could not be moved aside "
                    f"({exc}); delete it, or pass another feature_cache directory, 'memory' or None."
                ) from exc
            warnings.warn(
                f"The feature cache {self.file!r} was unreadable ({reason}); moved it to {aside!r} and started an "
                "empty one. Its features will be recomputed.",
                FeatureCacheWarning,
                stacklevel=2,
            )

    def get_many(self, keys: list[bytes]) -> dict[bytes, np.ndarray]:
        def get(db):
            found = {}
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for key, dtype, value in db.execute(f"SELECT key, dtype, value FROM rows WHERE key IN ({marks})", chunk):
                    found[bytes(key)] = np.frombuffer(value, dtype=dtype)
            return found

        found = self._run(get)
        self.hits += len(found)
        self.misses += len(keys) - len(found)
        return found

    def put_many(self, rows: dict[bytes, np.ndarray]) -> None:
        values = [(k, v.dtype.str, v.tobytes()) for k, v in rows.items()]
        self._run(lambda db: db.executemany("INSERT OR IGNORE INTO rows VALUES (?, ?, ?)", values))

    def clear(self) -> None:
        self._run(lambda db: db.execute("DELETE FROM rows"))

    def __len__(self):
        return self._run(lambda db: db.execute("SELECT COUNT(*) FROM rows").fetchone()[0])

    def trim(self, max_bytes: int) -> int:
        """Drop the oldest rows (first inserted) until the rows' bytes are at most ``max_bytes``,
        and give the space back to the disk; returns the number of rows dropped."""
        def drop(db):
            total = db.execute("SELECT COALESCE(SUM(LENGTH(key) + LENGTH(value)), 0) FROM rows").fetchone()[0]
            dropped, last = 0, None
            # rowid grows with insertion (INSERT OR IGNORE never rewrites a row): oldest first.
            for rowid, size in db.execute("SELECT rowid, LENGTH(key) + LENGTH(value) FROM rows ORDER BY rowid"):
                if total <= max_bytes:
                    break
                total -= size
                dropped, last = dropped + 1, rowid
            if last is not None:
                db.execute("DELETE FROM rows WHERE rowid <= ?", (last,))
            return dropped

        dropped = self._run(drop)
        if dropped or max_bytes == 0:
            with contextlib.closing(sqlite3.connect(self.file, timeout=self.TIMEOUT)) as db:
                db.execute("VACUUM")  # outside a transaction, as SQLite requires
        return dropped

    def __repr__(self):
        return f"DiskFeatureStore({self.path!r})"


_MEMORY_STORE = MemoryFeatureStore()


def memory_store() -> MemoryFeatureStore:
    """The process-wide in-memory store (``feature_cache="memory"``)."""
    return _MEMORY_STORE


def clear_memory_stores() -> None:
    """Empty ``feature_cache="memory"`` and forget the stores adopted from pickles (a worker's).

    Stores the user made stay as they are; an adopted one that a fitted estimator still
    holds is emptied too, and stays the store of its identity while it lives."""
    with _MEMORY_STORES_LOCK:
        adopted = list(_ADOPTED_MEMORY_STORES.values())
        _ADOPTED_MEMORY_STORES.clear()
    for store in (_MEMORY_STORE, *adopted):
        store.clear()


def _describe_memory_stores() -> str:
    with _MEMORY_STORES_LOCK:
        adopted = list(_ADOPTED_MEMORY_STORES.values())
    text = f"{len(_MEMORY_STORE)} feature row(s), {_MEMORY_STORE.nbytes / 2**20:.1f} MiB, in feature_cache='memory'"
    if adopted:
        text += f"; {sum(len(s) for s in adopted)} in {len(adopted)} store(s) unpickled in this process"
    return text


_caches.register("features", clear_memory_stores, _describe_memory_stores)


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(text: str) -> bool:
    """Whether ``text`` is a URL (``scheme://...``) rather than a local path."""
    return bool(_URL.match(text))


def get_store(feature_cache):
    """The store for an estimator's ``feature_cache`` parameter, or None."""
    if feature_cache is None:
        return None
    if isinstance(feature_cache, str) and feature_cache == "memory":
        return _MEMORY_STORE
    if isinstance(feature_cache, str) and is_url(feature_cache):
        # "s3://bucket/feats", "memory://feats": fsspec's, never a local folder named "s3:".
        from sktransfer._features.fsspec_store import FsspecFeatureStore

        return FsspecFeatureStore(feature_cache)
    if isinstance(feature_cache, (str, os.PathLike)):
        return DiskFeatureStore(feature_cache)
    return feature_cache  # a store object (FeatureStore); _parameter_constraints checked its methods
