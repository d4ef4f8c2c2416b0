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

from sktransfer._cli.cache import add_feature_cache_argument, feature_cache, trim
from sktransfer._cli.checks import check_evaluate_flags, check_fit_data, check_fit_flags, coerce_labels, known_labels
from sktransfer._cli.data import check_table_flags, encoding_name, load_data
from sktransfer._cli.evaluation import cross_validation, metrics
from sktransfer._onnx.config import is_exported

TASKS = ("classify", "regress")


DATA_HELP = ("a folder of images (one sub-folder per class; for predict also a flat folder), image files or a glob "
             "(predict), or a CSV/TSV/Parquet file whose text or path column is detected by name")


def add_data_arguments(parser) -> None:
    parser.add_argument("--text-column", help="column of texts in a table (default: text, sentence, review, caption)")
    parser.add_argument("--image-column", help="column of image paths in a table, relative to the table's folder "
                                               "(default: path, image, file, filename)")
    parser.add_argument("--label-column", help="column of labels in a table (default: label)")
    parser.add_argument("--encoding", type=encoding_name,
                        help="text encoding of a CSV or TSV file, e.g. latin-1, cp1252, utf-16 (default: utf-8)")
    add_feature_cache_argument(parser)


def epochs(value: str):
    """An epoch count or ``auto`` (the estimators' default), for argparse."""
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number or auto, got {value!r}") from None


def add_fit_arguments(parser) -> None:
    parser.add_argument("data", help=DATA_HELP)
    parser.add_argument("--backbone", required=True, help="a backbone name (see `sktransfer backbones`)")
    parser.add_argument("--strategy", default="full",
                        choices=["full", "partial", "gradual", "head", "lora", "contrastive"])
    parser.add_argument("--epochs", type=epochs, default="auto",
                        help="passes over the data, or auto: 10 and at least 50 optimizer steps, and no fine-tuning of "
                             "a pretrained image backbone on 128 images or fewer (default: auto)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, help="image side in pixels (images only; default: the backbone's)")
    parser.add_argument("--head-epochs", type=epochs,
                        help="epochs training the head on frozen features before fine-tuning, or auto: a probe "
                             "solved to convergence (default: auto; not with --strategy head or contrastive)")
    parser.add_argument("--lora-rank", type=int, help="rank of the LoRA adapters (--strategy lora only; default: 8)")
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
    parser.add_argument("data", help=DATA_HELP)
    add_data_arguments(parser)


def add_predict_arguments(parser) -> None:
    parser.add_argument("model", help="a model directory written by `sktransfer fit`, save_pretrained or `sktransfer "
                                      "export` (ONNX)")
    parser.add_argument("data", nargs="+", help=DATA_HELP)
    add_data_arguments(parser)
    parser.add_argument("--id-column", help="a table's column that names each row in the output (default: the image "
                                            "path, else the row number)")
    parser.add_argument("--float-format", default="%.6g",
                        help="printf-style format of the probabilities (default: %%.6g, 6 significant digits)")
    parser.add_argument("--out", required=True, help="the CSV file to write")
    parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def add_report_arguments(parser) -> None:
    add_model_and_data_arguments(parser)
    parser.add_argument("--out", required=True, help="the self-contained HTML file to write")
    parser.add_argument("--id-column", help="a table's column that names each sample in the report (default: the "
                                            "image path, else the row number)")
    parser.add_argument("--unknown-labels", choices=["error", "ignore"],
                        help="rows whose labels the model never saw: stop (error, the default) or leave them out of "
                             "the metrics with a warning that counts them (ignore)")
    parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def add_evaluate_arguments(parser) -> None:
    add_model_and_data_arguments(parser)
    parser.add_argument("--cv", type=int, metavar="K", help="K-fold cross-validation of a fresh fit on DATA instead")
    parser.add_argument("--report", help="write a self-contained HTML report to this file")
    parser.add_argument("--unknown-labels", choices=["error", "ignore"],
                        help="rows whose labels the model never saw: stop (error, the default) or leave them out of "
                             "the metrics with a warning that counts them (ignore)")
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


def _check_data_flags(args) -> None:
    """The data flags checked against each other and DATA before a model is read (which takes seconds)."""
    check_table_flags(args.data, text_column=args.text_column, image_column=args.image_column,
                      label_column=args.label_column, id_column=getattr(args, "id_column", None),
                      encoding=args.encoding)


def _data(args, need_labels=True, estimator=None):
    """The command's data; given the model, checked against the kind of input it takes."""
    modality = None if estimator is None else model_modality(estimator)
    data = load_data(args.data, text_column=args.text_column, image_column=args.image_column,
                     label_column=args.label_column, need_labels=need_labels,
                     id_column=getattr(args, "id_column", None), modality=modality, encoding=args.encoding)
    if modality is not None and modality != data.modality:
        looks = {"image": "image paths", "text": "texts"}[data.modality]
        fix = ("name its column of texts with --text-column" if modality == "text" else
               "give it images: a folder, image files, or a table with a path column (--image-column)")
        raise ValueError(
            f"{args.model} takes {modality}, but {data.description} looks like {looks} "
            f"(e.g. {str(data.X[0])[:60]!r}): {fix}."
        )
    return data


def model_modality(estimator) -> str | None:
    """What a loaded model (or ONNX export) takes: "image", "text", "tabular", or None (several inputs)."""
    spec = getattr(estimator, "spec_", None)
    if spec is not None:
        return spec.modality
    config = getattr(estimator, "config", None)  # an ONNX export
    return (config or {}).get("inputs", {}).get("kind")


def cmd_fit(args) -> int:
    check_fit_flags(args)
    _check_data_flags(args)
    _refuse_overwrite(args.out, args.force)
    data = _data(args)
    check_fit_data(args, data)
    from sktransfer import TransferClassifier, TransferRegressor  # torch: after the checks, which need none
    from sktransfer._estimators.probe import probe_was_the_fit
    from sktransfer._training.budget import SMALL_DATA_ROWS

    Estimator = TransferClassifier if args.task == "classify" else TransferRegressor
    y = data.y if args.task == "classify" else _as_numbers(data.y, _label(args), "--task regress needs")
    cache = feature_cache(args)
    estimator = Estimator(
        args.backbone, strategy=args.strategy, max_epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
        image_size=args.image_size, random_state=args.seed, verbose=0 if args.quiet else 1, feature_cache=cache,
        # Only when asked for (the estimators' defaults otherwise); the estimator refuses long_text for images.
        **{name: value for name, value in [("long_text", args.long_text), ("head_epochs", args.head_epochs),
                                           ("lora_rank", args.lora_rank)] if value is not None},
    )
    estimator.fit(data.X, y)
    # The progress output and this machine's cache directory are the command line's, not the
    # model's: saved with the Python defaults, a later refit in Python is quiet and caches in memory.
    estimator.set_params(verbose=0, feature_cache="memory")
    estimator.save_pretrained(args.out, overwrite=args.force)
    trim(cache)
    if not args.quiet:
        if probe_was_the_fit(estimator):
            print(f"fitted the head of {args.backbone} on {len(data.X)} samples of {data.description} and "
                  f"{estimator.adapter_.small_data_views} augmented views of each"
                  f"{'' if estimator.layers_ is None else ', reading ' + ', '.join(estimator.layers_)}; "
                  f"the backbone was not fine-tuned (--epochs auto keeps a pretrained image backbone as it is on "
                  f"{SMALL_DATA_ROWS} images or fewer; --epochs N fine-tunes it); saved to {args.out}")
        else:
            print(f"fitted {args.backbone} ({args.strategy}) on {len(data.X)} samples of {data.description}; "
                  f"saved to {args.out}")
    return 0


def _label(args) -> str:
    return args.label_column or "label"


def _as_numbers(values, column: str, who: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"{who} numbers in the label column {column!r} (e.g. {str(values[0])[:40]!r} is not one); name the "
            "column of numbers with --label-column."
        ) from None


def _targets(args, estimator, data):
    if hasattr(estimator, "classes_"):
        return coerce_labels(estimator, data.y)
    return _as_numbers(data.y, _label(args), f"{args.model} holds a regressor, which needs")


def _prepare(estimator, args):
    """The loaded model with the command's feature cache (ONNX exports have none); returns the cache."""
    cache = feature_cache(args)
    if hasattr(estimator, "set_params"):
        estimator.set_params(feature_cache=cache)
    return cache


CHUNK = 512  # samples per progress step of a long prediction by an ONNX export


def outputs(estimator, X, quiet: bool = True):
    """``(predictions, probabilities or None)``; a classifier's predictions are read off its
    probabilities (one pass). Our estimators show their own bars (extraction, prediction:
    see ``main``); an ONNX export predicts in chunks under one bar."""
    method = estimator.predict_proba if hasattr(estimator, "predict_proba") else estimator.predict
    if quiet or len(X) <= CHUNK or hasattr(estimator, "get_params"):
        out = method(X)
    else:
        from sktransfer._features.progress import bar

        with bar("predicting", len(X)) as progress:
            parts = []
            for i in range(0, len(X), CHUNK):
                parts.append(method(X[i : i + CHUNK]))
                progress.update(len(parts[-1]))
        out = np.concatenate(parts)
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


def _check_float_format(fmt: str) -> None:
    try:
        fmt % 0.5
    except (TypeError, ValueError):
        raise ValueError(f"--float-format {fmt!r} is not a printf-style number format; use e.g. %.6g or %.4f.") from None


def cmd_predict(args) -> int:
    _refuse_overwrite(args.out, args.force)
    _check_float_format(args.float_format)
    _check_data_flags(args)
    estimator = _load_single_label(args.model)
    cache = _prepare(estimator, args)
    data = _data(args, need_labels=False, estimator=estimator)
    predictions, proba = outputs(estimator, data.X, args.quiet)
    header, columns = [args.id_column or ("path" if data.modality == "image" else "id"), "prediction"], \
        [data.ids, predictions]
    if proba is not None:
        header += [f"proba_{c}" for c in estimator.classes_]
        columns += [[args.float_format % p for p in column] for column in proba.T]
    elif not hasattr(estimator, "classes_"):
        columns[1] = [args.float_format % p for p in predictions]
    with open(args.out, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(zip(*columns))
    trim(cache)
    if not args.quiet:
        print(f"wrote {len(data.X)} prediction(s) for {data.description} to {args.out}")
    return 0


def _refuse_onnx(args, what: str) -> None:
    if is_exported(args.model):
        raise ValueError(
            f"{args.model} is an ONNX export, which predicts but can't be refitted or report its training "
            f"({what}); give it the model directory it was exported from."
        )


def cmd_evaluate(args) -> int:
    check_evaluate_flags(args)
    _check_data_flags(args)
    if args.report:
        _refuse_overwrite(args.report, args.force)
    if args.cv is not None or args.report:
        _refuse_onnx(args, "--cv" if args.cv is not None else "--report")
    estimator = _load_single_label(args.model)
    cache = _prepare(estimator, args)
    data = _data(args, estimator=estimator)
    y = _targets(args, estimator, data)
    X, ids = data.X, data.ids
    if args.cv is not None:
        print(f"{args.cv}-fold cross-validation of a fresh fit on {len(y)} {data.description}")
        predictions = cross_validation(estimator, X, y, args.cv)
        print("\npooled over the folds:")
        print(metrics(estimator, X, y, predictions))
        scores = None  # the report runs the fitted model itself
    else:
        X, y, ids = known_labels(args, estimator, data, y)
        print(f"{args.model} on {len(y)} {data.description}")
        predictions, proba = outputs(estimator, X, args.quiet)
        print(metrics(estimator, X, y, predictions))
        scores = predictions if proba is None else proba  # the report reuses them: one pass over DATA
    if args.report:
        from sktransfer.report import html_report

        html_report(estimator, X, y, args.report, overwrite=args.force, y_score=scores, ids=ids)
        print(f"report written to {args.report}")
    trim(cache)
    return 0


def cmd_report(args) -> int:
    from sktransfer.report import html_report

    _refuse_overwrite(args.out, args.force)
    _check_data_flags(args)
    _refuse_onnx(args, "report")
    estimator = _load_single_label(args.model)
    cache = _prepare(estimator, args)
    data = _data(args, estimator=estimator)
    X, y, ids = known_labels(args, estimator, data, _targets(args, estimator, data))
    _, proba = outputs(estimator, X, args.quiet)
    scores = proba if proba is not None else _
    html_report(estimator, X, y, args.out, overwrite=args.force, y_score=scores, ids=ids)
    trim(cache)
    print(f"report on {len(y)} {data.description} written to {args.out}")
    return 0
