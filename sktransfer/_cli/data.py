"""Data for the command line: a folder of class sub-folders of images, or a table file.

A table is a CSV, TSV or Parquet file with a text column or an image-path column (paths
relative to the table's folder), and a label column (optional for ``predict``).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass

import numpy as np

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet")
TEXT_COLUMNS = ("text", "sentence", "review", "caption")
IMAGE_COLUMNS = ("image", "path", "file", "filename")


@dataclass
class Dataset:
    """What a command reads: the samples, their labels (or None) and how to name them."""

    X: list
    y: np.ndarray | None
    modality: str  # "image" or "text"
    ids: list  # a path or a row number per sample, for predictions.csv
    description: str


def load_image_folder(path: str) -> tuple[list[str], np.ndarray]:
    """Paths and labels from ``path/<class>/<image>`` (images are read lazily, in batches)."""
    # Here, not at the top: the input adapters import torch, and `sktransfer --help` must not.
    from sktransfer._inputs.pixels import IMAGE_EXTENSIONS

    classes = sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)))
    paths, labels = [], []
    for label in classes:
        folder = os.path.join(path, label)
        for name in sorted(os.listdir(folder)):
            if name.lower().endswith(IMAGE_EXTENSIONS):
                paths.append(os.path.join(folder, name))
                labels.append(label)
    if len(set(labels)) < 2:
        raise ValueError(
            f"{path!r} must hold one sub-folder of images per class, with at least 2 classes; found {classes}."
        )
    return paths, np.array(labels)


def read_table(path: str) -> tuple[list[str], list[dict]]:
    """Column names and rows of a CSV, TSV or Parquet file, as strings."""
    if path.lower().endswith(".parquet"):
        try:
            import pandas as pd

            frame = pd.read_parquet(path)
        except ImportError as exc:
            raise ValueError(f"Reading {path!r} needs pandas and pyarrow: pip install pandas pyarrow.") from exc
        return [str(c) for c in frame.columns], frame.astype(str).to_dict("records")
    delimiter = "\t" if path.lower().endswith((".tsv", ".txt")) else ","
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def _pick(columns: list[str], given: str | None, candidates: tuple, what: str, flag: str, path: str) -> str | None:
    if given is not None:
        if given not in columns:
            raise ValueError(f"{path!r} has no column {given!r} for the {what} (its columns: {columns}); check {flag}.")
        return given
    return next((c for c in candidates if c in columns), None)


def load_table(path: str, *, text_column=None, image_column=None, label_column="label", need_labels=True) -> Dataset:
    """Texts or image paths, and labels, from a table file."""
    columns, rows = read_table(path)
    if not rows:
        raise ValueError(f"{path!r} holds no rows.")
    text = _pick(columns, text_column, TEXT_COLUMNS, "texts", "--text-column", path)
    image = _pick(columns, image_column, IMAGE_COLUMNS, "image paths", "--image-column", path)
    if text_column is None and image_column is not None:
        text = None
    if text is None and image is None:
        raise ValueError(
            f"{path!r} has no text or image column (its columns: {columns}); name one with --text-column or "
            "--image-column."
        )
    if label_column not in columns:
        if need_labels:
            raise ValueError(
                f"{path!r} has no label column {label_column!r} (its columns: {columns}); name it with --label-column."
            )
        labels = None
    else:
        labels = np.array([row[label_column] for row in rows])
    if text is not None:
        return Dataset([row[text] for row in rows], labels, "text", list(range(len(rows))), f"texts of {path}")
    folder = os.path.dirname(os.path.abspath(path))
    paths = [row[image] if os.path.isabs(row[image]) else os.path.join(folder, row[image]) for row in rows]
    return Dataset(paths, labels, "image", [row[image] for row in rows], f"images listed in {path}")


def load_data(path: str, *, text_column=None, image_column=None, label_column="label", need_labels=True) -> Dataset:
    """A folder of class sub-folders of images, or a table file."""
    if os.path.isdir(path):
        paths, labels = load_image_folder(path)
        return Dataset(paths, labels, "image", [os.path.relpath(p, path) for p in paths], f"image folder {path}")
    if os.path.isfile(path):
        if not path.lower().endswith(TABLE_SUFFIXES):
            raise ValueError(f"{path!r} is not a folder or a table file ({', '.join(TABLE_SUFFIXES)}).")
        return load_table(path, text_column=text_column, image_column=image_column, label_column=label_column,
                          need_labels=need_labels)
    raise ValueError(f"{path!r} does not exist: pass a folder of class sub-folders of images, or a CSV/TSV/Parquet file.")
