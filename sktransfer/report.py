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

import base64
import datetime
import html
import io
import os
from collections import Counter
from typing import NamedTuple

import numpy as np
from sklearn.base import is_classifier
from sklearn.utils.validation import _num_samples, check_is_fitted

__all__ = [
    "TopLosses",
    "html_report",
    "most_confused",
    "plot_confusion_matrix",
    "plot_learning_curves",
    "plot_top_losses",
    "top_losses",
]

_GRID_COLUMNS = 3
_TEXT_CELL = 80  # characters of a text shown in a plotted table (the HTML report shows it all)


class TopLosses(NamedTuple):
    """The worst predictions, highest loss first (arrays of length ``k``).

    ``probability`` is the predicted class's probability for classifiers and None
    for regressors.
    """

    index: np.ndarray
    true: np.ndarray
    predicted: np.ndarray
    probability: np.ndarray | None
    loss: np.ndarray


class _Outputs(NamedTuple):
    """One pass of the model over ``X``, shared by every section of a report."""

    y_true: np.ndarray
    y_pred: np.ndarray
    proba: np.ndarray | None  # classifiers only
    loss: np.ndarray  # per sample


# ---------------------------------------------------------------------------- checks
def _figure(figsize=(6.0, 4.5)):
    """A matplotlib Figure without pyplot, or an ImportError that says what to install."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(
            "sktransfer.report's plots need matplotlib, which is not installed: "
            "pip install sktransfer[report] (or pip install matplotlib)."
        ) from exc
    # Figure() is not registered with pyplot, so no backend is chosen, nothing can pop up
    # in a window and nothing has to be closed: savefig renders with Agg.
    return Figure(figsize=figsize, layout="constrained")


def _check_fitted(estimator) -> None:
    check_is_fitted(estimator)
    if not hasattr(estimator, "predict"):
        raise TypeError(f"{type(estimator).__name__} has no predict method; pass a fitted estimator.")


def _check_single_label(estimator) -> None:
    """Refuse multi-label classifiers: every analysis here reads one true and one
    predicted class per sample (confusion pairs, -log p(true class))."""
    if getattr(estimator, "_multilabel", False):
        raise ValueError(
            f"This {type(estimator).__name__} is multi-label (fitted on a 2-D indicator y); sktransfer.report "
            "reads one class per sample and doesn't support multi-label models yet. Use scikit-learn's per-label "
            "metrics instead, e.g. sklearn.metrics.classification_report(y, clf.predict(X)) or "
            "multilabel_confusion_matrix(y, clf.predict(X))."
        )


def _check_X_y(estimator, X, y) -> np.ndarray:
    """``y`` as an array of the same length as ``X``, with labels the classifier knows."""
    _check_fitted(estimator)
    _check_single_label(estimator)
    if X is None or y is None:
        raise ValueError(f"X and y are both required, got {'X' if X is None else 'y'}=None.")
    n_X, n_y = _num_samples(X), _num_samples(y)
    if n_X != n_y:
        raise ValueError(f"X has {n_X} samples but y has {n_y}; pass one target per sample.")
    if n_X == 0:
        raise ValueError("X and y are empty; a report needs at least one sample.")
    y = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y)
    if not is_classifier(estimator):
        return y
    # Labels are matched as strings (y may be an object array, or '1' for the class 1) and
    # returned as the classifier's own, so they compare equal to its predictions.
    position = {str(c): i for i, c in enumerate(estimator.classes_)}
    unknown = sorted({str(label) for label in y.ravel()} - set(position))
    if unknown:
        raise ValueError(
            f"y holds label(s) the classifier never saw in fit: {unknown[:5]}; it knows {list(position)}."
        )
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D (one label per sample) for a classifier, got shape {y.shape}.")
    return np.asarray(estimator.classes_)[[position[str(label)] for label in y]]


def _outputs(estimator, X, y, y_score=None) -> _Outputs:
    """Predictions and per-sample losses: cross-entropy for classifiers (plain, without
    the label smoothing or class weights of training), squared error for regressors
    (averaged over outputs). ``y_score``: ``predict_proba(X)`` or ``predict(X)`` already
    computed, so the model doesn't run again."""
    y = _check_X_y(estimator, X, y)
    if is_classifier(estimator):
        classes = np.asarray(estimator.classes_)
        if y_score is None:
            log_proba = np.asarray(estimator.predict_log_proba(X), dtype=np.float64)
        else:
            proba = _checked_score(y_score, (len(y), len(classes)), "predict_proba(X)")
            with np.errstate(divide="ignore"):
                log_proba = np.log(proba)
        true_index = np.searchsorted(classes, y)  # y holds classes_ items, and classes_ is sorted
        loss = -log_proba[np.arange(len(y)), true_index]
        return _Outputs(y, classes[np.argmax(log_proba, axis=1)], np.exp(log_proba), loss)
    if y_score is None:
        y_pred = np.asarray(estimator.predict(X), dtype=np.float64)
    else:
        y_pred = _checked_score(y_score, np.shape(y), "predict(X)")
    y_float = np.asarray(y, dtype=np.float64)
    loss = ((y_pred - y_float) ** 2).reshape(len(y_float), -1).mean(axis=1)
    return _Outputs(y_float, y_pred, None, loss)


def _checked_score(y_score, shape: tuple, what: str) -> np.ndarray:
    y_score = np.asarray(y_score, dtype=np.float64)
    if y_score.shape != tuple(shape):
        raise ValueError(
            f"y_score has shape {y_score.shape}, but the estimator's {what} has shape {tuple(shape)} for this X; "
            f"pass the estimator's own {what}, or y_score=None to compute it."
        )
    if not np.isfinite(y_score).all():
        raise ValueError(f"y_score holds NaN or infinite values; pass the estimator's own {what}.")
    return y_score


def _as_python(value):
    return value.item() if isinstance(value, np.generic) else value


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


def _confused_pairs(y_true, y_pred, min_count: int = 1) -> list[tuple]:
    """``(true, predicted, count)`` of the mistakes, most frequent first (ties in label order)."""
    counts = Counter((_as_python(t), _as_python(p)) for t, p in zip(y_true, y_pred) if t != p)
    pairs = [(t, p, c) for (t, p), c in counts.items() if c >= min_count]
    return sorted(pairs, key=lambda item: (-item[2], str(item[0]), str(item[1])))


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


def _top(out: _Outputs, k: int) -> TopLosses:
    # Stable sort: equal losses keep the order of X.
    order = np.argsort(-out.loss, kind="stable")[:k]
    probability = None if out.proba is None else out.proba[order].max(axis=1)
    return TopLosses(order, out.y_true[order], out.y_pred[order], probability, out.loss[order])


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
    _check_fitted(estimator)
    history = getattr(getattr(estimator, "net_", None), "history", None)
    if history is None:
        raise TypeError(f"{type(estimator).__name__} has no net_.history; learning curves need a skorch-trained model.")
    ax = ax if ax is not None else _figure().add_subplot()
    for key, label in (("train_loss", "training"), ("valid_loss", "validation")):
        epochs = [row["epoch"] for row in history if key in row]
        if epochs:
            ax.plot(epochs, [row[key] for row in history if key in row], marker="o", label=label)
    ax.xaxis.get_major_locator().set_params(integer=True)  # epochs are whole numbers
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title("Learning curves")
    ax.legend()
    return ax


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


def _confusion(estimator, y_true, y_pred, ax=None):
    from sklearn.metrics import ConfusionMatrixDisplay

    # Always on our own axes: given none, the display would open a pyplot figure.
    ax = ax if ax is not None else _figure((5.5, 5.0)).add_subplot()
    display = ConfusionMatrixDisplay.from_predictions(
        y_true, y_pred, labels=estimator.classes_, ax=ax, cmap="Blues", colorbar=True,
        xticks_rotation=45 if len(estimator.classes_) > 6 else "horizontal",
    )
    ax.set_title("Confusion matrix")
    return display


def _modality(estimator) -> str | None:
    spec = getattr(estimator, "spec_", None)
    return getattr(spec, "modality", None)


def _images(estimator, X, rows) -> list:
    """The chosen rows of X as HxWx3 uint8 arrays, decoded as the estimator reads them."""
    source = estimator.adapter_.check(X, estimator=estimator, reset=False)
    return [source[int(i)].permute(1, 2, 0).numpy() for i in rows]


def _samples_as_text(estimator, X, rows) -> list[str]:
    """The chosen rows of X, as text (texts as they are; other inputs as a short repr)."""
    if _modality(estimator) == "text":
        texts = estimator.adapter_.check(X, estimator=estimator, reset=False)
        return [texts[int(i)] for i in rows]
    if hasattr(X, "iloc"):
        return [repr(X.iloc[int(i)].to_dict())[:200] for i in rows]
    return [np.array2string(np.asarray(X[int(i)]), threshold=8, max_line_width=200)[:200] for i in rows]


def _caption(true, predicted, probability, loss) -> str:
    if probability is None:
        return f"true {_fmt(true)}\npred {_fmt(predicted)}\nsq. error {loss:.3g}"
    return f"true {true}\npred {predicted} ({probability:.2f})\nloss {loss:.2f}"


def _fmt(value) -> str:
    array = np.atleast_1d(np.asarray(value, dtype=np.float64))
    return ", ".join(f"{v:.3g}" for v in array)


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


def _plot_worst(estimator, X, worst: TopLosses):
    probabilities = [None] * len(worst.index) if worst.probability is None else worst.probability
    captions = [_caption(*row) for row in zip(worst.true, worst.predicted, probabilities, worst.loss)]
    if _modality(estimator) == "image":
        return _image_grid(_images(estimator, X, worst.index), captions)
    texts = _samples_as_text(estimator, X, worst.index)
    return _table_figure(worst, texts)


def _image_grid(images: list, captions: list[str]):
    columns = min(_GRID_COLUMNS, len(images))
    rows = -(-len(images) // columns)
    figure = _figure((2.4 * columns, 2.8 * rows))
    for i, (image, caption) in enumerate(zip(images, captions)):
        ax = figure.add_subplot(rows, columns, i + 1)
        ax.imshow(image, interpolation="nearest")
        ax.set_title(caption, fontsize=9)
        ax.axis("off")
    return figure


def _table_figure(worst: TopLosses, texts: list[str]):
    regression = worst.probability is None
    header = ["sample", "true", "predicted", "sq. error" if regression else "p(pred)", "loss"]
    cells = []
    for j, text in enumerate(texts):
        short = text if len(text) <= _TEXT_CELL else text[: _TEXT_CELL - 1] + "…"
        true, pred = (_fmt(worst.true[j]), _fmt(worst.predicted[j])) if regression else (
            str(worst.true[j]), str(worst.predicted[j]))
        third = f"{worst.loss[j]:.3g}" if regression else f"{worst.probability[j]:.2f}"
        cells.append([short, true, pred, third, f"{worst.loss[j]:.3g}"])
    figure = _figure((11.0, 0.45 * (len(cells) + 2)))
    ax = figure.add_subplot()
    ax.axis("off")
    table = ax.table(cellText=cells, colLabels=header, loc="upper center", cellLoc="left",
                     colWidths=[0.6, 0.1, 0.1, 0.1, 0.1])
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    ax.set_title("Worst predictions")
    return figure


# ---------------------------------------------------------------------------- HTML
def _png(figure) -> str:
    """A figure as an ``<img>`` with a base64 data URI: the report stays one file."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="" src="data:image/png;base64,{data}">'


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _table(header: list[str], rows: list[list], numeric=None) -> str:
    """An HTML table; every cell is escaped (labels and texts come from the user).

    ``numeric``: the columns aligned right as numbers (default: all but the first)."""
    numeric = set(range(1, len(header))) if numeric is None else set(numeric)
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="{"num" if j in numeric else "txt"}">{_e(cell)}</td>' for j, cell in enumerate(row)
        ) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


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


def _worst_section(estimator, X, worst: TopLosses) -> str:
    regression = worst.probability is None
    header = ["row", "true", "predicted", "sq. error" if regression else "p(predicted)", "loss"]
    rows = []
    for j, index in enumerate(worst.index):
        true, pred = (_fmt(worst.true[j]), _fmt(worst.predicted[j])) if regression else (worst.true[j],
                                                                                        worst.predicted[j])
        third = f"{worst.loss[j]:.4g}" if regression else f"{worst.probability[j]:.3f}"
        rows.append([int(index), true, pred, third, f"{worst.loss[j]:.4g}"])
    numeric = {0, 3, 4} if not regression else {0, 1, 2, 3, 4}
    if _modality(estimator) == "image":
        return _png(_plot_worst(estimator, X, worst)) + _table(header, rows, numeric)
    texts = _samples_as_text(estimator, X, worst.index)
    return _table(["row", "sample", *header[1:]], [[r[0], t, *r[1:]] for r, t in zip(rows, texts)],
                  {0} | {j + 1 for j in numeric if j})


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; padding: 0 1.5em; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0; } th, td { border: 1px solid #ccc; padding: 3px 8px; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.txt { max-width: 600px; white-space: pre-wrap; word-break: break-word; }
img { max-width: 100%; display: block; margin: 0.5em 0; } .meta { color: #666; font-size: 0.9em; }
"""


def html_report(estimator, X, y, path, *, title=None, overwrite: bool = False, k: int = 9, y_score=None) -> str:
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

    Returns
    -------
    str
        The path written.
    """
    path = os.fspath(path)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path!r} already exists; pass overwrite=True to replace it, or choose another path.")
    _figure()  # fail on a missing matplotlib before the model runs
    out = _outputs(estimator, X, y, y_score)
    document = _document(estimator, X, out, title, k)
    # "x" refuses a file created since the check above; the page was built before
    # opening, so a failure never leaves a half-written report.
    with open(path, "w" if overwrite else "x", encoding="utf-8") as f:
        f.write(document)
    return path


def _document(estimator, X, out: _Outputs, title, k: int) -> str:
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
    if history is not None and len(history):
        sections += ["<h2>Learning curves</h2>", _png(plot_learning_curves(estimator).figure)]
    sections += [f"<h2>Worst predictions (top {min(k, len(out.y_true))} by loss)</h2>",
                 _worst_section(estimator, X, _top(out, k))]
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
    )
