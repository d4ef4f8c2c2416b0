"""Model files: a fitted estimator as a directory that loading never unpickles.

``save_pretrained(estimator, path)`` writes ``config.json`` (parameters, fitted
attributes, the backbone's name, plugin and version, the adapter's state) and
``model.safetensors`` (the module's tensors; for a frozen pretrained backbone, only the
head's, and with ``strategy="lora"`` the adapters', plus a fingerprint of the pretrained
weights that loading checks).
``load(path)`` rebuilds the estimator from those, without training.

The checksums guard against accidents (a truncated copy, a hand edit), not against an
attacker, who can recompute them; what keeps a hostile file from running code is that
nothing here unpickles: JSON and safetensors only, and the parameters go through the
estimator's own validation.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from .exceptions import ModelFileError

FORMAT_VERSION = 1
CONFIG = "config.json"
WEIGHTS = "model.safetensors"
_ENCODE_HINT = "pickle or joblib the estimator instead, or pass a registered backbone name / a string augment"


# ------------------------------------------------------------------ JSON values
def _encode(value, name: str):
    """A parameter as JSON: lists stay lists; tuples and dicts are tagged objects."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if not np.isfinite(value):
            raise ValueError(f"Parameter {name}={value!r} is not finite; JSON can't hold it: {_ENCODE_HINT}.")
        return value
    if isinstance(value, torch.device):
        return str(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, list):
        return [_encode(v, f"{name}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return {"tuple": [_encode(v, f"{name}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, dict):
        return {"dict": [[_encode(k, f"{name} key"), _encode(v, f"{name}[{k!r}]")] for k, v in value.items()]}
    raise ValueError(
        f"save_pretrained can't store the parameter {name}={value!r} ({type(value).__name__}) as JSON, and "
        f"model files never hold pickled objects: {_ENCODE_HINT}."
    )


def _decode(value):
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"tuple"} and isinstance(value["tuple"], list):
            return tuple(_decode(v) for v in value["tuple"])
        if set(value) == {"dict"} and isinstance(value["dict"], list):
            return {_decode(k): _decode(v) for k, v in value["dict"]}
        raise ValueError(f"unexpected JSON object {value!r}")
    return value


_LABEL_TYPES = {"str": str, "int": int, "float": float, "bool": bool}


def _encode_labels(values, what: str) -> dict:
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


def _decode_labels(data: dict) -> np.ndarray:
    kind = _LABEL_TYPES[data["type"]]
    values = data["values"]
    if not isinstance(values, list) or not all(isinstance(v, kind) for v in values):
        raise ValueError(f"labels are not all {data['type']}")
    return np.array(values, dtype=np.dtype(data["dtype"]))


def _floats(values) -> list:
    return np.asarray(values, dtype=np.float64).tolist()


# ------------------------------------------------------------------ helpers
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _canonical(config: dict) -> bytes:
    return json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _config_checksum(config: dict) -> str:
    return hashlib.sha256(_canonical({k: v for k, v in config.items() if k != "checksum"})).hexdigest()


def _version_tuple(version: str) -> tuple:
    parts = []
    for part in str(version).split("."):
        digits = "".join(c for c in part if c.isdigit()) if part[:1].isdigit() else ""
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def _distribution_version(distribution: str):
    if not distribution:
        return None
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        if distribution == "sktransfer":
            from . import __version__

            return __version__
        return None


def _stores_backbone(estimator) -> bool:
    """Whether the backbone's weights go into the file: all but frozen pretrained ones
    (``strategy="head"``, and ``"lora"``, whose adapters are stored on their own)."""
    return not (estimator.strategy in ("head", "lora") and estimator._is_pretrained(estimator.spec_))


def _small_state(module, strategy: str) -> dict:
    """What a model on a frozen pretrained backbone stores: the head, and the LoRA adapters."""
    from ._lora import is_lora_name

    state = {f"head.{k}": v for k, v in module.head.state_dict().items()}
    if strategy == "lora":
        state.update((f"backbone.{k}", v) for k, v in module.backbone.state_dict().items() if is_lora_name(k))
    return state


def _pretrained_fingerprint(backbone, strategy: str) -> bytes:
    """The fingerprint of the pretrained weights under a frozen backbone (LoRA: without its adapters)."""
    from ._feature_cache import fingerprint_module
    from ._lora import base_state

    return fingerprint_module(backbone, base_state(backbone) if strategy == "lora" else None)


def _adapter_state(adapter) -> dict:
    from ._adapters.image import ImageAdapter
    from ._adapters.tabular import TabularAdapter
    from ._adapters.text import TextAdapter

    if isinstance(adapter, TabularAdapter):
        scaler = adapter.scaler_
        exponent = getattr(adapter, "exponent_", None)
        return {
            "kind": "tabular",
            "mean": _floats(scaler.mean_),
            "scale": _floats(scaler.scale_),
            "var": _floats(scaler.var_),
            "n_samples_seen": np.asarray(scaler.n_samples_seen_).tolist(),
            "n_features_in": int(scaler.n_features_in_),
            "exponent": None if exponent is None else np.asarray(exponent).tolist(),
        }
    if isinstance(adapter, TextAdapter):
        return {
            "kind": "text",
            "max_length": int(adapter.collate_fn.max_length),
            "pooling": adapter.pooling,
            "long_text": adapter.long_text,
            "chunk_pooling": adapter.chunk_pooling,
            "tokenizer": str(getattr(adapter.collate_fn.tokenizer, "name_or_path", "")),
        }
    if isinstance(adapter, ImageAdapter):
        prep = adapter.preprocessing
        return {
            "kind": "image",
            "preprocessing": {
                "input_size": int(prep.input_size),
                "resize_size": None if prep.resize_size is None else int(prep.resize_size),
                "mean": _floats(prep.mean),
                "std": _floats(prep.std),
                "interpolation": prep.interpolation,
                "fixed_size": bool(prep.fixed_size),
            },
        }
    raise ValueError(f"save_pretrained does not know how to store a {type(adapter).__name__}.")


def _restore_adapter(adapter, state: dict):
    from sklearn.preprocessing import StandardScaler

    from ._registry import ImagePreprocessing

    if state["kind"] != adapter.modality:
        raise ValueError(f"adapter state for {state['kind']!r}, but the backbone takes {adapter.modality}")
    if state["kind"] == "tabular":
        scaler = StandardScaler()
        scaler.mean_ = np.asarray(state["mean"], dtype=np.float64)
        scaler.scale_ = np.asarray(state["scale"], dtype=np.float64)
        scaler.var_ = np.asarray(state["var"], dtype=np.float64)
        scaler.n_samples_seen_ = np.asarray(state["n_samples_seen"])
        if scaler.n_samples_seen_.ndim == 0:
            scaler.n_samples_seen_ = scaler.n_samples_seen_.item()
        scaler.n_features_in_ = int(state["n_features_in"])
        adapter.scaler_ = scaler
        adapter.exponent_ = None if state["exponent"] is None else np.asarray(state["exponent"], dtype=np.int32)
    elif state["kind"] == "text":
        adapter.collate_fn.max_length = int(state["max_length"])
        adapter.pooling = state["pooling"]
        # Files written before long_text existed truncated.
        adapter.collate_fn.long_text = state.get("long_text", "truncate")
        adapter.chunk_pooling = state.get("chunk_pooling", "mean")
    else:
        prep = dict(state["preprocessing"])
        prep["mean"], prep["std"] = tuple(prep["mean"]), tuple(prep["std"])
        adapter.preprocessing = ImagePreprocessing(**prep)
    return adapter


def _fitted_attributes(estimator) -> dict:
    fitted = {"n_outputs_": int(estimator.n_outputs_)}
    if hasattr(estimator, "classes_"):
        fitted["classes_"] = _encode_labels(estimator.classes_, "the class labels (classes_)")
    for name in ("target_mean_", "target_scale_", "_target_multiplier"):
        if hasattr(estimator, name):
            fitted[name] = _floats(getattr(estimator, name))
    if hasattr(estimator, "_y_ndim"):
        fitted["_y_ndim"] = int(estimator._y_ndim)
    if getattr(estimator, "_multilabel", False):
        # What makes predict_proba sigmoids and predict an indicator matrix of y's dtype.
        fitted["_multilabel"] = True
        fitted["_indicator_dtype"] = np.dtype(estimator._indicator_dtype).str
    if hasattr(estimator, "n_features_in_"):
        fitted["n_features_in_"] = int(estimator.n_features_in_)
    if hasattr(estimator, "feature_names_in_"):
        fitted["feature_names_in_"] = _encode_labels(estimator.feature_names_in_, "the feature names")
    return fitted


def _indicator_dtype(value) -> np.dtype:
    dtype = np.dtype(str(value))
    if dtype.kind not in "biuf":
        raise ValueError(f"_indicator_dtype {value!r} is not a boolean or numeric dtype")
    return dtype


def _restore_fitted(data: dict) -> dict:
    fitted = {"n_outputs_": int(data["n_outputs_"])}
    for name, value in data.items():
        if name in ("classes_", "feature_names_in_"):
            labels = _decode_labels(value)
            fitted[name] = labels.astype(object) if name == "feature_names_in_" else labels
        elif name in ("target_mean_", "target_scale_", "_target_multiplier"):
            fitted[name] = np.asarray(value, dtype=np.float64)
        elif name in ("_y_ndim", "n_features_in_"):
            fitted[name] = int(value)
        elif name == "_multilabel":
            fitted[name] = bool(value)
        elif name == "_indicator_dtype":
            fitted[name] = _indicator_dtype(value)
        elif name != "n_outputs_":
            raise ValueError(f"unknown fitted attribute {name!r}")
    return fitted


# ------------------------------------------------------------------ save
def _check_savable(estimator) -> None:
    from sklearn.utils.validation import check_is_fitted

    from ._fusion import is_fused

    check_is_fitted(estimator)
    what = type(estimator).__name__
    if is_fused(estimator.backbone):
        raise ValueError(
            f"save_pretrained does not support fused models (several backbones) yet; pickle or joblib this "
            f"{what} instead."
        )
    if isinstance(estimator.backbone, nn.Module):
        raise ValueError(
            f"save_pretrained needs backbone= a registered backbone name; this {what} was given a "
            f"{type(estimator.backbone).__name__} module, which a model file can't rebuild without running its "
            "code. Pickle or joblib the estimator instead, or register the module as a backbone in a plugin."
        )
    if not isinstance(estimator.backbone, str):
        raise ValueError(
            f"save_pretrained needs backbone= a registered backbone name; this {what} reuses a fitted "
            f"{type(estimator.backbone).__name__}'s backbone, which model files don't support yet. Pickle or "
            "joblib the estimator instead."
        )
    if estimator.init is not None:
        raise ValueError(
            f"save_pretrained can't store init= (a fitted {type(estimator.init).__name__}); pickle or joblib the "
            "estimator instead."
        )


def save_pretrained(estimator, path, *, overwrite: bool = False) -> Path:
    """Write ``estimator`` to the directory ``path``: ``config.json`` and ``model.safetensors``.

    Raises ``ValueError`` for what JSON can't hold (a module backbone, a callable
    augment, object labels...) and ``FileExistsError`` when ``path`` holds files and
    ``overwrite`` is False.
    """
    from safetensors.torch import save_file

    from . import __version__

    _check_savable(estimator)
    params = {name: _encode(value, name) for name, value in estimator.get_params(deep=False).items()}
    fitted = _fitted_attributes(estimator)
    spec = estimator.spec_
    module = estimator.net_.module_
    module = getattr(module, "_orig_mod", module)  # compiled
    stores_backbone = _stores_backbone(estimator)
    state = module.state_dict() if stores_backbone else _small_state(module, estimator.strategy)
    # Copies on the CPU, sharing no memory (tied weights): safetensors refuses shared tensors.
    tensors = {name: t.detach().to("cpu", copy=True).contiguous() for name, t in state.items()}
    pretrained = None
    if not stores_backbone:
        pretrained = {
            "fingerprint": _pretrained_fingerprint(module.backbone, estimator.strategy).hex(),
            "source": spec.weights.source if spec.weights is not None else "",
        }
    config = {
        "format": "sktransfer-model",
        "format_version": FORMAT_VERSION,
        "sktransfer_version": __version__,
        "estimator": type(estimator).__name__,
        "params": params,
        "fitted": fitted,
        "backbone": {
            "name": spec.name,
            "modality": spec.modality,
            "plugin": spec.plugin,
            "distribution": spec.distribution,
            "distribution_version": _distribution_version(spec.distribution),
            "feature_dim": int(module.head.in_features),
            "stores_weights": stores_backbone,
            "pretrained_weights": pretrained,
        },
        "layers": None if estimator.layers_ is None else list(estimator.layers_),
        "adapter": _adapter_state(estimator.adapter_),
        "files": {},
    }
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} exists and is not a directory; save_pretrained writes a directory.")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise FileExistsError(f"{path} already holds files; pass overwrite=True to replace the model there.")
    path.mkdir(parents=True, exist_ok=True)
    # Written to temporary names, then renamed: config.json, last, marks a complete model.
    weights_tmp, config_tmp = path / (WEIGHTS + ".tmp"), path / (CONFIG + ".tmp")
    try:
        save_file(tensors, str(weights_tmp), metadata={"format": "pt"})
        config["files"][WEIGHTS] = {"sha256": _sha256(weights_tmp), "bytes": weights_tmp.stat().st_size}
        config["checksum"] = _config_checksum(config)
        config_tmp.write_text(json.dumps(config, indent=2, sort_keys=True, allow_nan=False), encoding="utf-8")
        os.replace(weights_tmp, path / WEIGHTS)
        os.replace(config_tmp, path / CONFIG)
    finally:
        for tmp in (weights_tmp, config_tmp):
            tmp.unlink(missing_ok=True)
    return path


# ------------------------------------------------------------------ load
def _estimator_classes() -> dict:
    from ._classes import TransferClassifier, TransferRegressor

    return {"TransferClassifier": TransferClassifier, "TransferRegressor": TransferRegressor}


def _read_config(path: Path) -> dict:
    from . import __version__

    config_path = path / CONFIG
    if not config_path.is_file():
        raise ModelFileError(f"{config_path} is missing: {path} is not a model directory written by save_pretrained.")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{config_path} is not valid JSON ({exc}); the file is damaged. Save the model again.")
    if not isinstance(config, dict) or config.get("format") != "sktransfer-model":
        raise ModelFileError(f"{config_path} is not an sktransfer model config.")
    version = config.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(
            f"{config_path} has model format version {version!r}, newer than this sktransfer ({__version__}) "
            f"reads ({FORMAT_VERSION}). Upgrade sktransfer to load it."
        )
    saved = str(config.get("sktransfer_version", ""))
    if _version_tuple(saved) > _version_tuple(__version__):
        raise ModelFileError(
            f"{config_path} was written by sktransfer {saved}, newer than this one ({__version__}). "
            "Upgrade sktransfer to load it."
        )
    if config.get("checksum") != _config_checksum(config):
        raise ModelFileError(
            f"{config_path} does not match its checksum: it was edited or damaged after save_pretrained wrote it. "
            "Save the model again."
        )
    return config


def _read_tensors(path: Path, config: dict) -> dict:
    from safetensors.torch import load_file

    weights_path = path / WEIGHTS
    expected = (config.get("files") or {}).get(WEIGHTS) or {}
    if not weights_path.is_file():
        raise ModelFileError(f"{weights_path} is missing; copy the whole model directory.")
    size = weights_path.stat().st_size
    if size != expected.get("bytes") or _sha256(weights_path) != expected.get("sha256"):
        raise ModelFileError(
            f"{weights_path} does not match the checksum in {path / CONFIG} ({size} bytes, "
            f"{expected.get('bytes')} expected): it was truncated, edited or replaced. Save the model again."
        )
    try:
        return load_file(str(weights_path), device="cpu")
    except Exception as exc:
        raise ModelFileError(f"{weights_path} is not a readable safetensors file: {exc}") from None


def _resolve_spec(config: dict, config_path: Path):
    from ._registry import get_spec

    saved = config["backbone"]
    try:
        spec = get_spec(saved["name"])
    except ValueError as exc:
        raise ModelFileError(
            f"{config_path} needs the backbone {saved['name']!r} from plugin {saved.get('plugin') or '?'} "
            f"(distribution {saved.get('distribution') or '?'} {saved.get('distribution_version') or ''}), which "
            f"is not available here: {exc} Install that plugin to load this model."
        ) from None
    if spec.modality != saved["modality"]:
        raise ModelFileError(
            f"{config_path}: backbone {spec.name!r} takes {spec.modality} here, but the model was saved with a "
            f"{saved['modality']} backbone of that name (plugin {saved.get('plugin')})."
        )
    now = _distribution_version(spec.distribution)
    if spec.distribution != saved.get("distribution") or now != saved.get("distribution_version"):
        warnings.warn(
            f"{config_path} was saved with backbone {spec.name!r} from {saved.get('distribution')} "
            f"{saved.get('distribution_version')}; here it comes from {spec.distribution} {now}. Predictions "
            "may differ if the plugin changed how it builds or feeds the backbone.",
            UserWarning,
            stacklevel=3,
        )
    return spec


def load(path, *, device="auto"):
    """Rebuild an estimator written by :meth:`save_pretrained` (never unpickles).

    Parameters
    ----------
    path : str or os.PathLike
        The model directory.
    device : str or torch.device, default="auto"
        Where the model predicts: ``"auto"`` picks CUDA when available. The
        estimator's ``device`` parameter stays as it was saved (it applies to refits).
    """
    from ._backbone_cache import build_backbone
    from ._feature_cache import backbone_fingerprint, fingerprint_module, get_store
    from ._module import TransferModule
    from ._net import fast_path
    from ._preflight import check_device, resolve_device

    path = Path(path)
    config_path = path / CONFIG
    config = _read_config(path)
    tensors = _read_tensors(path, config)
    try:
        cls = _estimator_classes()[config["estimator"]]
        params = {name: _decode(value) for name, value in config["params"].items()}
        estimator = cls(**params)
        estimator._validate_params()
        if not isinstance(estimator.backbone, str):
            raise ValueError("backbone is not a name")
        fitted = _restore_fitted(config["fitted"])
        saved_backbone = config["backbone"]
        feature_dim = int(saved_backbone["feature_dim"])
        stores_backbone = bool(saved_backbone["stores_weights"])
        layers = config["layers"]
    except Exception as exc:  # a hand-made config that passed the checksum
        raise ModelFileError(f"{config_path} does not describe a model this sktransfer can rebuild: {exc!r}") from None
    spec = _resolve_spec(config, config_path)
    check_device(device)
    device = resolve_device(device)
    adapter = _restore_adapter(estimator._build_adapter(spec, None), config["adapter"])
    stages = estimator._layers(spec, None)
    if (None if stages is None else list(stages)) != layers:
        raise ModelFileError(f"{config_path}: the backbone's stages {stages} differ from the saved {layers}.")
    with torch.random.fork_rng(devices=[]):
        if stores_backbone:
            backbone = spec.build(pretrained=False)  # every tensor comes from the file
            weights = None
        else:
            # LoRA adapters go into a copy of their own, never into the shared frozen one.
            backbone, weights = build_backbone(spec, True, None if estimator.strategy == "lora" else device)
            expected = (saved_backbone.get("pretrained_weights") or {}).get("fingerprint")
            if weights.hex() != expected:
                raise ModelFileError(
                    f"{config_path} was saved on the pretrained weights of {spec.name!r} with fingerprint "
                    f"{expected}, but the weights on this machine hash to {weights.hex()}: they changed since. "
                    "Restore the original weights, or refit the model."
                )
        module = TransferModule(backbone, feature_dim, fitted["n_outputs_"], adapter.pooling, stages,
                                spec.stage_outputs, chunk_pooling=adapter.chunk_pooling)
    try:  # loading also materialises lazy layers (the "mlp" backbone), before freeze touches them
        if stores_backbone and estimator.strategy == "lora":
            # The base weights first (they materialise lazy layers), then the adapters over them.
            from ._lora import base_name, is_lora_name

            module.load_state_dict({base_name(k): v for k, v in tensors.items() if not is_lora_name(k)}, strict=True)
        estimator._add_adapters(module, spec)  # strategy="lora": the same adapters, at zero, then loaded
        if stores_backbone:
            module.load_state_dict(tensors, strict=True)
        else:
            expected = set(_small_state(module, estimator.strategy))
            if set(tensors) != expected:
                raise ValueError(
                    f"unexpected tensors {sorted(set(tensors) - expected)[:5]}, missing {sorted(expected - set(tensors))[:5]}"
                    + (" (the backbone's lora_targets changed since the model was saved?)"
                       if estimator.strategy == "lora" else "")
                )
            module.load_state_dict(tensors, strict=False)
    except (RuntimeError, ValueError) as exc:
        raise ModelFileError(f"{path / WEIGHTS} does not fit the model in {config_path}: {exc}") from None
    estimator._freeze(module, spec, stages)
    fast = fast_path(device, estimator.precision, spec.modality)
    module.channels_last = fast.channels_last
    if fast.channels_last:
        module.to(memory_format=torch.channels_last)
    on_features = estimator.strategy == "head" and estimator.augment is None
    net = estimator._build_net(module, adapter, None, estimator._seed(), device, on_features, fast, fitted)
    net.initialize()
    fingerprint = None
    if on_features and adapter.shares_features and get_store(estimator.feature_cache) is not None:
        fingerprint = backbone_fingerprint(
            spec, weights or fingerprint_module(module.backbone), *adapter.fingerprint_parts()
        )
    estimator._set_fitted(spec, adapter, net, device, fast, fingerprint, None, module.stages, fitted)
    return estimator
