"""The report's page: the worst-predictions section, the style sheet, and the whole document."""

from __future__ import annotations

import datetime

from sktransfer._report.figures import _confusion, _fmt, _learning_curves, _plot_worst
from sktransfer._report.losses import TopLosses, _confused_pairs, _Outputs, _top
from sktransfer._report.markup import _e, _png, _table
from sktransfer._report.metrics import _classification_metrics, _regression_metrics
from sktransfer._report.samples import _modality, _samples_as_text


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
"""


def _document(estimator, X, out: _Outputs, title, k: int, ids=None) -> str:
    name = type(estimator).__name__
    backbone = getattr(getattr(estimator, "spec_", None), "name", None) or "fused backbones"
    title = title if title is not None else f"{name} on {backbone}"
    sections = [f"<h1>{_e(title)}</h1>",
                f'<p class="meta">{_e(name)}, backbone {_e(backbone)}, {len(out.y_true)} samples, '
                f"written {_e(datetime.datetime.now().isoformat(timespec='seconds'))}</p>"]
    if out.proba is not None:
        sections += ["<h2>Per-class metrics</h2>", _classification_metrics(estimator, out),
                     "<h2>Confusion matrix</h2>", _png(_confusion(estimator, out.y_true, out.y_pred).figure_)]
        pairs = _confused_pairs(out.y_true, out.y_pred)[:10]
        if pairs:
            sections += ["<h2>Most confused</h2>", _table(["true", "predicted", "count"],
                                                           [list(pair) for pair in pairs], {2})]
    else:
        sections += ["<h2>Metrics</h2>", _regression_metrics(out)]
    history = getattr(getattr(estimator, "net_", None), "history", None)
    sections.append("<h2>Learning curves</h2>")
    if history is not None and len(history):
        sections.append(_png(_learning_curves(estimator).figure))
    else:
        sections.append("<p>Not shown: this model has no training history (it was saved by an sktransfer older "
                        "than the one that stores the history in model files, or it has no skorch net).</p>")
    sections += [f"<h2>Worst predictions (top {min(k, len(out.y_true))} by loss)</h2>",
                 _worst_section(estimator, X, _top(out, k), ids)]
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
    )
