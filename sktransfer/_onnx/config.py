"""The exported directory's JSON file: its name, format version, and plain-data values.

Torch-free: the predictor reads it.
"""

from __future__ import annotations

import json
import os

import numpy as np

CONFIG_FILE = "sktransfer_onnx.json"
GRAPH_FILE = "model.onnx"
FORMAT = "sktransfer-onnx"
#: The newest format this reads. Exports of models fitted with ``init=`` are format 2
#: (a second graph input, and the ``init=`` model's export in :data:`INIT_DIRECTORY`),
#: so that an older sktransfer says to upgrade; the others are still format 1.
VERSION = 2
#: Where the export of a model fitted with ``init=`` holds its ``init=`` model's export.
INIT_DIRECTORY = "init"
#: The graph input of a model fitted with ``init=`` that takes its ``init=`` model's offsets.
INIT_INPUT = "init_offset"
KINDS = ("classifier", "regressor", "embedder")


def is_exported(path) -> bool:
    """Whether ``path`` is a directory written by :func:`sktransfer.export_onnx`."""
    return os.path.isfile(os.path.join(os.fspath(path), CONFIG_FILE))


def write_config(path, config: dict) -> None:
    with open(os.path.join(os.fspath(path), CONFIG_FILE), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2, allow_nan=False)


def read_config(path) -> dict:
    """The exported directory's config; raises when ``path`` holds none or a newer format."""
    path = os.fspath(path)
    file = os.path.join(path, CONFIG_FILE)
    if not os.path.isfile(file):
        hint = (" It holds a model directory (config.json): export it first with sktransfer.export_onnx(path, out) "
                "or `sktransfer export MODEL_DIR OUT`." if os.path.isfile(os.path.join(path, "config.json")) else "")
        raise ValueError(f"{path!r} is not an exported ONNX model: it has no {CONFIG_FILE}.{hint}")
    with open(file, encoding="utf-8") as f:
        config = json.load(f)
    if config.get("format") != FORMAT or not isinstance(config.get("version"), int):
        raise ValueError(f"{file!r} is not an sktransfer ONNX config (format {config.get('format')!r}).")
    if config["version"] > VERSION:
        raise ValueError(
            f"{file!r} was written by a newer sktransfer (format version {config['version']}; this one reads up "
            f"to {VERSION}). Upgrade sktransfer."
        )
    if config.get("kind") not in KINDS:
        raise ValueError(f"{file!r} names an unknown model kind {config.get('kind')!r}; known: {KINDS}.")
    return config


def encode_array(values) -> dict:
    """A 1-D numpy array (class labels, statistics) as JSON data that :func:`decode_array` restores."""
    arr = np.asarray(values)
    if arr.dtype == object and not all(isinstance(v, (str, int, float, bool)) for v in arr.tolist()):
        kinds = sorted({type(v).__name__ for v in arr.tolist()})
        raise ValueError(f"values of type {', '.join(kinds)} can't be written to JSON; only str, int, float, bool.")
    return {"values": arr.tolist(), "dtype": arr.dtype.str if arr.dtype != object else "object"}


def decode_array(data: dict | None) -> np.ndarray | None:
    if data is None:
        return None
    return np.asarray(data["values"], dtype=object if data["dtype"] == "object" else np.dtype(data["dtype"]))
