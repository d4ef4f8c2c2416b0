"""Reports on a fitted estimator: learning curves, confusion, worst predictions, one HTML file.

In the spirit of fastai's ``plot_top_losses`` and ``most_confused``::

    from sktransfer.report import html_report, most_confused, plot_top_losses, top_losses

    most_confused(clf, X_test, y_test)          # [(true, predicted, count), ...]
    top_losses(clf, X_test, y_test, k=5)        # the 5 samples the model got most wrong
    plot_top_losses(clf, X_test, y_test).savefig("worst.png")
    html_report(clf, X_test, y_test, "report.html")

The plots need matplotlib (``pip install sktransfer[report]``). They draw on
:class:`matplotlib.figure.Figure` objects made without pyplot: nothing is shown, no
global backend is switched, and no figure stays registered with pyplot after use.
"""

from __future__ import annotations

import os

import numpy as np
from sklearn.base import is_classifier

from sktransfer._report.checks import _check_X_y
from sktransfer._report.document import _document
from sktransfer._report.figures import (
    _confusion,
    _figure,
    _learning_curves,
    _plot_worst,
)
from sktransfer._report.losses import TopLosses, _confused_pairs, _outputs, _top

__all__ = [
    "TopLosses",
    "html_report",
    "most_confused",
    "plot_confusion_matrix",
    "plot_learning_curves",
    "plot_top_losses",
    "top_losses",
]


# ---------------------------------------------------------------------------- analyses
def most_confused(estimator, X, y, min_count: int = 1) -> list[tuple]:
    """The most frequent mistakes of a classifier, like fastai's ``most_confused``.

    Parameters
    ----------
    estimator : fitted classifier
    X : samples the estimator accepts
    y : array-like of shape (n_samples,)
        True labels.
    min_count : int, default=1
        Leave out pairs seen fewer times than this.

    Returns
    -------
    list of (true, predicted, count)
        Pairs with ``true != predicted``, most frequent first (ties in label order).
    """
    if not is_classifier(estimator):
        raise TypeError(f"most_confused needs a classifier, got {type(estimator).__name__}.")
    y = _check_X_y(estimator, X, y)
    return _confused_pairs(y, estimator.predict(X), min_count)


def top_losses(estimator, X, y, k: int = 9) -> TopLosses:
    """The ``k`` samples with the highest loss, highest first.

    The loss is the per-sample cross-entropy ``-log p(true class)`` for classifiers and
    the squared error (mean over outputs) for regressors.

    Parameters
    ----------
    estimator : fitted TransferClassifier or TransferRegressor (or any sklearn estimator
        with ``predict_log_proba``/``classes_``, or ``predict``)
    X : samples the estimator accepts
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
    k : int, default=9
        How many; fewer when X is smaller.

    Returns
    -------
    TopLosses
        ``index`` (rows of X), ``true``, ``predicted``, ``probability`` (of the
        predicted class; None for regressors) and ``loss``.
    """
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}.")
    return _top(_outputs(estimator, X, y), k)


# ---------------------------------------------------------------------------- plots
def plot_learning_curves(estimator, ax=None):
    """Training (and validation, when there was a split) loss per epoch.

    Parameters
    ----------
    estimator : fitted TransferClassifier or TransferRegressor
        Reads ``estimator.net_.history``.
    ax : matplotlib Axes, default=None
        Drawn on a new figure when None.

    Returns
    -------
    matplotlib.axes.Axes
    """
    return _learning_curves(estimator, ax)


def plot_confusion_matrix(estimator, X, y, ax=None):
    """scikit-learn's :class:`~sklearn.metrics.ConfusionMatrixDisplay` over ``classes_``.

    Parameters
    ----------
    estimator : fitted classifier
    X : samples the estimator accepts
    y : array-like of shape (n_samples,)
    ax : matplotlib Axes, default=None

    Returns
    -------
    sklearn.metrics.ConfusionMatrixDisplay
    """
    if not is_classifier(estimator):
        raise TypeError(f"A confusion matrix needs a classifier, got {type(estimator).__name__}.")
    y = _check_X_y(estimator, X, y)
    return _confusion(estimator, y, estimator.predict(X), ax)


def plot_top_losses(estimator, X, y, k: int = 9):
    """The ``k`` worst predictions: an image grid for image backbones, a table otherwise.

    Each image is titled with its true and predicted label, the predicted class's
    probability and the loss (see :func:`top_losses`). Images are decoded exactly as
    the estimator reads them, before resizing and normalisation. Texts (and other
    inputs) are shown in a table, cut to 80 characters.

    Parameters
    ----------
    estimator : fitted TransferClassifier or TransferRegressor
    X : samples the estimator accepts
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
    k : int, default=9
        How many; shown three to a row.

    Returns
    -------
    matplotlib.figure.Figure
        Save it with ``figure.savefig(path)``.
    """
    worst = top_losses(estimator, X, y, k)
    return _plot_worst(estimator, X, worst)


# ---------------------------------------------------------------------------- HTML
def html_report(estimator, X, y, path, *, title=None, overwrite: bool = False, k: int = 9, y_score=None,
                ids=None) -> str:
    """Write one self-contained HTML report on ``estimator``'s predictions for ``X``.

    Sections: metrics (scikit-learn's ``classification_report`` per class for
    classifiers; R², MAE and Pearson r for regressors), the confusion matrix
    (classifiers), the learning curves, the most confused pairs (classifiers) and the
    ``k`` worst predictions (an image grid for image backbones, a table otherwise).
    Plots are embedded as base64 PNGs, so the file needs nothing else and no network,
    and every user string (labels, texts, the title) is HTML-escaped.

    Parameters
    ----------
    estimator : fitted TransferClassifier or TransferRegressor
    X : samples the estimator accepts, usually held-out data
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
    path : str or os.PathLike
        The ``.html`` file to write.
    title : str, default=None
        The page title; None names the estimator and backbone.
    overwrite : bool, default=False
        Replace an existing file; otherwise an existing file is a ``FileExistsError``.
    k : int, default=9
        How many worst predictions to show.
    y_score : array-like, default=None
        ``estimator.predict_proba(X)`` (classifiers) or ``estimator.predict(X)``
        (regressors) if you already have them: the report then doesn't run the model
        again. None runs it.
    ids : sequence of length n_samples, default=None
        A name per sample (a file path, a database id) for the worst predictions; None
        names images by their file path when X holds paths, other samples by row number.

    Returns
    -------
    str
        The path written.
    """
    path = os.fspath(path)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path!r} already exists; pass overwrite=True to replace it, or choose another path.")
    _figure()  # fail on a missing matplotlib before the model runs
    if ids is not None and len(ids) != len(y):
        raise ValueError(f"ids has {len(ids)} entries for {len(y)} samples; give one name per sample of X, or None.")
    out = _outputs(estimator, X, y, y_score)
    document = _document(estimator, X, out, title, k, ids)
    # "x" refuses a file created since the check above; the page was built before
    # opening, so a failure never leaves a half-written report.
    with open(path, "w" if overwrite else "x", encoding="utf-8") as f:
        f.write(document)
    return path
