"""``sktransfer fit``, ``predict``, ``evaluate`` and ``export``: a model directory in, files out.

Models are saved with ``save_pretrained`` and read with :func:`sktransfer.load`, so a
model directory never runs code when it is read; ``predict`` and ``evaluate`` also take
a directory written by ``export`` (ONNX, predicted with onnxruntime). No output is
overwritten without ``--force``.
"""

from __future__ import annotations

import argparse
import csv
import os

import numpy as np

from sktransfer._cli.data import load_data
from sktransfer._onnx.config import is_exported

TASKS = ("classify", "regress")


def add_data_arguments(parser) -> None:
    parser.add_argument("--text-column", help="column of texts in a table (default: text, sentence, review, caption)")
    parser.add_argument("--image-column", help="column of image paths in a table, relative to the table's folder")
    parser.add_argument("--label-column", default="label", help="column of labels in a table (default: label)")


def epochs(value: str):
    """An epoch count or ``auto`` (the estimators' default), for argparse."""
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number or auto, got {value!r}") from None


def add_fit_arguments(parser) -> None:
    parser.add_argument("data", help="a folder of class sub-folders of images, or a CSV/TSV/Parquet file")
    parser.add_argument("--backbone", required=True, help="a backbone name (see `sktransfer backbones`)")
    parser.add_argument("--strategy", default="full",
                        choices=["full", "partial", "gradual", "head", "lora", "contrastive"])
    parser.add_argument("--epochs", type=epochs, default="auto",
                        help="passes over the data, or auto: 10 and at least 50 optimizer steps (default: auto)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, help="image side in pixels (default: the backbone's)")
    parser.add_argument("--head-epochs", type=epochs, default="auto",
                        help="epochs training the head on frozen features before fine-tuning, or auto: a probe "
                             "solved to convergence (default: auto)")
    parser.add_argument("--lora-rank", type=int, default=8, help="rank of the LoRA adapters (--strategy lora)")
    parser.add_argument("--long-text", choices=["truncate", "chunk"],
                        help="texts longer than the model's window: cut them (default) or pool overlapping windows")
    parser.add_argument("--task", choices=TASKS, default="classify")
    parser.add_argument("--seed", type=int, default=0)
    add_data_arguments(parser)
    parser.add_argument("--out", required=True, help="the model directory to write")
    parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or epoch log")


def add_model_and_data_arguments(parser) -> None:
    parser.add_argument("model", help="a model directory written by `sktransfer fit`, save_pretrained or `sktransfer "
                                      "export` (ONNX)")
    parser.add_argument("data", help="a folder of class sub-folders of images, or a CSV/TSV/Parquet file")
    add_data_arguments(parser)


def add_predict_arguments(parser) -> None:
    add_model_and_data_arguments(parser)
    parser.add_argument("--out", required=True, help="the CSV file to write")
    parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def add_evaluate_arguments(parser) -> None:
    add_model_and_data_arguments(parser)
    parser.add_argument("--cv", type=int, metavar="K", help="K-fold cross-validation of a fresh fit on DATA instead")
    parser.add_argument("--report", help="write a self-contained HTML report to this file")
    parser.add_argument("--force", action="store_true", help="overwrite --report if it exists")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def add_export_arguments(parser) -> None:
    parser.add_argument("model", help="a model directory written by `sktransfer fit` or save_pretrained")
    parser.add_argument("out", help="the directory to write model.onnx and sktransfer_onnx.json to")
    parser.add_argument("--quantize", choices=["int8"], help="int8 weights in the linear layers (smaller, faster)")
    parser.add_argument("--force", action="store_true", help="replace an export already in OUT")


def cmd_export(args) -> int:
    from sktransfer._onnx.export import export_onnx

    path = export_onnx(args.model, args.out, quantize=args.quantize, overwrite=args.force)
    size = os.path.getsize(os.path.join(path, "model.onnx")) / 2**20
    print(f"exported {args.model} to {path} (model.onnx, {size:.1f} MiB{', int8' if args.quantize else ''})")
    return 0


def _refuse_overwrite(path: str, force: bool) -> None:
    if os.path.exists(path) and not force:
        raise FileExistsError(f"{path!r} exists; pass --force to overwrite it.")


def _load_single_label(path):
    """The model in ``path``, refused when multi-label: the CSV columns and the metrics
    here are one class per sample."""
    estimator = load_predictor(path)
    if getattr(estimator, "_multilabel", False) or getattr(estimator, "multilabel_", False):
        raise ValueError(
            f"{path} holds a multi-label classifier (fitted on a 2-D indicator y); the command line reads and "
            "writes one label per sample and doesn't support it yet. Use it from Python: "
            "sktransfer.load(path).predict(X) gives the indicator matrix, predict_proba(X) each label's probability."
        )
    return estimator


def _data(args, need_labels=True):
    return load_data(args.data, text_column=args.text_column, image_column=args.image_column,
                     label_column=args.label_column, need_labels=need_labels)


def cmd_fit(args) -> int:
    from sktransfer import TransferClassifier, TransferRegressor

    _refuse_overwrite(args.out, args.force)
    data = _data(args)
    Estimator = TransferClassifier if args.task == "classify" else TransferRegressor
    y = data.y if args.task == "classify" else _as_numbers(data.y, args.label_column)
    estimator = Estimator(
        args.backbone, strategy=args.strategy, max_epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
        image_size=args.image_size if data.modality == "image" else None, head_epochs=args.head_epochs,
        lora_rank=args.lora_rank, random_state=args.seed, verbose=0 if args.quiet else 1,
        # Only when asked for: the estimator then refuses it for images with a message.
        **({"long_text": args.long_text} if args.long_text else {}),
    )
    estimator.fit(data.X, y)
    estimator.save_pretrained(args.out, overwrite=args.force)
    if not args.quiet:
        print(f"fitted {args.backbone} ({args.strategy}) on {len(data.X)} {data.description}; saved to {args.out}")
    return 0


def _as_numbers(values, column: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"--task regress needs numbers in the label column {column!r}.") from None


CHUNK = 512  # samples per progress step of a long prediction


def outputs(estimator, X, quiet: bool = True):
    """``(predictions, probabilities or None)``, in chunks under a progress bar for long
    inputs; a classifier's predictions are read off its probabilities (one pass)."""
    method = estimator.predict_proba if hasattr(estimator, "predict_proba") else estimator.predict
    if quiet or len(X) <= CHUNK:
        out = method(X)
    else:
        from tqdm.auto import tqdm

        steps = range(0, len(X), CHUNK)
        out = np.concatenate([method(X[i : i + CHUNK]) for i in tqdm(steps, desc="predicting", unit="chunk")])
    if method == estimator.predict:
        return out, None
    return estimator.classes_[np.argmax(out, axis=1)], out


def load_predictor(path):
    """The classifier or regressor in ``path`` (a model directory, or an ONNX export); either
    can also hold a TransferEmbedder, which transforms and has nothing to predict."""
    if is_exported(path):
        from sktransfer._onnx.predictor import load_onnx

        estimator = load_onnx(path)
    else:
        from sktransfer import load

        estimator = load(path)
    if not hasattr(estimator, "predict"):
        raise ValueError(
            f"{path} holds a {type(estimator).__name__}, which transforms inputs into features and predicts "
            "nothing; give predict and evaluate a classifier or regressor (saved by `sktransfer fit` or "
            "save_pretrained), or load the embedder in Python with sktransfer.load."
        )
    return estimator


def cmd_predict(args) -> int:
    _refuse_overwrite(args.out, args.force)
    estimator = _load_single_label(args.model)
    data = _data(args, need_labels=False)
    predictions, proba = outputs(estimator, data.X, args.quiet)
    header, columns = ["id", "prediction"], [data.ids, predictions]
    if proba is not None:
        header += [f"proba_{c}" for c in estimator.classes_]
        columns += list(proba.T)
    with open(args.out, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(zip(*columns))
    return 0


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


def cmd_evaluate(args) -> int:
    if args.report:
        _refuse_overwrite(args.report, args.force)
    if is_exported(args.model) and (args.cv is not None or args.report):
        raise ValueError(
            f"{args.model} is an ONNX export, which predicts but can't be refitted (--cv) or report its training "
            "(--report); give those the model directory it was exported from."
        )
    estimator = _load_single_label(args.model)
    data = _data(args)
    y = data.y if hasattr(estimator, "classes_") else _as_numbers(data.y, args.label_column)
    if args.cv is not None:
        from sklearn.base import clone
        from sklearn.model_selection import cross_val_predict

        if args.cv < 2:
            raise ValueError(f"--cv {args.cv}: cross-validation needs at least 2 folds.")
        predictions = cross_val_predict(clone(estimator), data.X, y, cv=args.cv)
        print(f"{args.cv}-fold cross-validation of a fresh fit on {len(y)} {data.description}")
        print(metrics(estimator, data.X, y, predictions))
        scores = None  # the report runs the fitted model itself
    else:
        print(f"{args.model} on {len(y)} {data.description}")
        predictions, proba = outputs(estimator, data.X, args.quiet)
        print(metrics(estimator, data.X, y, predictions))
        scores = predictions if proba is None else proba  # the report reuses them: one pass over DATA
    if args.report:
        from sktransfer.report import html_report

        html_report(estimator, data.X, y, args.report, overwrite=args.force, y_score=scores)
        print(f"report written to {args.report}")
    return 0
