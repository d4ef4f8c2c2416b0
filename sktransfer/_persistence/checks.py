"""A model file checked against itself before anything is built from it.

The checksums catch accidents; these checks catch files that are valid JSON and
safetensors but contradict themselves (hand-made, edited with the checksum recomputed,
or written by a broken plugin): the labels against the head, the sizes against the
tensors (before any allocation), the numbers for finiteness. Each failure is a
``ModelFileError`` that names the file, the field and what is wrong.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from sktransfer._nn.lora import is_lora_name
from sktransfer.exceptions import ModelFileError

#: The most outputs, features or LoRA rank a model file may declare: a bound checked
#: before anything is allocated (a head of that many outputs on that many features
#: is further bounded by the tensors the file holds).
MAX_SIZE = 1 << 20
#: How deep config.json may nest (save_pretrained writes fewer than 10 levels).
MAX_DEPTH = 64

_AGAIN = "The file was edited or damaged: save the model again."


def parse_config(config_path: Path) -> dict:
    """``config.json``'s JSON, with its nesting and numbers checked (no NaN or Infinity)."""
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(
            f"{config_path} is not valid JSON ({exc}); the file is damaged. Save the model again."
        ) from None
    except RecursionError:
        raise ModelFileError(
            f"{config_path} nests JSON arrays or objects deeper than Python can read (save_pretrained writes fewer "
            f"than {MAX_DEPTH} levels). {_AGAIN}"
        ) from None
    _check_values(config, config_path)
    return config


def _check_values(config, config_path: Path) -> None:
    stack = [(config, "", 0)]
    while stack:
        value, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ModelFileError(
                f"{config_path}: {where or 'the top level'} nests deeper than {MAX_DEPTH} levels, which "
                f"save_pretrained never writes. {_AGAIN}"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise ModelFileError(
                f"{config_path}: {where} is {json.dumps(value)}, not a finite number (JSON model files hold "
                f"finite numbers only). {_AGAIN}"
            )
        if isinstance(value, dict):
            stack.extend((v, f"{where}.{k}" if where else str(k), depth + 1) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value))


def _size(value, field: str, config_path: Path, *, low: int = 1) -> int:
    """An integer size from the config, within ``[low, MAX_SIZE]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ModelFileError(f"{config_path}: {field} is {value!r}, not an integer. {_AGAIN}")
    if not low <= value <= MAX_SIZE:
        raise ModelFileError(
            f"{config_path}: {field}={value} is outside {low}..{MAX_SIZE}, the sizes a model file may declare; "
            f"nothing was allocated. {_AGAIN}"
        )
    return value


def _values(data, field: str, config_path: Path) -> list:
    values = data.get("values") if isinstance(data, dict) else None
    if not isinstance(values, list):
        raise ModelFileError(f"{config_path}: {field} holds no list of values. {_AGAIN}")
    return values


def _check_unique(values: list, field: str, config_path: Path) -> None:
    seen, repeated = set(), []
    for v in values:
        key = (type(v), v)
        if key in seen and v not in repeated:
            repeated.append(v)
        seen.add(key)
    if repeated:
        raise ModelFileError(f"{config_path}: {field} repeats {repeated[:3]}; each must appear once. {_AGAIN}")


def _check_fitted(fitted: dict, config_path: Path) -> int:
    """The target encoding against itself; returns ``n_outputs_``."""
    if not isinstance(fitted, dict):
        raise ModelFileError(f"{config_path}: 'fitted' is not a JSON object. {_AGAIN}")
    n_outputs = _size(fitted.get("n_outputs_"), "fitted.n_outputs_", config_path)
    if "classes_" in fitted:
        classes = _values(fitted["classes_"], "fitted.classes_", config_path)
        _check_unique(classes, "fitted.classes_ (the class labels)", config_path)
        if len(classes) != n_outputs:
            raise ModelFileError(
                f"{config_path}: fitted.classes_ holds {len(classes)} labels, but fitted.n_outputs_ says the head "
                f"has {n_outputs} outputs; they must match, one label per output. {_AGAIN}"
            )
    for name in ("target_mean_", "target_scale_", "_target_multiplier"):
        if name in fitted:
            values = fitted[name]
            if not isinstance(values, list) or len(values) != n_outputs or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                raise ModelFileError(
                    f"{config_path}: fitted.{name} must be a list of {n_outputs} numbers (one per output, "
                    f"fitted.n_outputs_), not {values!r}. {_AGAIN}"
                )
            if name == "target_scale_" and not all(v > 0 for v in values):
                raise ModelFileError(f"{config_path}: fitted.target_scale_ {values} holds a scale <= 0. {_AGAIN}")
    if "feature_names_in_" in fitted:
        names = _values(fitted["feature_names_in_"], "fitted.feature_names_in_", config_path)
        _check_unique(names, "fitted.feature_names_in_ (the column names)", config_path)
        if fitted.get("n_features_in_") != len(names):
            raise ModelFileError(
                f"{config_path}: fitted.feature_names_in_ names {len(names)} columns, but fitted.n_features_in_ is "
                f"{fitted.get('n_features_in_')!r}. {_AGAIN}"
            )
    return n_outputs


def _branch_width(record: dict, field: str, config_path: Path) -> int:
    backbone = record.get("backbone") if isinstance(record, dict) else None
    if not isinstance(backbone, dict):
        raise ModelFileError(f"{config_path}: {field} has no backbone record. {_AGAIN}")
    width = _size(backbone.get("feature_dim"), f"{field}backbone.feature_dim", config_path)
    if "widths" in record:
        widths = record["widths"]
        if not isinstance(widths, list) or not widths:
            raise ModelFileError(f"{config_path}: {field}widths is not a list of feature sizes. {_AGAIN}")
        total = sum(_size(w, f"{field}widths[{i}]", config_path) for i, w in enumerate(widths))
        if total != width:
            raise ModelFileError(
                f"{config_path}: {field}widths {widths} add up to {total}, but {field}backbone.feature_dim is "
                f"{width}. {_AGAIN}"
            )
    return width


def check_config(config: dict, tensors: dict, config_path: Path, weights_path: Path, *, embedder: bool) -> None:
    """The sizes and labels of ``config`` against themselves and the head in ``tensors``,
    before anything is built."""
    branches = config.get("branches")
    if branches is not None:
        if not isinstance(branches, list) or not branches:
            raise ModelFileError(f"{config_path}: branches is not a list of branch records. {_AGAIN}")
        width = sum(_branch_width(record, f"branches[{i}].", config_path) for i, record in enumerate(branches))
    else:
        width = _branch_width(config, "", config_path)
    if embedder:
        return
    n_outputs = _check_fitted(config.get("fitted"), config_path)
    adapter, fitted = config.get("adapter"), config["fitted"]
    if isinstance(adapter, dict) and "n_features_in" in adapter and adapter["n_features_in"] != fitted.get(
            "n_features_in_", adapter["n_features_in"]):
        raise ModelFileError(
            f"{config_path}: adapter.n_features_in={adapter['n_features_in']!r} (the standardisation's features) "
            f"differs from fitted.n_features_in_={fitted['n_features_in_']!r}. {_AGAIN}"
        )
    for name, shape in (("head.weight", (n_outputs, width)), ("head.bias", (n_outputs,))):
        tensor = tensors.get(name)
        if tensor is None or tuple(tensor.shape) != shape:
            found = "no such tensor" if tensor is None else f"shape {tuple(tensor.shape)}"
            raise ModelFileError(
                f"{weights_path} does not fit {config_path}: the head's {name} should have shape {shape} "
                f"({n_outputs} outputs, fitted.n_outputs_ there, on {width} features, the backbones' feature_dim), "
                f"but the file has {found}. {_AGAIN}"
            )


def check_lora_rank(rank, tensors: dict, config_path: Path, weights_path: Path) -> None:
    """A LoRA model's ``lora_rank`` against its stored adapters, before any adapter is built."""
    _size(rank, "params.lora_rank", config_path)
    ranks = {int(t.shape[0]) for name, t in tensors.items() if is_lora_name(name) and ".lora_A." in name
             and t.ndim >= 1}
    if ranks != {rank}:
        found = f"adapters of rank {sorted(ranks)}" if ranks else "no LoRA adapter tensors"
        raise ModelFileError(
            f"{config_path}: params.lora_rank={rank}, but {weights_path.name} holds {found}. {_AGAIN}"
        )


def check_tensors(tensors: dict, weights_path: Path) -> None:
    """Every floating tensor of the file finite: NaN weights are the file's fault, not the inputs'."""
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise ModelFileError(
                f"{weights_path}: tensor {name!r} holds {bad} NaN or infinite value(s) of {tensor.numel()}; a model "
                "with such weights predicts NaN for every input. The model diverged before it was saved, or the "
                "file was damaged: refit the model and save it again."
            )


def check_dtypes(expected: dict, tensors: dict, weights_path: Path, config_path: Path) -> None:
    """Each tensor of the file in the dtype of the module tensor it loads into (a copy
    would reinterpret integers as weights, silently)."""
    for name, tensor in tensors.items():
        target = expected.get(name)
        if target is not None and target.dtype != tensor.dtype:
            raise ModelFileError(
                f"{weights_path}: tensor {name!r} is stored as {tensor.dtype}, but the model in {config_path.name} "
                f"holds {target.dtype} there; the file was written for another model or edited. Save the model again."
            )
