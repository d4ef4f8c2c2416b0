"""Parameters and labels as JSON values: what model files hold instead of pickles."""

from __future__ import annotations

import os

import numpy as np
import torch

from sktransfer._build.fusion import Branch

ENCODE_HINT = "pickle or joblib the estimator instead, or pass a registered backbone name / a string augment"


def encode(value, name: str):
    """A parameter as JSON: lists stay lists; tuples and dicts are tagged objects."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if not np.isfinite(value):
            raise ValueError(f"Parameter {name}={value!r} is not finite; JSON can't hold it: {ENCODE_HINT}.")
        return value
    if isinstance(value, torch.device):
        return str(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, list):
        return [encode(v, f"{name}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return {"tuple": [encode(v, f"{name}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, dict):
        return {"dict": [[encode(k, f"{name} key"), encode(v, f"{name}[{k!r}]")] for k, v in value.items()]}
    if isinstance(value, Branch):  # its parameters, never the object
        return {"branch": {k: encode(v, f"{name}.{k}") for k, v in value.get_params(deep=False).items()}}
    if name == "feature_cache":  # a store object (FeatureStore): where rows live is the loading machine's choice
        raise ValueError(
            f"save_pretrained can't store feature_cache={value!r}: a store object is not a JSON value, and model "
            "files never hold pickled objects. Save with estimator.set_params(feature_cache='memory') (or a "
            "directory path), and give the loaded model its store with set_params(feature_cache=...)."
        )
    raise ValueError(
        f"save_pretrained can't store the parameter {name}={value!r} ({type(value).__name__}) as JSON, and "
        f"model files never hold pickled objects: {ENCODE_HINT}."
    )


def decode(value):
    if isinstance(value, list):
        return [decode(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"tuple"} and isinstance(value["tuple"], list):
            return tuple(decode(v) for v in value["tuple"])
        if set(value) == {"dict"} and isinstance(value["dict"], list):
            return {decode(k): decode(v) for k, v in value["dict"]}
        if set(value) == {"branch"} and isinstance(value["branch"], dict):
                    # Branch's own __init__ takes the parameters: an unknown name raises TypeError.
            return Branch(**{k: decode(v) for k, v in value["branch"].items()})
        raise ValueError(f"unexpected JSON object {value!r}")
    return value


_LABEL_TYPES = {"str": str, "int": int, "float": float, "bool": bool}


def encode_labels(values, what: str) -> dict:
    """An array of labels (classes, feature names) as a list plus its element type and dtype."""
    arr = np.asarray(values)
    items = arr.tolist()
    for kind, types in (("bool", (bool,)), ("int", (int,)), ("float", (float,)), ("str", (str,))):
        if all(isinstance(v, types) and (kind == "bool" or not isinstance(v, bool)) for v in items):
            if kind == "float" and not all(np.isfinite(items)):
                break
            return {"values": items, "type": kind, "dtype": arr.dtype.str}
    raise ValueError(
        f"save_pretrained stores {what} as JSON, which holds str, int, float or bool labels; these are "
        f"{sorted({type(v).__name__ for v in items})}. Map the labels to str or int before fitting, or "
        "pickle or joblib the estimator instead."
    )


def decode_labels(data: dict) -> np.ndarray:
    kind = _LABEL_TYPES[data["type"]]
    values = data["values"]
    if not isinstance(values, list) or not all(isinstance(v, kind) for v in values):
        raise ValueError(f"labels are not all {data['type']}")
    return np.array(values, dtype=np.dtype(data["dtype"]))


def floats(values) -> list:
    return np.asarray(values, dtype=np.float64).tolist()

