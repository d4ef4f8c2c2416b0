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

import hashlib
import os
import sqlite3
import threading
from collections import OrderedDict

import numpy as np
import torch

DEFAULT_MEMORY_BYTES = int(os.environ.get("SKTRANSFER_FEATURE_CACHE_BYTES", 2 * 1024**3))


def digest(*parts: bytes) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.digest()


def file_digest(path, chunk_size: int = 1 << 20) -> bytes:
    """Hash of a file's bytes, read in chunks: the file's identity in a cache key.

    Computed on every call, never memoised by path, size or modification time: a
    file rewritten with the same size and timestamps would fool such a memo. Hashing
    an image costs 1/14 to 1/22 of decoding and resizing it (3-90 KiB PNGs), let alone the
    backbone pass it saves.
    """
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while block := f.read(chunk_size):
            h.update(block)
    return h.digest()


def fingerprint_module(module: torch.nn.Module) -> bytes:
    """Hash of a module's class and every parameter and buffer, as loaded."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{type(module).__module__}.{type(module).__qualname__}".encode())
    for name, tensor in module.state_dict().items():
        h.update(name.encode())
        t = tensor.detach().cpu().contiguous()
        h.update(str(t.dtype).encode() + str(tuple(t.shape)).encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.digest()


def backbone_fingerprint(spec, weights: bytes, *parts) -> bytes:
    """Everything that changes the features of one sample: the backbone's identity, its
    weights (from :func:`fingerprint_module`) and the adapter's and stage's ``parts``."""
    description = repr((spec.name, spec.modality, spec.plugin, spec.distribution, *parts))
    return digest(description.encode(), weights)


class MemoryFeatureStore:
    """A process-wide LRU store of feature rows, bounded in bytes."""

    def __init__(self, max_bytes: int = DEFAULT_MEMORY_BYTES):
        self.max_bytes = max_bytes
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


class DiskFeatureStore:
    """Feature rows in an SQLite file under ``path``, shared by processes (``n_jobs > 1``)."""

    def __init__(self, path):
        self.path = os.fspath(path)
        os.makedirs(self.path, exist_ok=True)
        self.file = os.path.join(self.path, "features.sqlite")
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS rows (key BLOB PRIMARY KEY, dtype TEXT, value BLOB)")
        self.hits = 0
        self.misses = 0

    def _connect(self):
        # A generous timeout: parallel search workers write to the same file.
        return sqlite3.connect(self.file, timeout=120)

    def get_many(self, keys: list[bytes]) -> dict[bytes, np.ndarray]:
        found = {}
        with self._connect() as db:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for key, dtype, value in db.execute(f"SELECT key, dtype, value FROM rows WHERE key IN ({marks})", chunk):
                    found[bytes(key)] = np.frombuffer(value, dtype=dtype)
        self.hits += len(found)
        self.misses += len(keys) - len(found)
        return found

    def put_many(self, rows: dict[bytes, np.ndarray]) -> None:
        with self._connect() as db:
            db.executemany(
                "INSERT OR IGNORE INTO rows VALUES (?, ?, ?)",
                [(k, v.dtype.str, v.tobytes()) for k, v in rows.items()],
            )

    def clear(self) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM rows")


_MEMORY_STORE = MemoryFeatureStore()


def memory_store() -> MemoryFeatureStore:
    """The process-wide in-memory store (``feature_cache="memory"``)."""
    return _MEMORY_STORE


def get_store(feature_cache):
    """The store for an estimator's ``feature_cache`` parameter, or None."""
    if feature_cache is None:
        return None
    if isinstance(feature_cache, str) and feature_cache == "memory":
        return _MEMORY_STORE
    return DiskFeatureStore(feature_cache)
