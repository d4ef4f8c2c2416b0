"""The input side of a fused model: a DataFrame (or dict of columns) split into each
branch's input, checked by that branch's adapter, and the datasets and batches that
feed the FusionModule."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.base import BaseEstimator
from torch.utils.data import Dataset, default_collate

from sktransfer._features.extraction import FeatureDataset, frozen_features
from sktransfer.exceptions import InvalidInputError


class BranchColumns(BaseEstimator):
    """Holds ``n_features_in_`` / ``feature_names_in_`` of one tabular branch for
    scikit-learn's ``validate_data`` (the estimator's own describe the whole frame)."""


@dataclass
class FittedBranch:
    """One branch after fit: its input, its adapter and how its features are fed."""

    name: str
    key: str  # the branch's submodule name in the FusionModule
    column: object
    spec: object
    adapter: object
    columns: BranchColumns
    frozen: bool  # its features are computed once, before training (strategy="head", no augmentation)
    fingerprint: bytes | None  # where the shared cache keys them; None: computed, not cached


def _frame_columns(X) -> list:
    if hasattr(X, "columns"):
        return list(X.columns)
    if isinstance(X, Mapping):
        return list(X.keys())
    raise TypeError(
        f"X is a {type(X).__name__}, but backbone maps columns to backbones: pass a pandas DataFrame (or a dict of "
        "columns) with those columns."
    )


def _check_unique(columns: list, wanted) -> None:
    repeated = sorted({str(c) for c in wanted if columns.count(c) > 1})
    if repeated:
        raise InvalidInputError(
            f"X has several columns named {repeated}; each column a backbone reads needs a unique name. Rename "
            "them (X.columns = [...]) or drop the copies (X.loc[:, ~X.columns.duplicated()])."
        )


def check_columns(X, mapped: list[str], remainder: str) -> list:
    """The columns of ``X``, checked against the mapping."""
    columns = _frame_columns(X)
    _check_unique(columns, mapped)
    missing = [c for c in mapped if c not in columns]
    extra = [c for c in columns if c not in mapped]
    if missing or (extra and remainder == "error"):
        problem = f"columns {missing} are mapped to backbones but missing from X" if missing else (
            f"X has columns {extra} that are not mapped to a backbone"
        )
        fix = "Rename or add them, or change the mapping." if missing else (
            "Map them to a backbone (or 'passthrough' for numbers), drop them from X, or pass remainder='drop'."
        )
        raise InvalidInputError(f"{problem}. X has {columns}; backbone maps {mapped}. {fix}")
    if isinstance(X, Mapping):
        lengths = {c: len(X[c]) for c in mapped}
        if len(set(lengths.values())) > 1:
            raise InvalidInputError(f"The columns of X have different lengths {lengths}; each needs one value per sample.")
    return columns


def select(X, column, modality: str):
    """One branch's input: the whole X, or its column (2-D for tabular branches)."""
    if column is None:
        return X
    if hasattr(X, "columns"):
        _check_unique(list(X.columns), [column])
        return X[[column]] if modality == "tabular" else X[column]
    values = X[column]
    if modality == "tabular":
        values = np.asarray(values)
        return values.reshape(-1, 1) if values.ndim == 1 else values
    return values


def _is_missing(value) -> bool:
    # None, NaN, pandas' NA and NaT, without importing pandas.
    return value is None or type(value).__name__ in ("NAType", "NaTType") or (
        isinstance(value, float) and math.isnan(value))


def _not_a_number(value) -> bool:
    if isinstance(value, (str, bytes)):
        try:
            float(value)
        except ValueError:
            return True
        return False
    return not isinstance(value, (int, float, np.number))


def check_numeric_column(values, where: str, backbone: str) -> None:
    """A column fed to a tabular branch (``"passthrough"``): numbers, none missing; the
    rows at fault named, with the column."""
    arr = values.to_numpy(dtype=object) if hasattr(values, "to_numpy") else np.asarray(values, dtype=object)
    rows = np.asarray(arr, dtype=object).reshape(len(arr), -1)
    try:
        if not np.isnan(rows.astype(np.float64)).any():
            return  # the common case, without a Python loop
    except (TypeError, ValueError):
        pass
    missing = [i for i, row in enumerate(rows) if any(_is_missing(v) for v in row)]
    if missing:
        raise InvalidInputError(
            f"{where} ({backbone}) has missing values (None, NaN or pd.NA) in rows {missing[:5]}"
            f"{' ...' if len(missing) > 5 else ''}; a column for {backbone!r} takes numbers. Fill them "
            "(X[column].fillna(...)) or drop those rows."
        )
    text = [(i, v) for i, row in enumerate(rows) for v in row if _not_a_number(v)]
    if text:
        raise InvalidInputError(
            f"{where} ({backbone}) holds values that are not numbers: {[v for _, v in text[:3]]} in rows "
            f"{[i for i, _ in text[:5]]}; a column for {backbone!r} takes numbers. Convert it (pd.to_numeric), or "
            "map the column to a text backbone."
        )


def check_branch_input(adapter, values, columns, *, column, name, backbone: str, reset: bool):
    """One fused branch's input checked by its adapter; a failure names the column (or branch)."""
    where = f"column {column!r}" if column is not None else f"branch {name!r}"
    if adapter.modality == "tabular" and column is not None:
        check_numeric_column(values, where, backbone)
    try:
        return adapter.check(values, estimator=columns, reset=reset)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"{where} ({backbone}): {exc}") from exc


class FusedInput:
    """The input side of a fused model: ``X`` split into each branch's input, checked by
    that branch's adapter, and the datasets that feed the FusionModule."""

    shares_features = False  # per branch instead

    def __init__(self, branches: list[FittedBranch], mapped: bool, remainder: str):
        self.branches = branches
        self.mapped = mapped
        self.remainder = remainder
        self.collate_fn = FusedCollate([(b.key, b.adapter.collate_fn, b.frozen) for b in branches])

    def check(self, X, *, estimator=None, reset: bool = False) -> dict:
        if self.mapped:
            check_columns(X, [b.column for b in self.branches], self.remainder)
        checked = {}
        for b in self.branches:
            checked[b.key] = check_branch_input(b.adapter, select(X, b.column, b.spec.modality), b.columns,
                                                column=b.column, name=b.name, backbone=b.spec.name, reset=reset)
        return checked

    def dataset(self, checked: dict, module, targets=None, *, train=False, batch_size=32, device="cpu", fast=None,
                feature_cache="memory"):
        """Concatenated features when every branch is frozen; else each branch's own input,
        cached features in place of a frozen branch's."""
        frozen = {
            b.key: frozen_features(module.branches[b.key], b.spec, b.adapter, checked[b.key], fingerprint=b.fingerprint,
                                   batch_size=batch_size, device=device, fast=fast, feature_cache=feature_cache)
            for b in self.branches if b.frozen
        }
        if len(frozen) == len(self.branches):
            return FeatureDataset(torch.cat([frozen[b.key] for b in self.branches], dim=1), targets)
        parts = {
            b.key: frozen[b.key] if b.key in frozen else b.adapter.dataset(checked[b.key], None, train=train)
            for b in self.branches
        }
        return FusedDataset(parts, targets)


class FusedDataset(Dataset):
    """Sample ``i`` of every branch (a raw input, or a frozen branch's feature row)."""

    def __init__(self, parts: dict, targets: dict | None):
        self.parts = parts
        self.targets = targets
        self.n = len(next(iter(parts.values())))

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        X = {key: part[i] if isinstance(part, torch.Tensor) else part[i][0] for key, part in self.parts.items()}
        target = 0.0 if self.targets is None else {k: v[i] for k, v in self.targets.items()}
        return X, target


class FusedCollate:
    """Each branch's samples collated by its own adapter; feature rows are stacked."""

    def __init__(self, parts: list):
        self.parts = parts

    def __call__(self, batch):
        Xs, targets = zip(*batch)
        X = {}
        for key, collate, frozen in self.parts:
            items = [x[key] for x in Xs]
            # A frozen branch's rows are its features; the others go through their adapter.
            X[key] = torch.stack(items) if frozen else collate([(item, 0.0) for item in items])[0]
        return X, default_collate(list(targets))
