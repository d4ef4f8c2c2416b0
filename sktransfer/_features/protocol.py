"""The interface a ``feature_cache`` store object implements, and the check of what it returns."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class FeatureStore(Protocol):
    """Where frozen-backbone feature rows are kept between fits: pass one as ``feature_cache``.

    Any object with these two methods will do, as scikit-learn's ``memory=`` takes
    any object with joblib.Memory's ``cache`` method; sktransfer ships
    :class:`MemoryFeatureStore` (this process), :class:`DiskFeatureStore` (an SQLite file,
    for the processes of one machine) and :class:`FsspecFeatureStore` (a directory or
    bucket any machine can reach: a Dask cluster's workers).

    A key is 16 bytes, a hash of the backbone's fingerprint (name, weights,
    preprocessing, pooling, stage) and of one sample's content, so a key never
    names stale features and a store needs no invalidation. A row is a 1-D float32
    array, the features of one sample.

    Methods
    -------
    get_many(keys)
        ``keys`` is a list of ``bytes``; returns a dict ``{key: row}`` of those found.
    put_many(rows)
        ``rows`` is a dict ``{key: row}``; stores them, returns None.

    Notes
    -----
    What sktransfer expects of a store:

    - ``get_many`` returns the rows it has, and leaves out the keys it hasn't; it may
      forget rows at any time (a bounded store evicts them). A row it returns must be
      the one put under that key: a 1-D floating array of the same length. Where the
      rows can't be features of that backbone (another dtype or shape, lengths that
      differ, or differ from the classifier's head) the fit or prediction raises a
      :class:`ValueError` naming the store.
    - ``put_many`` may be called by many threads, processes or machines at once, with the
      same keys: the rows of one key are equal, so any of them may win.
    - ``sklearn.base.clone`` deep-copies the parameter, and parallel searches pickle it
      to their workers: a copy must be a handle on the *same* storage (as a copied
      ``joblib.Memory`` keeps its location), else the candidates of a search share
      nothing.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer import FeatureStore
    >>> class DictStore:
    ...     def __init__(self):
    ...         self.rows = {}
    ...     def get_many(self, keys):
    ...         return {k: self.rows[k] for k in keys if k in self.rows}
    ...     def put_many(self, rows):
    ...         self.rows.update(rows)
    ...     def __deepcopy__(self, memo):
    ...         return self  # clone's copy shares the rows
    >>> isinstance(DictStore(), FeatureStore)
    True
    """

    def get_many(self, keys: list[bytes]) -> dict[bytes, np.ndarray]: ...

    def put_many(self, rows: dict[bytes, np.ndarray]) -> None: ...


def check_found_rows(store, found, asked) -> None:
    """Raise if ``store.get_many(asked)`` returned something that is not a dict of feature rows.

    A wrong row would otherwise train the head on garbage, or fail deep inside numpy
    or torch with a shape error that doesn't name the store.
    """
    if not isinstance(found, dict):
        raise TypeError(
            f"feature_cache={store!r}: get_many returned a {type(found).__name__}, not a dict {{key: row}}. "
            "A feature store's get_many must return the rows it has as a dict."
        )
    asked = set(asked)
    for key, row in found.items():
        problem = None
        if key not in asked:
            problem = f"a key {key!r} that was not asked for"
        elif not isinstance(row, np.ndarray):
            problem = f"a {type(row).__name__} instead of a numpy array"
        elif row.ndim != 1:
            problem = f"a row of shape {row.shape} instead of a 1-D array"
        elif not np.issubdtype(row.dtype, np.floating):
            problem = f"a row of dtype {row.dtype} instead of a floating one"
        elif not np.isfinite(row).all():
            problem = (f"a row holding {int((~np.isfinite(row)).sum())} NaN or infinite value(s) under key {key!r} "
                       "(the backbone's features are finite; the store's copy is damaged)")
        if problem is not None:
            raise ValueError(
                f"feature_cache={store!r}: get_many returned {problem}. A feature store must return, for each key "
                "it has, the 1-D float array that put_many stored under it; clear the store or pass another one."
            )


def check_row_widths(store, rows_by_stage: dict, expected: int | None) -> None:
    """Raise a ValueError unless each stage's rows have one length, and all stages
    together ``expected`` (the head's input size, where known)."""
    widths = {}
    for stage, rows in rows_by_stage.items():
        lengths = sorted({len(row) for row in rows})
        if len(lengths) > 1:
            raise ValueError(
                f"feature_cache={store!r}: rows of one backbone{'' if stage is None else f' stage {stage!r}'} came "
                f"back with different lengths {lengths}. The store returned rows it was not given under those keys; "
                "clear the store or pass another one."
            )
        widths[stage] = lengths[0] if lengths else 0
    if expected is not None and sum(widths.values()) != expected:
        raise ValueError(
            f"feature_cache={store!r}: the stored rows have {sum(widths.values())} features, but the backbone gives "
            f"{expected}. The store returned rows it was not given under those keys; clear the store or pass "
            "another one."
        )
