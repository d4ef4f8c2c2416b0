"""What ``sktransfer evaluate`` prints: scikit-learn's metrics of one model, or of a fresh fit
per cross-validation fold, fold by fold and as mean and standard deviation."""

from __future__ import annotations

import numpy as np


def metrics(estimator, X, y, predictions=None) -> str:
    """The evaluation as text: scikit-learn's classification_report and confusion matrix,
    or R², MAE and Pearson r."""
    from scipy.stats import pearsonr
    from sklearn.metrics import (
        classification_report,
        confusion_matrix,
        mean_absolute_error,
        r2_score,
    )

    predictions = estimator.predict(X) if predictions is None else predictions
    if hasattr(estimator, "classes_"):
        labels = list(estimator.classes_)
        matrix = confusion_matrix(y, predictions, labels=labels)
        width = max(len(str(label)) for label in labels) + 2
        rows = ["confusion matrix (rows: true, columns: predicted)",
                " " * width + "".join(str(label).rjust(width) for label in labels)]
        rows += [str(label).ljust(width) + "".join(str(n).rjust(width) for n in row)
                 for label, row in zip(labels, matrix)]
        return classification_report(y, predictions, labels=labels, zero_division=0) + "\n" + "\n".join(rows)
    y = np.asarray(y, dtype=np.float64)
    r = pearsonr(y, predictions)[0] if len(y) > 1 and np.std(predictions) > 0 else float("nan")
    return (f"R2    {r2_score(y, predictions):.4f}\nMAE   {mean_absolute_error(y, predictions):.4f}\n"
            f"Pearson r {r:.4f}")


def fold_scores(classifier: bool, y, predictions) -> dict:
    """The per-fold scores cross_validate users read: accuracy and macro F1, or R² and MAE."""
    from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, r2_score

    if classifier:
        return {"accuracy": accuracy_score(y, predictions),
                "f1_macro": f1_score(y, predictions, average="macro", zero_division=0)}
    return {"r2": r2_score(y, predictions), "mae": mean_absolute_error(y, predictions)}


def cross_validation(estimator, X, y, k: int, out=print):
    """A fresh fit per fold (the splitter ``cross_validate`` uses), a header and the scores per
    fold, then the mean and standard deviation of each score; returns the pooled predictions."""
    from sklearn.base import clone, is_classifier
    from sklearn.model_selection import check_cv

    if k < 2:
        raise ValueError(f"--cv {k}: cross-validation needs at least 2 folds.")
    classifier = is_classifier(estimator) or hasattr(estimator, "classes_")
    splitter = check_cv(k, y, classifier=classifier)
    take = (lambda idx: X[idx]) if isinstance(X, np.ndarray) else (lambda idx: [X[i] for i in idx])
    pooled = np.empty(len(y), dtype=object if classifier else np.float64)
    scores = []
    for fold, (train, test) in enumerate(splitter.split(np.zeros(len(y)), y), start=1):
        out(f"--- fold {fold}/{k}: fit on {len(train)}, evaluate on {len(test)} ---")
        model = clone(estimator).fit(take(train), y[train])
        pooled[test] = model.predict(take(test))
        scores.append(fold_scores(classifier, y[test], pooled[test]))
        out("  ".join(f"{name} {value:.4f}" for name, value in scores[-1].items()))
    out(f"\nper fold ({k} folds):")
    for name in scores[0]:
        values = np.array([s[name] for s in scores])
        out(f"{name:<9} {'  '.join(f'{v:.4f}' for v in values)}   mean {values.mean():.4f}  std {values.std():.4f}")
    if classifier:
        pooled = pooled.astype(np.asarray(y).dtype)
    return pooled
