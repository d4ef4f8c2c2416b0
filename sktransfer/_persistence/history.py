"""The training history (skorch's per-epoch rows) in a model file's ``config.json``, so that
a report made after :func:`sktransfer.load` has learning curves.

Each epoch row keeps its numbers, flags and names (losses, metrics, ``dur``, ``*_best``);
the per-batch rows are left out (the epoch means are what the curves show), and a
non-finite number becomes null (JSON has no NaN).
"""

from __future__ import annotations

import math
import numbers


def _plain(value):
    if isinstance(value, (bool, str)) or value is None:
        return value, True
    if isinstance(value, numbers.Integral):
        return int(value), True
    if isinstance(value, numbers.Real):
        value = float(value)
        return (value if math.isfinite(value) else None), True
    return None, False


def encode_history(net) -> list[dict]:
    """The epoch rows of ``net.history`` as JSON data (an empty list when there is none)."""
    rows = []
    for row in getattr(net, "history", None) or []:
        kept = {}
        for key, value in row.items():
            if key == "batches":
                continue
            plain, ok = _plain(value)
            if ok:
                kept[key] = plain
        rows.append(kept)
    return rows


def restore_history(net, rows) -> None:
    """Put saved epoch rows back as ``net.history`` (nothing for files saved without one)."""
    from skorch.history import History

    if rows:
        net.history = History([{**row, "batches": []} for row in rows])
