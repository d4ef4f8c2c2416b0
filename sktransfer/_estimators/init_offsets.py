"""``init=``: a fitted model whose output this model corrects, and its offsets."""

from __future__ import annotations

import numpy as np

from sktransfer._build.sources import check_fitted_source, unwrap_frozen


def check_init(init):
    """``init``, checked to be fitted (or None)."""
    if init is None:
        return None
    check_fitted_source(init, "init")
    return init


def out_of_fold_answers(init, init_cv, X, y):
    """How ``init`` answers for the training rows: its own predictions (None), or with
    ``init_cv``, out-of-fold predictions of clones fitted on the other folds (as
    scikit-learn's stacking does), so that the correction learns the residuals
    ``init`` makes on rows it has not seen, not on its own training rows."""
    if init_cv is None:
        return None
    from sklearn.base import clone, is_classifier
    from sklearn.model_selection import check_cv, cross_val_predict

    estimator = unwrap_frozen(init)
    cv = check_cv(init_cv, y, classifier=is_classifier(estimator))
    return lambda method: cross_val_predict(clone(estimator), X, y, cv=cv, method=method)


def source_offsets(source_outputs, init, X, n: int, fitted: dict, answers=None) -> np.ndarray:
    """The ``init`` model's output for ``X`` in the network's output space, checked.

    ``source_outputs(init, answers, fitted)`` is the estimator's conversion;
    ``answers(method)`` replaces ``getattr(init, method)(X)`` (``init_cv``)."""
    answers = answers or (lambda method: getattr(init, method)(X))
    offsets = np.asarray(source_outputs(init, answers, fitted), dtype=np.float64)
    expected = (n, fitted["n_outputs_"])
    if offsets.shape != expected or not np.isfinite(offsets).all():
        raise ValueError(
            f"init={type(unwrap_frozen(init)).__name__}(...) gave outputs of shape {offsets.shape}"
            f"{'' if np.isfinite(offsets).all() else ' with NaN or infinite values'}; expected finite values of "
            f"shape {expected}. init must be fitted on the same kind of X and y as this estimator."
        )
    return offsets.astype(np.float32)
