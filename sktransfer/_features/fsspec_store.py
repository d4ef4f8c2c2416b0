"""FsspecFeatureStore: feature rows as small files under any fsspec URL, for many machines."""

from __future__ import annotations

import contextlib
import io
import os
import uuid
import warnings

import numpy as np

from sktransfer.exceptions import FeatureCacheError, FeatureCacheWarning

_SUFFIX = ".npy"


def _import_fsspec():
    try:
        import fsspec.core
    except ImportError:
        raise ImportError(
            "FsspecFeatureStore needs fsspec: pip install 'sktransfer[dask]' (or pip install fsspec, plus s3fs or "
            "gcsfs for cloud buckets)."
        ) from None
    return fsspec.core


class FsspecFeatureStore:
    """Feature rows as one small file per row under an fsspec URL, shared by machines.

    Works wherever fsspec reaches: ``s3://bucket/prefix`` (with s3fs), ``gs://``
    (gcsfs), a directory every machine mounts (``file:///shared/feats`` or a plain
    path), or ``memory://`` (this process only). Every worker of a Dask cluster can
    then reuse the rows any other computed, in this search or a later one.

    Parameters
    ----------
    url : str or os.PathLike
        Where the rows go; a directory is created as needed.
    **storage_options
        Passed to the file system, e.g. ``anon=False`` or ``key=``/``secret=`` for s3fs.

    Notes
    -----
    A row is the file ``<url>/<2 hex digits>/<32 hex digits>.npy``, named by its key.
    Writes need no locks: on a local or mounted file system a row is written to a
    temporary name in its directory and renamed into place (a rename is atomic, also
    on NFS); on object stores and others it is one PUT of the whole file. Readers so
    never see half a row, and two workers writing one key write the same bytes.
    Reads fetch many rows in one batched ``cat`` (concurrent requests on object
    stores). A file that is not a valid row is ignored with a
    :class:`~sktransfer.exceptions.FeatureCacheWarning` and recomputed.

    A copy or an unpickled one (``sklearn.base.clone``, a Dask worker) is a handle on
    the same URL; credentials in ``storage_options`` travel with it, so on a shared
    cluster prefer the file system's own configuration (environment variables,
    config files) to passing secrets here.

    Unlike :class:`DiskFeatureStore`, whose SQLite file must stay on a local disk,
    this store is made for network file systems and object stores. Nothing is ever
    deleted but by :meth:`clear`.

    Examples
    --------
    >>> from sktransfer import FsspecFeatureStore, TransferClassifier
    >>> store = FsspecFeatureStore("memory://sktransfer-doc-example")
    >>> clf = TransferClassifier("efficientnet_lite0", strategy="head", feature_cache=store)
    """

    def __init__(self, url, **storage_options):
        if not isinstance(url, (str, os.PathLike)):
            raise TypeError(
                f"FsspecFeatureStore(url={url!r}): url must be a str or path, e.g. 's3://bucket/features' or "
                "'/shared/features'."
            )
        self.url = os.fspath(url)
        self.storage_options = storage_options
        self.hits = 0
        self.misses = 0
        self._connect()

    def _connect(self):
        core = _import_fsspec()
        try:
            self._fs, self._root = core.url_to_fs(self.url, **self.storage_options)
        except (ImportError, ValueError) as exc:  # an unknown protocol, or its package missing
            raise ValueError(
                f"FsspecFeatureStore({self.url!r}): fsspec can't open this URL ({exc}). Use a path or a URL whose "
                "protocol fsspec knows, with its package installed (s3fs for s3://, gcsfs for gs://)."
            ) from exc
        self._root = self._root.rstrip("/")
        self._local = "file" in _protocols(self._fs)

    # Only the URL and options travel: the file system object is made again where it lands.
    def __getstate__(self):
        return {"url": self.url, "storage_options": self.storage_options, "hits": self.hits, "misses": self.misses}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._connect()

    def __repr__(self):
        return f"FsspecFeatureStore({self.url!r})"

    def _path(self, key: bytes) -> str:
        name = key.hex()
        return f"{self._root}/{name[:2]}/{name}{_SUFFIX}"

    def get_many(self, keys: list[bytes]) -> dict[bytes, np.ndarray]:
        if not keys:
            return {}
        by_name = {key.hex() + _SUFFIX: key for key in keys}
        try:
            blobs = self._fs.cat([self._path(key) for key in keys], on_error="omit")
        except Exception as exc:  # noqa: BLE001 - any file system's failure, named with the URL
            raise self._error("reading", exc) from exc
        found = {}
        for path, blob in blobs.items():
            key = by_name.get(path.rsplit("/", 1)[-1])
            if key is None:
                continue
            row = _decode(blob)
            if row is None:
                warnings.warn(
                    f"The feature cache {self.url!r} has an unreadable row file {path!r}; it is recomputed and "
                    "written again.",
                    FeatureCacheWarning,
                    stacklevel=2,
                )
                continue
            found[key] = row
        self.hits += len(found)
        self.misses += len(keys) - len(found)
        return found

    def put_many(self, rows: dict[bytes, np.ndarray]) -> None:
        blobs = {self._path(key): _encode(row) for key, row in rows.items()}
        try:
            if self._local:
                for path, blob in blobs.items():
                    _write_and_rename(path, blob)
            elif blobs:
                self._fs.pipe(blobs)  # one PUT per row, concurrent on async file systems
        except Exception as exc:  # noqa: BLE001
            raise self._error("writing", exc) from exc

    def clear(self) -> None:
        """Delete every row (the whole directory or prefix ``url``)."""
        try:
            if self._fs.exists(self._root):
                self._fs.rm(self._root, recursive=True)
        except Exception as exc:  # noqa: BLE001
            raise self._error("clearing", exc) from exc

    def __len__(self):
        """The number of rows stored (lists every file: slow on a large bucket)."""
        if not self._fs.exists(self._root):
            return 0
        return sum(path.endswith(_SUFFIX) for path in self._fs.find(self._root))

    def _error(self, doing: str, exc: Exception) -> FeatureCacheError:
        return FeatureCacheError(
            f"The feature cache {self.url!r} failed while {doing} rows: {type(exc).__name__}: {exc}. Check that "
            "this machine can write there (credentials, permissions, free space), or pass another feature_cache."
        )


def _protocols(fs) -> tuple:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def _encode(row: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(row), allow_pickle=False)
    return buffer.getvalue()


def _decode(blob: bytes) -> np.ndarray | None:
    """The row in ``blob``, or None if it isn't a whole ``.npy`` file of a 1-D array."""
    try:
        row = np.load(io.BytesIO(blob), allow_pickle=False)
    except (ValueError, EOFError, OSError):
        return None
    return row if isinstance(row, np.ndarray) and row.ndim == 1 else None


def _write_and_rename(path: str, blob: bytes) -> None:
    """Write ``blob`` to ``path`` atomically: a reader sees no file or the whole file."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = f"{path}.tmp-{uuid.uuid4().hex}"
    try:
        with open(temporary, "wb") as f:
            f.write(blob)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise
