"""An ``init=`` model's answers in the network's output space, as offsets: numpy only.

The estimators add these offsets to their network's outputs in ``fit`` and ``predict``;
the torch-free ONNX predictor (``sktransfer.load_onnx``) adds the same offsets, computed
from the exported ``init=`` model's answers. Both call these functions, so that the two
can't drift apart; this module imports numpy alone (no torch, scikit-learn or scipy).
"""

from __future__ import annotations

import sys

import numpy as np

#: log(0) = -inf would make the loss infinite; the float32 floor changes no argmax.
LOG_FLOOR = float(np.log(np.finfo(np.float32).tiny))


def source_name(init) -> str:
    """``init``'s class name, through scikit-learn's ``FrozenEstimator``."""
    frozen = sys.modules.get("sklearn.frozen")  # not imported: no FrozenEstimator exists to unwrap
    if frozen is not None and isinstance(init, frozen.FrozenEstimator):
        init = init.estimator
    return type(init).__name__


def class_scores(init, answers, fitted: dict) -> np.ndarray:
    """A classifier's offsets: ``init``'s log-probabilities (or decision function), columns
    in the class order of ``fitted["classes_"]``."""
    if fitted.get("_multilabel"):
        raise ValueError(
            f"init={source_name(init)}(...) with a multi-label y is not supported: the correction is defined on "
            "one class per sample. Drop init, or fit on a 1-D y."
        )
    classes = getattr(init, "classes_", None)
    if classes is None or not np.array_equal(np.asarray(classes), fitted["classes_"]):
        raise ValueError(
            f"init={source_name(init)}(...) predicts the classes "
            f"{None if classes is None else np.asarray(classes).tolist()}, but y holds the classes "
            f"{np.asarray(fitted['classes_']).tolist()}. init must be a classifier fitted on the same set of labels."
        )
    if hasattr(init, "predict_log_proba"):
        return np.maximum(answers("predict_log_proba"), LOG_FLOOR)
    if hasattr(init, "decision_function"):
        scores = np.asarray(answers("decision_function"), dtype=np.float64)
        # Binary decision functions score the second class: softmax([0, s]) = sigmoid(s).
        return np.column_stack([np.zeros(len(scores)), scores]) if scores.ndim == 1 else scores
    raise TypeError(
        f"init={source_name(init)}(...) has neither predict_log_proba nor decision_function; a classifier's init "
        "must give class scores."
    )


def standardised_targets(init, answers, fitted: dict) -> np.ndarray:
    """A regressor's offsets: ``init.predict(X)`` in the standardised target units of
    ``fitted["target_mean_"]`` and ``fitted["target_scale_"]``."""
    predicted = np.asarray(answers("predict"), dtype=np.float64)
    predicted = predicted.reshape(len(predicted), -1)
    if predicted.shape[1] != fitted["n_outputs_"]:
        raise ValueError(
            f"init={source_name(init)}(...) predicts {predicted.shape[1]} output(s) per sample, but y has "
            f"{fitted['n_outputs_']}. init must be a regressor fitted on targets like y."
        )
    return (predicted - fitted["target_mean_"]) / fitted["target_scale_"]


def source_offsets(source_outputs, init, X, n: int, fitted: dict, answers=None) -> np.ndarray:
    """The ``init`` model's output for ``X`` in the network's output space, checked, as float32.

    ``source_outputs(init, answers, fitted)`` is the conversion (:func:`class_scores` or
    :func:`standardised_targets`); ``answers(method)`` replaces ``getattr(init, method)(X)``
    (``init_cv``'s out-of-fold answers)."""
    answers = answers or (lambda method: getattr(init, method)(X))
    offsets = np.asarray(source_outputs(init, answers, fitted), dtype=np.float64)
    expected = (n, fitted["n_outputs_"])
    if offsets.shape != expected or not np.isfinite(offsets).all():
        raise ValueError(
            f"init={source_name(init)}(...) gave outputs of shape {offsets.shape}"
            f"{'' if np.isfinite(offsets).all() else ' with NaN or infinite values'}; expected finite values of "
            f"shape {expected}. init must be fitted on the same kind of X and y as this estimator."
        )
    return offsets.astype(np.float32)
