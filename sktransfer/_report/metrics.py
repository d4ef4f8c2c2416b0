"""The metrics tables of the report: per class for classifiers, per output for regressors."""

from __future__ import annotations

import numpy as np

from sktransfer._report.losses import _Outputs
from sktransfer._report.markup import _table


def _classification_metrics(estimator, out: _Outputs) -> str:
    from sklearn.metrics import classification_report

    labels = list(estimator.classes_)
    report = classification_report(
        out.y_true, out.y_pred, labels=labels, target_names=[str(c) for c in labels], output_dict=True,
        zero_division=0,
    )
    rows = []
    for name, values in report.items():
        if name == "accuracy":  # a bare float in output_dict
            rows.append(["accuracy", "", "", f"{values:.3f}", len(out.y_true)])
        else:
            rows.append([name, f"{values['precision']:.3f}", f"{values['recall']:.3f}", f"{values['f1-score']:.3f}",
                         int(values["support"])])
    return _table(["class", "precision", "recall", "f1-score", "support"], rows)


def _regression_metrics(out: _Outputs) -> str:
    from sklearn.metrics import mean_absolute_error, r2_score

    y_true = out.y_true.reshape(len(out.y_true), -1)
    y_pred = out.y_pred.reshape(len(out.y_pred), -1)
    rows = []
    for j in range(y_true.shape[1]):
        t, p = y_true[:, j], y_pred[:, j]
        # Pearson r is undefined for a constant column: say so instead of printing nan.
        r = np.corrcoef(t, p)[0, 1] if np.std(t) > 0 and np.std(p) > 0 else None
        r2 = r2_score(t, p) if len(t) > 1 else None
        rows.append([f"output {j}" if y_true.shape[1] > 1 else "target",
                     "n/a" if r2 is None else f"{r2:.3f}", f"{mean_absolute_error(t, p):.3g}",
                     "n/a" if r is None else f"{r:.3f}", len(t)])
    return _table(["output", "R²", "MAE", "Pearson r", "n"], rows)
