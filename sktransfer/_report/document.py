"""The report's page: the worst-predictions section, the style sheet, and the whole document."""

from __future__ import annotations

from sktransfer._report.calibration import (
    CONFIDENCE_GAP,
    CONFIDENCE_MIN_SAMPLES,
    ECE_BINS,
    calibration,
    confidence_warning,
    curves,
    curves_figure,
    reliability_figure,
)
from sktransfer._report.figures import _confusion_pair, _fmt, _learning_curves, _plot_worst, _regression_figure
from sktransfer._report.losses import TopLosses, _confused_pairs, _Outputs, _top
from sktransfer._report.markup import _e, _png, _table
from sktransfer._report.metrics import _classification_metrics, _regression_metrics
from sktransfer._report.samples import _modality, _samples_as_text
from sktransfer._report.settings import settings_table


def _sample_names(estimator, X, rows, ids) -> list:
    """Each chosen row's name: the caller's id, else an image's file path, else the row number."""
    if ids is not None:
        return [ids[int(i)] for i in rows]
    if _modality(estimator) == "image" and isinstance(X, (list, tuple)) and all(isinstance(x, str) for x in X):
        return [X[int(i)] for i in rows]
    return [f"row {int(i)}" for i in rows]


def _worst_section(estimator, X, worst: TopLosses, ids=None) -> str:
    regression = worst.probability is None
    # For a regressor the loss is the squared error: one column, not the same number twice.
    header = ["sample", "true", "predicted", "sq. error"] if regression else \
        ["sample", "true", "predicted", "p(predicted)", "loss"]
    names = _sample_names(estimator, X, worst.index, ids)
    rows = []
    for j, name in enumerate(names):
        if regression:
            rows.append([name, _fmt(worst.true[j]), _fmt(worst.predicted[j]), f"{worst.loss[j]:.4g}"])
        else:
            rows.append([name, worst.true[j], worst.predicted[j], f"{worst.probability[j]:.3f}",
                         f"{worst.loss[j]:.4g}"])
    numeric = {1, 2, 3} if regression else {3, 4}
    if _modality(estimator) == "image":
        return _png(_plot_worst(estimator, X, worst)) + _table(header, rows, numeric)
    texts = _samples_as_text(estimator, X, worst.index)
    return _table(["sample", "text" if _modality(estimator) == "text" else "input", *header[1:]],
                  [[r[0], t, *r[1:]] for r, t in zip(rows, texts)], {j + 1 for j in numeric})


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; padding: 0 1.5em; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0; } th, td { border: 1px solid #ccc; padding: 3px 8px; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.txt { max-width: 600px; white-space: pre-wrap; word-break: break-word; }
img { max-width: 100%; display: block; margin: 0.5em 0; } .meta { color: #666; font-size: 0.9em; }
.warn { background: #fff4e5; border-left: 4px solid #e69500; padding: 0.5em 1em; }
.note { color: #555; font-size: 0.92em; max-width: 900px; }
"""


_CALIBRATION_NOTE = (
    '<p class="note">The expected calibration error (ECE) is the mean gap between how often the model is right and '
    "the probability it gives its answer, over equal-width probability bins weighted by their samples; 0 is "
    "perfectly calibrated. Points below the diagonal are over-confident, above it under-confident. A model is "
    f"flagged when accuracy and mean top-class probability differ by more than {CONFIDENCE_GAP:.2f} on "
    f"{CONFIDENCE_MIN_SAMPLES} samples or more.</p>"
)
_UNSURE_NOTE = ('<p class="note">Right answers given with the least confidence: often ambiguous, mislabelled or '
                "unusual samples.</p>")
_NO_HISTORY = ("<p>Not shown: this model has no training history (it was saved by an sktransfer older than the one "
               "that stores the history in model files, or it has no skorch net).</p>")


def _classifier_sections(estimator, X, out: _Outputs, k: int, ids) -> list[str]:
    cal = calibration(out)
    warning = confidence_warning(cal)
    sections = [] if warning is None else [f'<p class="warn"><b>Warning:</b> {_e(warning)}</p>']
    sections += ["<h2>Per-class metrics</h2>", _classification_metrics(estimator, out),
                 "<h2>Confusion matrix</h2>", _png(_confusion_pair(estimator, out.y_true, out.y_pred))]
    pairs = _confused_pairs(out.y_true, out.y_pred)[:10]
    if pairs:
        sections += ["<h2>Most confused</h2>", _table(["true", "predicted", "count"], [list(p) for p in pairs], {2})]
    sections += [
        "<h2>Calibration</h2>",
        _table(["accuracy", "mean top-class probability", f"top-label ECE ({ECE_BINS} bins)", "samples"],
               [[f"{cal.accuracy:.3f}", f"{cal.mean_confidence:.3f}", f"{cal.ece:.3f}", cal.n]], {0, 1, 2, 3}),
        _CALIBRATION_NOTE,
        _png(reliability_figure(estimator, out, cal)),
    ]
    rows = curves(estimator, out)
    many = len(rows) > 1
    sections += [f"<h2>ROC and precision-recall{' (one-vs-rest)' if many else ''}</h2>",
                 _table(["positive class", "ROC AUC", "average precision", "support"],
                        [[r.label, "n/a" if r.roc_auc is None else f"{r.roc_auc:.3f}",
                          "n/a" if r.average_precision is None else f"{r.average_precision:.3f}", r.support]
                         for r in rows])]
    if any(r.roc_auc is not None for r in rows):
        sections.append(_png(curves_figure(estimator, out, rows)))
    sections += _learning_section(estimator)
    wrong = out.y_true != out.y_pred
    n_wrong, n_right = int(wrong.sum()), int((~wrong).sum())
    sections += [f"<h2>Wrong predictions ({min(k, n_wrong)} of {n_wrong}, highest loss first)</h2>",
                 _worst_section(estimator, X, _top(out, k, wrong), ids) if n_wrong else "<p>None.</p>",
                 f"<h2>Right but unsure ({min(k, n_right)} of {n_right}, lowest probability first)</h2>",
                 _UNSURE_NOTE,
                 _worst_section(estimator, X, _top(out, k, ~wrong), ids) if n_right else "<p>None.</p>"]
    return sections


def _learning_section(estimator) -> list[str]:
    history = getattr(getattr(estimator, "net_", None), "history", None)
    if history is not None and len(history):
        return ["<h2>Learning curves</h2>", _png(_learning_curves(estimator).figure)]
    return ["<h2>Learning curves</h2>", _NO_HISTORY]


def _document(estimator, X, out: _Outputs, title, k: int, ids=None) -> str:
    name = type(estimator).__name__
    backbone = getattr(getattr(estimator, "spec_", None), "name", None) or "fused backbones"
    title = title if title is not None else f"{name} on {backbone}"
    sections = [f"<h1>{_e(title)}</h1>",
                f'<p class="meta">{_e(name)}, backbone {_e(backbone)}, evaluated on {len(out.y_true)} samples</p>',
                "<h2>Settings</h2>", settings_table(estimator)]
    if out.proba is not None:
        sections += _classifier_sections(estimator, X, out, k, ids)
    else:
        sections += ["<h2>Metrics</h2>", _regression_metrics(out),
                     "<h2>Predictions against the truth</h2>", _png(_regression_figure(out.y_true, out.y_pred))]
        sections += _learning_section(estimator)
        sections += [f"<h2>Worst predictions (top {min(k, len(out.y_true))} by loss)</h2>",
                     _worst_section(estimator, X, _top(out, k), ids)]
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
    )
