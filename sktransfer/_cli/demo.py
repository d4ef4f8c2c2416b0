"""``sktransfer demo``: a non-transfer baseline, the frozen backbone and fine-tuning, side by side.

With no ``--data`` it uses scikit-learn's bundled digits and the EfficientNet-Lite0
ImageNet weights of the sktransfer-timm plugin.  ``--data`` takes your own data:
a folder with one sub-folder of images per class, or a CSV/TSV file with a text
column and a label column.
"""

from __future__ import annotations

import os
import time

import numpy as np

from sktransfer._cli.data import encoding_name, labels_of, load_image_folder, read_table


def add_demo_arguments(parser) -> None:
    parser.add_argument("--data", help="folder of class sub-folders of images, or a .csv/.tsv of texts")
    parser.add_argument("--text-column", default="text", help="column of texts in a CSV/TSV (default: text)")
    parser.add_argument("--label-column", default="label", help="column of labels in a CSV/TSV (default: label)")
    parser.add_argument("--encoding", type=encoding_name, help="text encoding of the CSV/TSV (default: utf-8)")
    parser.add_argument("--backbone", help="default: efficientnet_lite0 for images, all-MiniLM-L6-v2 for text")
    parser.add_argument("--train-size", type=float, default=250, help="training samples (or fraction)")
    parser.add_argument("--test-size", type=float, default=500, help="test samples (or fraction)")
    parser.add_argument("--image-size", type=int, default=64, help="image side in pixels (default: 64)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress bars (the steps and results still print)")


def _as_size(value: float):
    return int(value) if value >= 1 else float(value)


def load_text_table(path: str, text_column: str, label_column: str, encoding: str | None = None):
    found, rows = read_table(path, encoding)
    if not rows or text_column not in found or label_column not in found:
        raise ValueError(
            f"{path!r} needs a header with columns {text_column!r} and {label_column!r} "
            f"(found {found}); choose them with --text-column and --label-column."
        )
    return [r[text_column] for r in rows], labels_of(path, rows, label_column)


def load_demo_data(args):
    """(X, y, modality, description)."""
    if args.data is None:
        from sklearn.datasets import load_digits

        digits = load_digits()
        # Scale 0..16 intensities to 0..1 floats (read as 0..255 after scaling).
        return digits.images / 16.0, digits.target, "image", "scikit-learn digits (8x8, bundled)"
    if os.path.isdir(args.data):
        if args.encoding is not None:
            raise ValueError(f"--encoding applies to a CSV/TSV file, and {args.data!r} is a folder: drop it.")
        X, y = load_image_folder(args.data)
        return X, y, "image", f"image folder {args.data}"
    if os.path.isfile(args.data):
        X, y = load_text_table(args.data, args.text_column, args.label_column, args.encoding)
        return X, y, "text", f"text table {args.data}"
    raise ValueError(f"--data {args.data!r} is neither a folder of images nor a CSV/TSV file.")


def baseline(modality: str):
    """A strong non-transfer model: logistic regression on pixels, or on TF-IDF for text."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    if modality == "text":
        return "TF-IDF + LogisticRegression", make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=2000))
    return "pixels + LogisticRegression", make_pipeline(
        FunctionTransformer(_pixels), StandardScaler(), LogisticRegression(max_iter=2000)
    )


def _pixels(X):
    """Flatten images (arrays or file paths) to fixed-size pixel vectors."""
    from PIL import Image

    if isinstance(X, np.ndarray):
        return X.reshape(len(X), -1)
    return np.stack([np.asarray(Image.open(p).convert("L").resize((32, 32))).ravel() for p in X]).astype(float)


def _say(text: str) -> None:
    print(text, flush=True)  # each step shows as it starts, also through a pipe


def run_demo(args) -> int:
    from sklearn.model_selection import train_test_split

    _say("loading the data..." if args.data else "loading scikit-learn's digits...")
    X, y, modality, description = load_demo_data(args)
    from sktransfer import TransferClassifier  # torch and the backbones: after the data

    backbone = args.backbone or ("efficientnet_lite0" if modality == "image" else "all-MiniLM-L6-v2")
    idx_train, idx_test = train_test_split(
        np.arange(len(y)), train_size=_as_size(args.train_size), test_size=_as_size(args.test_size),
        stratify=y, random_state=args.seed,
    )
    take = (lambda idx: X[idx]) if isinstance(X, np.ndarray) else (lambda idx: [X[i] for i in idx])
    X_train, X_test, y_train, y_test = take(idx_train), take(idx_test), y[idx_train], y[idx_test]
    _say(f"data: {description}; {len(y_train)} training and {len(y_test)} test samples, "
         f"{len(np.unique(y))} classes")
    _say(f"backbone: {backbone}\n")

    common = dict(max_epochs=args.epochs, random_state=args.seed, batch_size=32)
    if modality == "image":
        common["image_size"] = args.image_size
    name, base = baseline(modality)
    candidates = [
        (name, base, "a baseline without transfer"),
        (f"{backbone}, frozen (strategy='head')", TransferClassifier(backbone, strategy="head", lr=1e-2, **common),
         "the pretrained backbone's features, frozen, with a new head solved on them"),
        (f"{backbone}, fine-tuned (strategy='full')", TransferClassifier(backbone, strategy="full", **common),
         f"every weight trained for {args.epochs} epochs, after a head on the frozen features"),
    ]
    results = []
    for step, (label, model, what) in enumerate(candidates, start=1):
        _say(f"[{step}/{len(candidates)}] {label}: {what}")
        _say(f"      fitting on {len(y_train)} samples...")
        start = time.perf_counter()
        model.fit(X_train, y_train)
        _say(f"      scoring on {len(y_test)} test samples...")
        score = model.score(X_test, y_test)
        results.append((label, score, time.perf_counter() - start))
        _say(f"      test accuracy {score:.3f} in {results[-1][2]:.1f} s\n")
    _say(f"{'model':<55} {'test accuracy':>13} {'seconds':>8}")
    for label, score, seconds in results:
        _say(f"{label:<55} {score:>13.3f} {seconds:>8.1f}")
    return 0
