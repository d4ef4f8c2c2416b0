"""A metric in the epoch log beside ``valid_loss``: skorch's ``EpochScoring`` on our batches,
whose targets are dicts (``{"target": ..., "weight": ...}``) read by :func:`dict_target`.

Classifiers score accuracy, or macro-F1 when the classes are unbalanced (accuracy then
rewards predicting the big class); regressors score R². Scores are computed on the
cached validation outputs (no second pass), in the network's own output space:
argmax of the logits for classes, and standardised targets for regression (R² is the
same under one affine map of truth and prediction alike).
"""

from __future__ import annotations

import numpy as np
from skorch.utils import to_numpy

from sktransfer._training.preflight import validation_fraction

#: Unbalanced: the largest class has more than this many times the samples of the smallest.
UNBALANCED_RATIO = 1.5
EARLY_STOPPING_METRICS = ("loss", "score")


def dict_target(y):
    """skorch ``target_extractor`` for our batches: the encoded targets of a target dict
    (anything else, a user's plain targets, as skorch's ``to_numpy``)."""
    if isinstance(y, dict):
        y = y["target"]
    return to_numpy(y)


def _outputs(net, X) -> np.ndarray:
    return to_numpy(net.forward(X, training=False))


def valid_accuracy(net, X, y) -> float:
    from sklearn.metrics import accuracy_score

    return accuracy_score(y, _outputs(net, X).argmax(axis=1))


def valid_f1_macro(net, X, y) -> float:
    from sklearn.metrics import f1_score

    return f1_score(y, _outputs(net, X).argmax(axis=1), average="macro", zero_division=0)


def valid_r2(net, X, y) -> float:
    from sklearn.metrics import r2_score

    out = _outputs(net, X)
    return r2_score(y.reshape(out.shape), out)


def validation_metric(loss_kind: str, targets) -> tuple[str, object] | None:
    """``(name, scoring)`` of the metric the epoch log shows for these training targets, or
    None where there is none (multi-label)."""
    if loss_kind == "mse":
        return "valid_r2", valid_r2
    if loss_kind != "cross_entropy":
        return None
    counts = np.bincount(np.asarray(targets, dtype=np.int64).ravel())
    counts = counts[counts > 0]
    if counts.max() > UNBALANCED_RATIO * counts.min():
        return "valid_f1_macro", valid_f1_macro
    return "valid_acc", valid_accuracy


def scoring_callbacks(params: dict, metric) -> tuple[list, str]:
    """The ``EpochScoring`` callback (when there is a validation split and a metric) and the
    history key early stopping monitors."""
    from skorch.callbacks import EpochScoring

    if validation_fraction(params) is None or metric is None:
        if params.get("early_stopping_metric", "loss") == "score" and params.get("patience") is not None:
            raise ValueError(
                "early_stopping_metric='score' needs a validation metric: set validation_fraction (e.g. 0.2), and "
                "use it with classes or regression targets (multi-label and init= fits have none); or use "
                "early_stopping_metric='loss'."
            )
        return [], "valid_loss"
    name, scoring = metric
    callback = EpochScoring(scoring, lower_is_better=False, on_train=False, name=name, target_extractor=dict_target)
    monitor = name if params.get("early_stopping_metric", "loss") == "score" else "valid_loss"
    return [(name, callback)], monitor
