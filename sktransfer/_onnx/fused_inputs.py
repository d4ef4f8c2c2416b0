"""A fused model's inputs on the predictor's side: ``X`` (a DataFrame or a dict of columns
for a column mapping; any ``X`` for a list of backbones) split into each branch's, each
prepared by its own modality's inputs class (numpy, Pillow, tokenizers; no pandas needed
for a dict of columns).

Mirrors :mod:`sktransfer._inputs.fused`: the same column checks and messages.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from sktransfer._onnx.preprocess import INPUTS, Inputs
from sktransfer.exceptions import InvalidInputError


def _columns_of(X) -> list:
    if hasattr(X, "columns"):
        return list(X.columns)
    if isinstance(X, Mapping):
        return list(X.keys())
    raise TypeError(
        f"X is a {type(X).__name__}, but this model maps columns to backbones: pass a pandas DataFrame (or a dict "
        "of columns) with those columns."
    )


def _select(X, column, modality: str):
    """One branch's column: 2-D for a tabular branch (a one-column frame keeps its name)."""
    if column is None:
        return X
    if hasattr(X, "columns"):
        return X[[column]] if modality == "tabular" else X[column]
    values = X[column]
    if modality == "tabular":
        values = np.asarray(values)
        return values.reshape(-1, 1) if values.ndim == 1 else values
    return values


class Columns:
    """Each branch's checked samples, sliced together by rows."""

    def __init__(self, parts: dict):
        self.parts = parts

    def __len__(self):
        return len(next(iter(self.parts.values())))

    def __getitem__(self, rows: slice):
        return Columns({key: part[rows] for key, part in self.parts.items()})


class FusedInputs(Inputs):
    """Every branch's inputs, each named ``"<key>.<input>"`` in the graph."""

    def __init__(self, config, directory):
        super().__init__(config, directory)
        self.branches = [(b["key"], b["column"], b["inputs"]["kind"], INPUTS[b["inputs"]["kind"]](b["inputs"], directory))
                         for b in config["branches"]]
        self.mapped = config["mapped"]

    def check(self, X):
        if self.mapped:
            self._check_columns(X)
        parts, lengths = {}, {}
        for key, column, modality, inputs in self.branches:
            try:
                parts[key] = inputs.check(_select(X, column, modality))
            except (ValueError, TypeError) as exc:
                where = f"column {column!r}" if column is not None else f"branch {key!r} ({modality})"
                raise type(exc)(f"{where}: {exc}") from None
            lengths[column if column is not None else key] = len(parts[key])
        if len(set(lengths.values())) > 1:
            raise InvalidInputError(f"The columns of X have different lengths {lengths}; each needs one value per sample.")
        return Columns(parts)

    def _check_columns(self, X) -> None:
        columns = _columns_of(X)
        mapped = [column for _, column, _, _ in self.branches]
        missing = [c for c in mapped if c not in columns]
        extra = [c for c in columns if c not in mapped]
        if missing:
            raise InvalidInputError(
                f"columns {missing} are mapped to backbones but missing from X. X has {columns}; the model maps "
                f"{mapped}. Rename or add them."
            )
        if extra and self.config["remainder"] == "error":
            raise InvalidInputError(
                f"X has columns {extra} that are not mapped to a backbone. X has {columns}; the model maps {mapped}. "
                "Drop them from X (the model was fitted with remainder='error')."
            )

    def encode(self, samples):
        return {key: inputs.encode(samples.parts[key]) for key, _, _, inputs in self.branches}

    def lengths(self, items):
        """Tokens of all text branches together (None without text branches)."""
        lengths = [inputs.lengths(items[key]) for key, _, _, inputs in self.branches]
        lengths = [n for n in lengths if n is not None]
        return sum(lengths) if lengths else None

    def batch(self, items, rows, offset=0):
        feed = {}
        for key, _, _, inputs in self.branches:
            feed.update({f"{key}.{name}": value for name, value in inputs.batch(items[key], rows, offset).items()})
        return feed


def inputs_for(config: dict, directory: str) -> Inputs:
    """The inputs class of the exported model: its modality's, or :class:`FusedInputs`."""
    if config["kind"] == "fused":
        return FusedInputs(config, directory)
    return INPUTS[config["kind"]](config, directory)
