"""One pass of the model over ``X`` (predictions and per-sample losses), the worst
predictions, and the most frequent mistakes of a classifier."""

from __future__ import annotations

from collections import Counter
from typing import NamedTuple

import numpy as np
from sklearn.base import is_classifier

from sktransfer._report.checks import _check_X_y, _checked_score


class TopLosses(NamedTuple):
    """The worst predictions, highest loss first (arrays of length ``k``).

    ``probability`` is the predicted class's probability for classifiers and None
    for regressors.
    """

    index: np.ndarray
    true: np.ndarray
    predicted: np.ndarray
    probability: np.ndarray | None
    loss: np.ndarray


# Public as sktransfer.report.TopLosses: reprs, help() and pickles name the public module.
TopLosses.__module__ = "sktransfer.report"


class _Outputs(NamedTuple):
    """One pass of the model over ``X``, shared by every section of a report."""

    y_true: np.ndarray
    y_pred: np.ndarray
    proba: np.ndarray | None  # classifiers only
    loss: np.ndarray  # per sample


def _outputs(estimator, X, y, y_score=None) -> _Outputs:
    """Predictions and per-sample losses: cross-entropy for classifiers (plain, without
    the label smoothing or class weights of training), squared error for regressors
    (averaged over outputs). ``y_score``: ``predict_proba(X)`` or ``predict(X)`` already
    computed, so the model doesn't run again."""
    y = _check_X_y(estimator, X, y)
    if is_classifier(estimator):
        classes = np.asarray(estimator.classes_)
        if y_score is None:
            log_proba = np.asarray(estimator.predict_log_proba(X), dtype=np.float64)
        else:
            proba = _checked_score(y_score, (len(y), len(classes)), "predict_proba(X)")
            with np.errstate(divide="ignore"):
                log_proba = np.log(proba)
        true_index = np.searchsorted(classes, y)  # y holds classes_ items, and classes_ is sorted
        loss = -log_proba[np.arange(len(y)), true_index]
        return _Outputs(y, classes[np.argmax(log_proba, axis=1)], np.exp(log_proba), loss)
    if y_score is None:
        y_pred = np.asarray(estimator.predict(X), dtype=np.float64)
    else:
        y_pred = _checked_score(y_score, np.shape(y), "predict(X)")
    y_float = np.asarray(y, dtype=np.float64)
    loss = ((y_pred - y_float) ** 2).reshape(len(y_float), -1).mean(axis=1)
    return _Outputs(y_float, y_pred, None, loss)


def _top(out: _Outputs, k: int, where=None) -> TopLosses:
    """The ``k`` highest losses, among the rows where ``where`` is True (all when None)."""
    # Stable sort: equal losses keep the order of X.
    order = np.argsort(-out.loss, kind="stable")
    if where is not None:
        order = order[np.asarray(where)[order]]
    order = order[:k]
    probability = None if out.proba is None else out.proba[order].max(axis=1)
    return TopLosses(order, out.y_true[order], out.y_pred[order], probability, out.loss[order])


def _as_python(value):
    return value.item() if isinstance(value, np.generic) else value


def _confused_pairs(y_true, y_pred, min_count: int = 1) -> list[tuple]:
    """``(true, predicted, count)`` of the mistakes, most frequent first (ties in label order)."""
    counts = Counter((_as_python(t), _as_python(p)) for t, p in zip(y_true, y_pred) if t != p)
    pairs = [(t, p, c) for (t, p), c in counts.items() if c >= min_count]
    return sorted(pairs, key=lambda item: (-item[2], str(item[0]), str(item[1])))
