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


def _label_style(n_classes: int) -> dict:
    """Tick labels that stay readable as classes add up: rotated, then smaller."""
    if n_classes <= 6:
        return {"rotation": 0, "fontsize": 10}
    return {"rotation": 45 if n_classes <= 20 else 90, "fontsize": 9 if n_classes <= 12 else 7}


def _confusion(estimator, y_true, y_pred, ax=None, normalize=None):
    """ConfusionMatrixDisplay over ``classes_``: counts (whole-number colour-bar ticks), or
    ``normalize="true"``: each true class's row as fractions."""
    from matplotlib.ticker import MaxNLocator
    from sklearn.metrics import ConfusionMatrixDisplay

    n = len(estimator.classes_)
    # Always on our own axes: given none, the display would open a pyplot figure.
    ax = ax if ax is not None else _figure(_confusion_size(n)).add_subplot()
    style = _label_style(n)
    display = ConfusionMatrixDisplay.from_predictions(
        y_true, y_pred, labels=estimator.classes_, ax=ax, cmap="Blues", colorbar=True, normalize=normalize,
        values_format=".2f" if normalize else "d", include_values=n <= 25,
        text_kw={"fontsize": 10 if n <= 8 else 8 if n <= 15 else 6},
    )
    ax.tick_params(axis="both", labelsize=style["fontsize"])
    for label in ax.get_xticklabels():
        label.set(rotation=style["rotation"], ha="right" if style["rotation"] else "center",
                  rotation_mode="anchor")
    colorbar = display.im_.colorbar
    if normalize:
        display.im_.set_clim(0, 1)
        for text in display.text_.ravel() if display.text_ is not None else []:
            if float(text.get_text()) == 0:
                text.set_text("")  # a grid of 0.00 hides the few cells that matter
        ax.set_title("Normalised by true class (recall on the diagonal)")
    else:
        colorbar.locator = MaxNLocator(integer=True)  # counts are whole numbers
        colorbar.update_ticks()
        ax.set_title("Counts")
    return display


def _confusion_size(n_classes: int) -> tuple[float, float]:
    side = max(5.0, 2.0 + 0.45 * n_classes)
    return side + 0.8, side


def _confusion_pair(estimator, y_true, y_pred):
    """Counts and row-normalised fractions side by side, on one figure that grows with the classes."""
    width, height = _confusion_size(len(estimator.classes_))
    figure = _figure((2 * width, height))
    counts, fractions = figure.subplots(1, 2)
    _confusion(estimator, y_true, y_pred, counts)
    _confusion(estimator, y_true, y_pred, fractions, normalize="true")
    return figure


def _regression_figure(y_true, y_pred, max_outputs: int = 4):
    """PredictionErrorDisplay per output (the first ``max_outputs``): predicted against true,
    and residuals against predicted."""
    from sklearn.metrics import PredictionErrorDisplay

    y_true = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(len(y_pred), -1)
    outputs = min(y_true.shape[1], max_outputs)
    figure = _figure((11.0, 4.8 * outputs))
    axes = np.atleast_2d(figure.subplots(outputs, 2))
    for j in range(outputs):
        name = f" (output {j})" if y_true.shape[1] > 1 else ""
        for ax, kind, title in ((axes[j, 0], "actual_vs_predicted", "True vs predicted"),
                                (axes[j, 1], "residual_vs_predicted", "Residuals")):
            PredictionErrorDisplay.from_predictions(y_true[:, j], y_pred[:, j], kind=kind, ax=ax,
                                                    subsample=None, scatter_kwargs={"alpha": 0.5, "s": 14})
            ax.set_title(title + name)
    return figure


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
