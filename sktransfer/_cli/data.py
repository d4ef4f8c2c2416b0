"""Data for the command line: image folders (one sub-folder per class, or flat), image
files or a glob, or a table file.

A table is a CSV, TSV or Parquet file with a text column or an image-path column (paths
relative to the table's folder), and a label column (optional for ``predict``). The
sample column is detected by name (``text``, ``sentence``, ``review``, ``caption`` for
texts; ``path``, ``image``, ``file``, ``filename`` for images) unless named with
``--text-column`` or ``--image-column``.

CSV and TSV files are read as UTF-8 (a byte-order mark is skipped) unless ``--encoding``
names another encoding. The flags that name a table's columns or its encoding are refused
for data that isn't a table, and a label column with empty cells is refused where labels
are needed.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import glob
import io
import os
from dataclasses import dataclass

import numpy as np

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet")
TEXT_COLUMNS = ("text", "sentence", "review", "caption")
IMAGE_COLUMNS = ("path", "image", "file", "filename")
# Here, not imported from the input adapters: they import torch, and `sktransfer --help` must not.
# tests/test_cli.py checks it equals sktransfer._inputs.pixels.IMAGE_EXTENSIONS.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


@dataclass
class Dataset:
    """What a command reads: the samples, their labels (or None) and how to name them."""

    X: list
    y: np.ndarray | None
    modality: str  # "image" or "text"
    ids: list  # a file path, the --id-column's value or a row number per sample, for predictions.csv
    description: str


def _images_in(folder: str) -> list[str]:
    return [os.path.join(folder, name) for name in sorted(os.listdir(folder))
            if name.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(folder, name))]


def load_image_folder(path: str) -> tuple[list[str], np.ndarray]:
    """Paths and labels from ``path/<class>/<image>`` (images are read lazily, in batches)."""
    classes = sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)) and not d.startswith("."))
    paths, labels = [], []
    empty = []
    for label in classes:
        found = _images_in(os.path.join(path, label))
        if not found:
            empty.append(label)
        paths += found
        labels += [label] * len(found)
    if empty:
        raise ValueError(
            f"The class folder(s) {', '.join(repr(os.path.join(path, e)) for e in empty)} hold no images "
            f"({', '.join(IMAGE_EXTENSIONS)}): add images to them or remove them."
        )
    if len(set(labels)) < 2:
        flat = _images_in(path)
        hint = (f" It holds {len(flat)} image(s) directly: labels come from one sub-folder per class (or a table "
                "with a label column); `sktransfer predict` reads a flat folder." if flat else "")
        raise ValueError(
            f"{path!r} must hold one sub-folder of images per class, with at least 2 classes; found {classes}.{hint}"
        )
    return paths, np.array(labels)


def encoding_name(value: str) -> str:
    """An encoding Python knows, for argparse (``--encoding``)."""
    try:
        codecs.lookup(value)
    except LookupError:
        import argparse

        raise argparse.ArgumentTypeError(f"unknown encoding {value!r}; e.g. utf-8, latin-1, cp1252, utf-16") from None
    return value


def _decode_error(path: str, encoding: str, detail: str) -> ValueError:
    return ValueError(
        f"{path!r} is not {encoding} text ({detail}): pass the file's encoding with --encoding, e.g. --encoding "
        "latin-1, cp1252 or utf-16."
    )


def read_text(path: str, encoding: str | None = None) -> str:
    """A CSV or TSV file's text; UTF-8 by default (a byte-order mark is skipped). A file that
    doesn't decode, or that decodes to NUL characters (UTF-16 read as UTF-8), names the file,
    the encoding tried and ``--encoding``."""
    encoding = encoding or "utf-8"
    codec = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
    with open(path, "rb") as f:
        raw = f.read()
    nul = raw.find(b"\x00")
    as_utf16 = f"NUL bytes from position {nul}, as UTF-16 text has"
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError as exc:
        detail = as_utf16 if nul >= 0 else f"byte {raw[exc.start]:#04x} at position {exc.start}: {exc.reason}"
        raise _decode_error(path, encoding, detail) from None
    except UnicodeError as exc:
        raise _decode_error(path, encoding, str(exc)) from None
    if "\x00" in text:
        raise _decode_error(path, encoding, as_utf16)
    return text


def read_table(path: str, encoding: str | None = None) -> tuple[list[str], list[dict]]:
    """Column names and rows of a CSV, TSV or Parquet file, as strings; a Parquet file's
    missing cells are empty strings, as a CSV's empty cells are."""
    if path.lower().endswith(".parquet"):
        if encoding is not None:
            raise ValueError(f"--encoding applies to CSV and TSV files; {path!r} is a Parquet file, which stores its "
                             "own: drop --encoding.")
        try:
            import pandas as pd

            frame = pd.read_parquet(path)
        except ImportError as exc:
            raise ValueError(f"Reading {path!r} needs pandas and pyarrow: pip install pandas pyarrow.") from exc
        frame = frame.astype(object).where(frame.notna(), "")
        return [str(c) for c in frame.columns], frame.astype(str).to_dict("records")
    delimiter = "\t" if path.lower().endswith((".tsv", ".txt")) else ","
    reader = csv.DictReader(io.StringIO(read_text(path, encoding), newline=""), delimiter=delimiter)
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise ValueError(f"{path!r} is not a valid table: {exc} (line {reader.line_num}).") from None
    return list(reader.fieldnames or []), rows


def labels_of(path: str, rows: list[dict], label_column: str) -> np.ndarray:
    """The label column, refused when a cell is empty: ``''`` would become a class."""
    empty = [i for i, row in enumerate(rows, start=1) if not (row[label_column] or "").strip()]
    if empty:
        shown = ", ".join(map(str, empty[:5])) + (", ..." if len(empty) > 5 else "")
        raise ValueError(
            f"{path!r} has {len(empty)} of {len(rows)} row(s) with an empty cell in the label column "
            f"{label_column!r} (row {shown}; row 1 is the first under the header), which would make '' a class: fill "
            "them in, or remove those rows (`sktransfer predict` reads rows without labels)."
        )
    return np.array([row[label_column] for row in rows])


def _no_column(path: str, given: str, columns: list[str], what: str, flag: str) -> ValueError:
    close = difflib.get_close_matches(given, columns, n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ValueError(f"{path!r} has no column {given!r} for the {what} (its columns: {columns}).{hint} Check {flag}.")


def _pick(columns: list[str], given: str | None, candidates: tuple, what: str, flag: str, path: str) -> str | None:
    if given is not None:
        if given not in columns:
            raise _no_column(path, given, columns, what, flag)
        return given
    return next((c for c in candidates if c in columns), None)


def load_table(path: str, *, text_column=None, image_column=None, label_column=None, need_labels=True,
               id_column=None, modality=None, encoding=None) -> Dataset:
    """Texts or image paths, and labels, from a table file; with ``modality`` (the model's),
    the column of that kind when the table has both."""
    label_column = label_column or "label"
    columns, rows = read_table(path, encoding)
    if not rows:
        raise ValueError(f"{path!r} holds no rows.")
    text = _pick(columns, text_column, TEXT_COLUMNS, "texts", "--text-column", path)
    image = _pick(columns, image_column, IMAGE_COLUMNS, "image paths", "--image-column", path)
    if text_column is None and image_column is not None or (modality == "image" and image is not None):
        text = None
    if text is None and image is None:
        raise ValueError(
            f"{path!r} has no text or image column (its columns: {columns}); name one with --text-column or "
            f"--image-column (detected by name: {', '.join(TEXT_COLUMNS)} for texts, {', '.join(IMAGE_COLUMNS)} "
            "for image paths)."
        )
    if modality == "text" and text is None:
        raise ValueError(
            f"{path!r} looks like image paths (column {image!r}), but the model takes text: it would read the file "
            "names as sentences. Give it a table with a text column (--text-column), or use an image model."
        )
    if label_column not in columns:
        if need_labels:
            close = difflib.get_close_matches(label_column, columns, n=1, cutoff=0.6)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"{path!r} has no label column {label_column!r} (its columns: {columns}).{hint} Name it with "
                "--label-column."
            )
        labels = None
    elif need_labels:
        labels = labels_of(path, rows, label_column)
    else:
        labels = np.array([row[label_column] for row in rows])
    if id_column is not None and id_column not in columns:
        raise _no_column(path, id_column, columns, "row ids", "--id-column")
    if text is not None:
        ids = [row[id_column] for row in rows] if id_column else list(range(len(rows)))
        return Dataset([row[text] for row in rows], labels, "text", ids, f"texts of {path}")
    folder = os.path.dirname(os.path.abspath(path))
    paths = [row[image] if os.path.isabs(row[image]) else os.path.join(folder, row[image]) for row in rows]
    ids = [row[id_column or image] for row in rows]
    return Dataset(paths, labels, "image", ids, f"images listed in {path}")


def _image_files(paths: list[str]) -> Dataset:
    """Unlabelled image files named one by one or by glob patterns, in the order given."""
    files = []
    for pattern in paths:
        if glob.has_magic(pattern):
            matched = sorted(glob.glob(pattern, recursive=True))
            if not matched:
                raise ValueError(f"The pattern {pattern!r} matches no file.")
            files += matched
        elif os.path.isfile(pattern):
            files.append(pattern)
        else:
            raise ValueError(f"{pattern!r} does not exist.")
    not_images = [f for f in files if not f.lower().endswith(IMAGE_EXTENSIONS)]
    if not_images:
        raise ValueError(
            f"{not_images[0]!r} is not an image file ({', '.join(IMAGE_EXTENSIONS)}); pass image files, a folder of "
            "images, or one table file."
        )
    return Dataset(files, None, "image", files, f"image file(s) {paths[0]}{' ...' if len(paths) > 1 else ''}")


def load_folder(path: str, need_labels: bool) -> Dataset:
    """A folder of class sub-folders of images (labelled), or a flat folder of images (``predict`` only)."""
    has_classes = any(os.path.isdir(os.path.join(path, d)) and not d.startswith(".") for d in os.listdir(path))
    flat = _images_in(path)
    if flat and not has_classes and not need_labels:
        return Dataset(flat, None, "image", flat, f"images in {path}")
    if flat and not has_classes:
        raise ValueError(
            f"{path!r} holds {len(flat)} image(s) but no class sub-folders, so it has no labels: put the images in "
            "one sub-folder per class, or pass a table with a label column (--label-column)."
        )
    paths, labels = load_image_folder(path)
    return Dataset(paths, labels, "image", paths, f"image folder {path}")


def check_table_flags(path, *, text_column=None, image_column=None, label_column=None, id_column=None,
                      encoding=None) -> None:
    """Refuses ``--text-column`` with ``--image-column``, and the table flags (a column's name,
    ``--encoding``) for data that isn't a table; cheap, so commands call it before reading a model."""
    if text_column is not None and image_column is not None:
        raise ValueError(
            "--text-column and --image-column can't be used together: a model reads one column of samples, texts "
            "or image paths; keep the one its data is in."
        )
    given = {"text_column": text_column, "image_column": image_column, "label_column": label_column,
             "id_column": id_column, "encoding": encoding}
    flags = [f"--{name.replace('_', '-')}" for name, value in given.items() if value is not None]
    paths = [os.fspath(p) for p in path] if isinstance(path, (list, tuple)) else [os.fspath(path)]
    is_table = len(paths) == 1 and os.path.isfile(paths[0]) and paths[0].lower().endswith(TABLE_SUFFIXES)
    if flags and not is_table and (len(paths) > 1 or os.path.exists(paths[0]) or glob.has_magic(paths[0])):
        raise ValueError(
            f"{' and '.join(flags)} appl{'ies' if len(flags) == 1 else 'y'} to tables (CSV, TSV, Parquet), and "
            f"{paths[0]!r}{' ...' if len(paths) > 1 else ''} is {'a folder' if os.path.isdir(paths[0]) else 'images'}"
            f": drop {'it' if len(flags) == 1 else 'them'}."
        )


def load_data(path, *, text_column=None, image_column=None, label_column=None, need_labels=True,
              id_column=None, modality=None, encoding=None) -> Dataset:
    """A folder of images, image files or glob patterns (a list of them), or one table file.
    The table flags (a column's name, ``encoding``) are refused for data that isn't a table."""
    check_table_flags(path, text_column=text_column, image_column=image_column, label_column=label_column,
                      id_column=id_column, encoding=encoding)
    paths = [os.fspath(p) for p in path] if isinstance(path, (list, tuple)) else [os.fspath(path)]
    if len(paths) > 1 or glob.has_magic(paths[0]) or paths[0].lower().endswith(IMAGE_EXTENSIONS):
        if need_labels:
            raise ValueError(
                "Image files given one by one have no labels: give fit and evaluate a folder with one sub-folder "
                "of images per class, or a table with a path and a label column."
            )
        return _image_files(paths)
    path = paths[0]
    if os.path.isdir(path):
        return load_folder(path, need_labels)
    if os.path.isfile(path):
        if not path.lower().endswith(TABLE_SUFFIXES):
            raise ValueError(f"{path!r} is not a folder, an image or a table file ({', '.join(TABLE_SUFFIXES)}).")
        return load_table(path, text_column=text_column, image_column=image_column, label_column=label_column,
                          need_labels=need_labels, id_column=id_column, modality=modality, encoding=encoding)
    raise ValueError(
        f"{path!r} does not exist: pass a folder of images (one sub-folder per class to fit or evaluate), image "
        "files or a glob, or a CSV/TSV/Parquet file."
    )
