"""Checks on what a report is asked about: a fitted single-label estimator, ``X`` and ``y``
of one length, labels the classifier knows, and a ``y_score`` of the right shape."""

from __future__ import annotations

import numpy as np
from sklearn.base import is_classifier
from sklearn.utils.validation import _num_samples, check_is_fitted


def _check_fitted(estimator) -> None:
    check_is_fitted(estimator)
    if not hasattr(estimator, "predict"):
        raise TypeError(f"{type(estimator).__name__} has no predict method; pass a fitted estimator.")


def _check_single_label(estimator) -> None:
    """Refuse multi-label classifiers: every analysis here reads one true and one
    predicted class per sample (confusion pairs, -log p(true class))."""
    if getattr(estimator, "_multilabel", False):
        raise ValueError(
            f"This {type(estimator).__name__} is multi-label (fitted on a 2-D indicator y); sktransfer.report "
            "reads one class per sample and doesn't support multi-label models yet. Use scikit-learn's per-label "
            "metrics instead, e.g. sklearn.metrics.classification_report(y, clf.predict(X)) or "
            "multilabel_confusion_matrix(y, clf.predict(X))."
        )


def _check_X_y(estimator, X, y) -> np.ndarray:
    """``y`` as an array of the same length as ``X``, with labels the classifier knows."""
    _check_fitted(estimator)
    _check_single_label(estimator)
    if X is None or y is None:
        raise ValueError(f"X and y are both required, got {'X' if X is None else 'y'}=None.")
    n_X, n_y = _num_samples(X), _num_samples(y)
    if n_X != n_y:
        raise ValueError(f"X has {n_X} samples but y has {n_y}; pass one target per sample.")
    if n_X == 0:
        raise ValueError("X and y are empty; a report needs at least one sample.")
    y = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y)
    if not is_classifier(estimator):
        return y
    # Labels are matched as strings (y may be an object array, or '1' for the class 1) and
    # returned as the classifier's own, so they compare equal to its predictions.
    position = {str(c): i for i, c in enumerate(estimator.classes_)}
    unknown = sorted({str(label) for label in y.ravel()} - set(position))
    if unknown:
        raise ValueError(
            f"y holds label(s) the classifier never saw in fit: {unknown[:5]}; it knows {list(position)}."
        )
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D (one label per sample) for a classifier, got shape {y.shape}.")
    return np.asarray(estimator.classes_)[[position[str(label)] for label in y]]


def _checked_score(y_score, shape: tuple, what: str) -> np.ndarray:
    y_score = np.asarray(y_score, dtype=np.float64)
    if y_score.shape != tuple(shape):
        raise ValueError(
            f"y_score has shape {y_score.shape}, but the estimator's {what} has shape {tuple(shape)} for this X; "
            f"pass the estimator's own {what}, or y_score=None to compute it."
        )
    if not np.isfinite(y_score).all():
        raise ValueError(f"y_score holds NaN or infinite values; pass the estimator's own {what}.")
    return y_score
