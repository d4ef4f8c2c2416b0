"""Checks of the targets y in fit: class labels, indicator matrices, constant labels."""

from __future__ import annotations

import math
import warnings
from numbers import Number

import numpy as np


# ------------------------------------------------------------------ y
def _is_missing(value) -> bool:
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return True
    return isinstance(value, (float, np.floating)) and math.isnan(value)


def check_class_labels(y) -> None:
    """Raise when classification labels hold None or NaN (before numpy compares None and str)."""
    if y is None:
        return
    # Lists and tuples as objects: numpy would turn ['a', None] into strings or [1, None] into an error.
    values = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y if isinstance(y, np.ndarray) else
                        np.asarray(y, dtype=object))
    if values.ndim != 1:
        return  # shapes are checked with the targets
    if values.dtype.kind == "f":
        missing = np.isnan(values)
    elif values.dtype == object:
        missing = np.fromiter((_is_missing(v) for v in values), dtype=bool, count=len(values))
    else:
        return
    n_missing = int(missing.sum())
    if n_missing:
        first = int(np.flatnonzero(missing)[0])
        raise ValueError(
            f"y holds {n_missing} missing label(s) (None or NaN) out of {len(values)}, the first at index {first}; "
            "a classifier needs a label for every sample. Drop those samples (e.g. keep = y.notna(); "
            "X, y = X[keep], y[keep]) or fill them with a label of their own (e.g. y.fillna('unknown'))."
        )


def check_indicator_targets(y: np.ndarray) -> None:
    """Raise when a 2-D ``y`` is not a 0/1 indicator matrix (one column per label)."""
    if y.shape[1] == 0:
        raise ValueError(f"y has shape {y.shape}: no label columns. A multi-label y needs one 0/1 column per label.")
    values = np.unique(y) if y.dtype.kind in "biuf" else None
    if values is not None and np.isin(values, (0, 1)).all():
        return
    from sklearn.utils.multiclass import type_of_target

    try:
        kind = f"type_of_target(y) is {type_of_target(y)!r}"
    except ValueError as exc:  # NaN, or values it can't type
        kind = str(exc).rstrip(".")
    shown = "" if values is None else f" (values {values[:5].tolist()}{' ...' if len(values) > 5 else ''})"
    raise ValueError(
        f"y is 2-D, shape {y.shape}, but not a binary indicator matrix{shown}: {kind}. A 2-D y is taken as "
        "multi-label targets, one column per label holding 0/1 (or False/True). For lists of labels per sample "
        "use sklearn.preprocessing.MultiLabelBinarizer().fit_transform(y); for several multi-class outputs fit "
        "one classifier per column with sklearn.multioutput.MultiOutputClassifier."
    )


def warn_constant_labels(y: np.ndarray) -> None:
    """Warn about label columns that are 0 (or 1) for every sample: nothing to learn there.

    A warning, not an error: a rare label can be absent from one cross-validation
    fold's training rows, and the model can still predict it as always absent.
    """
    n_positive = np.asarray(y, dtype=np.float64).sum(axis=0)
    for count, what in ((0, "0 (never present)"), (len(y), "1 (always present)")):
        columns = np.flatnonzero(n_positive == count)
        if len(columns):
            warnings.warn(
                f"y's label column(s) {columns[:10].tolist()}{' ...' if len(columns) > 10 else ''} are {what} for "
                f"every one of the {len(y)} training samples: the model can only learn to predict that constant. "
                "Drop those columns, or add samples where they differ.",
                UserWarning,
                stacklevel=5,
            )


# ------------------------------------------------------------------ validation split
def _label_kind(value) -> str | None:
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes):
        return "bytes"
    if isinstance(value, Number):
        return "number"
    return None


def check_uniform_labels(y) -> None:
    """Refuse labels that mix strings, bytes and numbers: numpy would silently turn
    ``[1, "a"]`` into ``["1", "a"]`` (and ``b"x"`` into ``"x"``), and predictions would come
    back as labels the user never gave."""
    if isinstance(y, np.ndarray) and y.dtype != object:
        return
    values = y.tolist() if hasattr(y, "tolist") else y
    if not isinstance(values, (list, tuple)):
        return
    examples = {}
    for value in values:
        examples.setdefault(_label_kind(value), value)
    examples.pop(None, None)
    if len(examples) > 1:
        mixed = ", ".join(f"{kind}s (e.g. {example!r})" for kind, example in sorted(examples.items()))
        raise TypeError(
            f"y mixes {mixed}; numpy would convert them to one type and predictions would come back as labels you "
            "never gave. Give every label one type, e.g. y = [str(label) for label in y]."
        )
