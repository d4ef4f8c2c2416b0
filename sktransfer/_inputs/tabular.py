"""Tabular input: 2-D numeric matrices, standardised by a StandardScaler fitted in ``fit``."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils.validation import validate_data

from sktransfer._inputs.base import InputAdapter, SampleDataset, identity
from sktransfer._inputs.scaling import fit_scaler, transform
from sktransfer.exceptions import InputModalityError


def looks_tabular(X) -> bool:
    """A 2-D matrix (or a list of rows): what a user module gets as tabular input."""
    if isinstance(X, list):
        # Judged by the first item, which is 1-D for a row. An object array of the whole list
        # costs a Python object per pixel for a list of images, and fails outright on images
        # of one height but different widths.
        first = X[0] if X else None
        return first is not None and not isinstance(first, (str, bytes)) and np.ndim(first) == 1
    return getattr(X, "ndim", 0) == 2


def _check_scaler_state(state: dict) -> None:
    """The saved standardisation against itself: one finite mean, scale and variance per
    feature, each scale > 0 (what fit's StandardScaler gives), before predict divides by them."""
    n = state["n_features_in"]
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"adapter.n_features_in is {n!r}, not a positive number of features")
    for field in ("mean", "scale", "var"):
        values = state[field]
        if not isinstance(values, list) or len(values) != n:
            raise ValueError(
                f"adapter.{field} holds {len(values) if isinstance(values, list) else values!r} values for "
                f"adapter.n_features_in={n} features; the standardisation needs one per feature"
            )
        arr = np.asarray(values, dtype=np.float64)
        bad = ~np.isfinite(arr) if field == "mean" else ~(arr > 0) if field == "scale" else ~(arr >= 0)
        if bad.any():
            rule = {"mean": "finite", "scale": "finite and > 0 (a constant feature's is 1)", "var": "finite and >= 0"}
            raise ValueError(
                f"adapter.{field} holds {arr[bad][:3].tolist()} for feature(s) {np.flatnonzero(bad)[:3].tolist()}; "
                f"each must be {rule[field]}"
            )
    exponent = state["exponent"]
    if exponent is not None and (not isinstance(exponent, list) or len(exponent) != n):
        raise ValueError(f"adapter.exponent must be None or a list of {n} exponents, not {exponent!r}")


class TabularAdapter(InputAdapter):
    """2-D float matrices, standardised with the training mean and scale."""

    modality = "tabular"
    # Standardised with each training set's statistics, and cheap anyway: not shared.
    shares_features = False


    def get_state(self) -> dict:
        """The fitted standardisation, as JSON data (model files)."""
        scaler, exponent = self.scaler_, getattr(self, "exponent_", None)
        return {
            "kind": "tabular",
            "mean": np.asarray(scaler.mean_, dtype=np.float64).tolist(),
            "scale": np.asarray(scaler.scale_, dtype=np.float64).tolist(),
            "var": np.asarray(scaler.var_, dtype=np.float64).tolist(),
            "n_samples_seen": np.asarray(scaler.n_samples_seen_).tolist(),
            "n_features_in": int(scaler.n_features_in_),
            "exponent": None if exponent is None else np.asarray(exponent).tolist(),
        }

    def set_state(self, state: dict) -> "TabularAdapter":
        from sklearn.preprocessing import StandardScaler

        self._check_kind(state)
        _check_scaler_state(state)
        scaler = StandardScaler()
        scaler.mean_ = np.asarray(state["mean"], dtype=np.float64)
        scaler.scale_ = np.asarray(state["scale"], dtype=np.float64)
        scaler.var_ = np.asarray(state["var"], dtype=np.float64)
        scaler.n_samples_seen_ = np.asarray(state["n_samples_seen"])
        if scaler.n_samples_seen_.ndim == 0:
            scaler.n_samples_seen_ = scaler.n_samples_seen_.item()
        scaler.n_features_in_ = int(state["n_features_in"])
        self.scaler_ = scaler
        self.exponent_ = None if state["exponent"] is None else np.asarray(state["exponent"], dtype=np.int32)
        return self

    def __init__(self, name: str):
        self.name = name

    @classmethod
    def from_params(cls, spec, params: dict) -> "TabularAdapter":
        return cls(spec.name)

    def fit(self, X) -> "TabularAdapter":
        self.scaler_, self.exponent_ = fit_scaler(np.asarray(X, dtype=np.float64))
        return self

    def standardise(self, X) -> np.ndarray:
        """``X`` standardised with the training statistics, as float32 for the network."""
        standardised = transform(self.scaler_, getattr(self, "exponent_", None), np.asarray(X, dtype=np.float64))
        with np.errstate(over="ignore"):
            out = standardised.astype(np.float32)
        if not np.isfinite(out).all():
            columns = np.flatnonzero(~np.isfinite(out).all(axis=0)).tolist()
            raise ValueError(
                f"X columns {columns} hold values too far from the training data for float32 once "
                f"standardised (beyond {np.finfo(np.float32).max:.2g} standard deviations). Rescale or clip "
                "those features (e.g. np.log1p of magnitudes, or np.clip to the training range)."
            )
        return out

    def check(self, X, *, estimator=None, reset: bool = False) -> np.ndarray:
        if isinstance(X, (list, tuple)) and X and isinstance(X[0], str):
            raise InputModalityError(
                f"X holds strings, but backbone {self.name!r} takes a numeric feature matrix. "
                "Use a text backbone such as 'all-MiniLM-L6-v2'."
            )
        # validate_data keeps scikit-learn's n_features_in_ / feature_names_in_ contract on the estimator.
        return validate_data(estimator, X, reset=reset, dtype=[np.float64, np.float32])

    def dataset(self, X: np.ndarray, targets=None, train: bool = False) -> SampleDataset:
        return SampleDataset(torch.from_numpy(self.standardise(X)), identity, targets)

    def sample_content(self, X: np.ndarray) -> tuple[bytes, list[bytes]]:
        arr = np.ascontiguousarray(X)
        return repr((arr.dtype.str, arr.shape[1:])).encode(), [row.tobytes() for row in arr]

    @classmethod
    def sample_batch(cls, spec, batch_size: int, image_size=None, n_features: int = 8):
        generator = torch.Generator().manual_seed(0)
        return (torch.randn(batch_size, n_features, generator=generator),), {}
