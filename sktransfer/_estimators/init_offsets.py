"""``init=``: a fitted model whose output this model corrects (its offsets: ``init_outputs``)."""

from __future__ import annotations

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
