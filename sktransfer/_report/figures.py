"""Matplotlib figures made without pyplot: learning curves, the confusion matrix and the
worst predictions (an image grid, or a table for other inputs)."""

from __future__ import annotations

import numpy as np

from sktransfer._report.checks import _check_fitted
from sktransfer._report.losses import TopLosses
from sktransfer._report.samples import _images, _modality, _samples_as_text

_GRID_COLUMNS = 3
_TEXT_CELL = 80  # characters of a text shown in a plotted table (the HTML report shows it all)


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


def _learning_curves(estimator, ax=None):
    """Training (and validation) loss per epoch from ``estimator.net_.history``: the
    body of :func:`sktransfer.report.plot_learning_curves`."""
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
    handles, labels = ax.get_legend_handles_labels()
    # The validation metric (EpochScoring's valid_acc, valid_f1_macro, valid_r2) on its own scale.
    metrics = [key for key in (history[0] if len(history) else {}) if key.startswith("valid_")
               and key != "valid_loss" and not key.endswith("_best")]
    if metrics:
        right = ax.twinx()
        for key in metrics:
            epochs = [row["epoch"] for row in history if row.get(key) is not None]
            right.plot(epochs, [row[key] for row in history if row.get(key) is not None], marker="s",
                       linestyle="--", color="tab:green", label=key)
        right.set_ylabel(", ".join(metrics))
        more_handles, more_labels = right.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    ax.legend(handles, labels)
    return ax


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


def _caption(true, predicted, probability, loss) -> str:
    if probability is None:
        return f"true {_fmt(true)}\npred {_fmt(predicted)}\nsq. error {loss:.3g}"
    return f"true {true}\npred {predicted} ({probability:.2f})\nloss {loss:.2f}"


def _fmt(value) -> str:
    array = np.atleast_1d(np.asarray(value, dtype=np.float64))
    return ", ".join(f"{v:.3g}" for v in array)


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
