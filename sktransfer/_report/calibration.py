"""How far a classifier's probabilities can be trusted: the reliability diagram and the
expected calibration error, an over- or under-confidence warning in words, and ROC and
precision-recall curves (binary, or one-vs-rest per class) with their areas."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sktransfer._report.figures import _figure
from sktransfer._report.losses import _Outputs

#: Equal-width confidence bins of the expected calibration error (Guo et al., 2017).
ECE_BINS = 15
#: The gap between accuracy and mean top-class probability that is called too flat (accuracy
#: higher) or too sharp (accuracy lower): ten percentage points, ...
CONFIDENCE_GAP = 0.10
#: ... on at least this many samples (fewer are too noisy to judge).
CONFIDENCE_MIN_SAMPLES = 20


class Calibration(NamedTuple):
    accuracy: float
    mean_confidence: float  # mean top-class probability
    ece: float  # top-label expected calibration error
    n: int


def expected_calibration_error(confidence, correct, n_bins: int = ECE_BINS) -> float:
    """Top-label ECE: over ``n_bins`` equal-width bins of the top-class probability, the
    bins' |accuracy - mean confidence| weighted by their share of the samples. A bin is
    ``(lo, hi]``; a confidence of 0 falls in the first."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    which = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        in_bin = which == b
        if in_bin.any():
            total += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(total)


def calibration(out: _Outputs) -> Calibration:
    confidence = out.proba.max(axis=1)
    correct = out.y_true == out.y_pred
    return Calibration(float(correct.mean()), float(confidence.mean()),
                       expected_calibration_error(confidence, correct), len(correct))


def confidence_warning(cal: Calibration) -> str | None:
    """A sentence when the probabilities are too flat or too sharp for the accuracy, else None."""
    if cal.n < CONFIDENCE_MIN_SAMPLES:
        return None
    numbers = f"mean top-class probability {cal.mean_confidence:.2f} with accuracy {cal.accuracy:.2f}"
    if cal.accuracy - cal.mean_confidence > CONFIDENCE_GAP:
        return (f"{numbers}: probabilities are too flat (under-confident), so thresholds on them reject answers "
                "that are usually right; see calibration.")
    if cal.mean_confidence - cal.accuracy > CONFIDENCE_GAP:
        return (f"{numbers}: probabilities are too sharp (over-confident), so they overstate how often the model "
                "is right; see calibration.")
    return None


def reliability_figure(estimator, out: _Outputs, cal: Calibration):
    """scikit-learn's CalibrationDisplay: on the positive class for two classes, else on
    the top class (is the predicted class right, against its probability)."""
    from sklearn.calibration import CalibrationDisplay

    ax = _figure((5.5, 5.0)).add_subplot()
    classes = np.asarray(estimator.classes_)
    if len(classes) == 2:
        hit, prob, what = out.y_true == classes[1], out.proba[:, 1], f"P(class {classes[1]})"
    else:
        hit, prob, what = out.y_true == out.y_pred, out.proba.max(axis=1), "top-class probability"
    CalibrationDisplay.from_predictions(hit.astype(int), prob, n_bins=ECE_BINS, strategy="uniform", ax=ax,
                                        name="model", pos_label=1)
    ax.set_xlabel(f"mean predicted probability ({what})")
    ax.set_ylabel("fraction of positives" if len(classes) == 2 else "fraction right")
    ax.set_title(f"Reliability ({ECE_BINS} bins), top-label ECE {cal.ece:.3f}")
    return ax.figure


class Curve(NamedTuple):
    label: str  # the positive class
    roc_auc: float | None  # None: the class has no positive (or no negative) sample here
    average_precision: float | None
    support: int


def curves(estimator, out: _Outputs) -> list[Curve]:
    """ROC AUC and average precision of the positive class (two classes), or of each class
    one-vs-rest; undefined (None) for a class without positives or negatives in ``y``."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    classes = np.asarray(estimator.classes_)
    chosen = [1] if len(classes) == 2 else range(len(classes))
    rows = []
    for i in chosen:
        positive = out.y_true == classes[i]
        defined = 0 < positive.sum() < len(positive)
        rows.append(Curve(str(classes[i]),
                          float(roc_auc_score(positive, out.proba[:, i])) if defined else None,
                          float(average_precision_score(positive, out.proba[:, i])) if defined else None,
                          int(positive.sum())))
    return rows


def curves_figure(estimator, out: _Outputs, rows: list[Curve]):
    """ROC and precision-recall curves side by side (RocCurveDisplay, PrecisionRecallDisplay)."""
    from sklearn.metrics import PrecisionRecallDisplay, RocCurveDisplay

    classes = [str(c) for c in estimator.classes_]
    figure = _figure((11.0, 5.0))
    roc, pr = figure.subplots(1, 2)
    many = len(rows) > 1
    for row in rows:
        if row.roc_auc is None:
            continue
        i = classes.index(row.label)
        positive = (np.asarray([str(c) for c in out.y_true]) == row.label).astype(int)
        name = f"{row.label} vs rest" if many else f"class {row.label}"
        RocCurveDisplay.from_predictions(positive, out.proba[:, i], ax=roc, name=name, pos_label=1)
        PrecisionRecallDisplay.from_predictions(positive, out.proba[:, i], ax=pr, name=name, pos_label=1)
    roc.plot([0, 1], [0, 1], linestyle=":", color="grey", label="chance (AUC 0.5)")
    roc.set(xlabel="false positive rate", ylabel="true positive rate")
    pr.set(xlabel="recall", ylabel="precision")
    for ax, title in ((roc, "ROC"), (pr, "Precision-recall")):
        ax.set_title(title + (" (one-vs-rest)" if many else ""))
        ax.legend(fontsize=7 if len(rows) > 8 else 9, loc="lower right" if ax is roc else "lower left")
    return figure
