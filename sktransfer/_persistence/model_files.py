"""Model files: a fitted estimator as a directory that loading never unpickles.

``save_pretrained(estimator, path)`` writes ``config.json`` (parameters, fitted
attributes, the backbone's name, plugin and version, the adapter's state) and
``model.safetensors`` (the module's tensors; for a frozen pretrained backbone, only the
head's, and with ``strategy="lora"`` the adapters', plus a fingerprint of the pretrained
weights that loading checks).
``load(path)`` rebuilds the estimator from those, without training.

A fused model (several backbones) describes each branch the same way in
``config.json``'s ``branches``; a frozen pretrained branch's backbone is referenced by
fingerprint, as a single one is. A :class:`~sktransfer.TransferEmbedder` is stored
likewise (its backbones are frozen: pretrained ones are only referenced).

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
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn as nn

from sktransfer.exceptions import ModelFileError

#: The newest format this module reads. Files a format-1 reader can rebuild (one
#: backbone, a classifier or regressor) are still written as format 1; fused models and
#: embedders are format 2, so that an older sktransfer says to upgrade.
FORMAT_VERSION = 2
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
    from sktransfer._estimators.fusion import Branch

    if isinstance(value, Branch):  # its parameters, never the object
        return {"branch": {k: _encode(v, f"{name}.{k}") for k, v in value.get_params(deep=False).items()}}
    if name == "feature_cache":  # a store object (FeatureStore): where rows live is the loading machine's choice
        raise ValueError(
            f"save_pretrained can't store feature_cache={value!r}: a store object is not a JSON value, and model "
            "files never hold pickled objects. Save with estimator.set_params(feature_cache='memory') (or a "
            "directory path), and give the loaded model its store with set_params(feature_cache=...)."
        )
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
        if set(value) == {"branch"} and isinstance(value["branch"], dict):
            from sktransfer._estimators.fusion import Branch

            # Branch's own __init__ takes the parameters: an unknown name raises TypeError.
            return Branch(**{k: _decode(v) for k, v in value["branch"].items()})
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
            from sktransfer._version import __version__

            return __version__
        return None


def _stores_backbone(owner, spec, frozen: bool) -> bool:
    """Whether a backbone's weights go into the file: all but frozen pretrained ones
    (``owner`` is the estimator, a fused model's branch view, or an embedder)."""
    return not (frozen and owner._is_pretrained(spec))


def _pretrained_fingerprint(backbone) -> bytes:
    """The fingerprint of the pretrained weights under a frozen backbone (with LoRA
    adapters: of its base weights, under their original names)."""
    from sktransfer._hashing import fingerprint_module
    from sktransfer._nn.lora import base_state, has_adapters

    return fingerprint_module(backbone, base_state(backbone) if has_adapters(backbone) else None)


def _backbone_record(spec, backbone, feature_dim: int, stores_weights: bool) -> dict:
    """What loading needs to find and check a backbone: its spec's name, plugin and
    version, its feature size, and for one not stored, its pretrained weights' fingerprint."""
    pretrained = None
    if not stores_weights:
        pretrained = {
            "fingerprint": _pretrained_fingerprint(backbone).hex(),
            "source": spec.weights.source if spec.weights is not None else "",
        }
    return {
        "name": spec.name,
        "modality": spec.modality,
        "plugin": spec.plugin,
        "distribution": spec.distribution,
        "distribution_version": _distribution_version(spec.distribution),
        "feature_dim": int(feature_dim),
        "stores_weights": bool(stores_weights),
        "pretrained_weights": pretrained,
    }


def _tensors(module, skipped: list[str], prefix: str = "") -> dict:
    """``module``'s tensors but those under the ``skipped`` prefixes (frozen pretrained
    backbones; their LoRA adapters are kept), named ``prefix + name``."""
    from sktransfer._nn.lora import is_lora_name

    # Copies on the CPU, sharing no memory (tied weights): safetensors refuses shared tensors.
    return {
        prefix + name: t.detach().to("cpu", copy=True).contiguous()
        for name, t in module.state_dict().items()
        if not name.startswith(tuple(skipped)) or is_lora_name(name)
    }


def _unwrapped(net):
    return getattr(net.module_, "_orig_mod", net.module_)  # compiled


def _adapter_state(adapter) -> dict:
    from sktransfer._inputs.image import ImageAdapter
    from sktransfer._inputs.tabular import TabularAdapter
    from sktransfer._inputs.text import TextAdapter

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

    from sktransfer._spec.registry import ImagePreprocessing

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


def _input_attributes(obj) -> dict:
    """scikit-learn's ``n_features_in_`` / ``feature_names_in_`` of ``obj``, where set."""
    inputs = {}
    if hasattr(obj, "n_features_in_"):
        inputs["n_features_in_"] = int(obj.n_features_in_)
    if hasattr(obj, "feature_names_in_"):
        inputs["feature_names_in_"] = _encode_labels(obj.feature_names_in_, "the feature names")
    return inputs


def _restore_inputs(obj, data: dict):
    """Set on ``obj`` what :func:`_input_attributes` stored."""
    for name, value in data.items():
        if name == "n_features_in_":
            obj.n_features_in_ = int(value)
        elif name == "feature_names_in_":
            obj.feature_names_in_ = _decode_labels(value).astype(object)
        else:
            raise ValueError(f"unknown input attribute {name!r}")
    return obj


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
    fitted.update(_input_attributes(estimator))
    return fitted


def _indicator_dtype(value) -> np.dtype:
    dtype = np.dtype(str(value))
    if dtype.kind not in "biuf":
        raise ValueError(f"_indicator_dtype {value!r} is not a boolean or numeric dtype")
    return dtype


def _restore_fitted(data: dict) -> dict:
    fitted = {"n_outputs_": int(data["n_outputs_"])}
    inputs = {name: data[name] for name in ("n_features_in_", "feature_names_in_") if name in data}
    fitted.update(vars(_restore_inputs(SimpleNamespace(), inputs)))
    for name, value in data.items():
        if name == "classes_":
            fitted[name] = _decode_labels(value)
        elif name in ("target_mean_", "target_scale_", "_target_multiplier"):
            fitted[name] = np.asarray(value, dtype=np.float64)
        elif name == "_y_ndim":
            fitted[name] = int(value)
        elif name == "_multilabel":
            fitted[name] = bool(value)
        elif name == "_indicator_dtype":
            fitted[name] = _indicator_dtype(value)
        elif name not in ("n_outputs_", *inputs):
            raise ValueError(f"unknown fitted attribute {name!r}")
    return fitted


# ------------------------------------------------------------------ save
def _check_backbone_name(backbone, what: str, where: str) -> None:
    """Model files rebuild backbones from the registry: a module or a fitted estimator can't be."""
    at = f" ({where})" if where else ""
    if isinstance(backbone, nn.Module):
        raise ValueError(
            f"save_pretrained needs backbone= a registered backbone name; this {what} was given a "
            f"{type(backbone).__name__} module{at}, which a model file can't rebuild without running its "
            "code. Pickle or joblib the estimator instead, or register the module as a backbone in a plugin."
        )
    if not isinstance(backbone, str):
        raise ValueError(
            f"save_pretrained needs backbone= a registered backbone name; this {what} reuses a fitted "
            f"{type(backbone).__name__}'s backbone{at}, which model files don't support yet. Pickle or "
            "joblib the estimator instead."
        )


def _check_savable(estimator) -> None:
    from sklearn.utils.validation import check_is_fitted

    from sktransfer._estimators.fusion import branch_table, is_fused

    check_is_fitted(estimator)
    what = type(estimator).__name__
    if is_fused(estimator.backbone):
        for name, _, branch in branch_table(estimator.backbone):
            _check_backbone_name(branch.backbone, what, f"branch {name!r}")
    else:
        _check_backbone_name(estimator.backbone, what, "")
    if getattr(estimator, "init", None) is not None:
        raise ValueError(
            f"save_pretrained can't store init= (a fitted {type(estimator.init).__name__}); pickle or joblib the "
            "estimator instead."
        )


def _single_part(estimator) -> tuple[dict, dict]:
    """``(config entries, tensors)`` of a one-backbone classifier or regressor."""
    spec = estimator.spec_
    module = _unwrapped(estimator.net_)
    # LoRA adapters are stored on their own (see _tensors); their base stays referenced.
    stores = _stores_backbone(estimator, spec, estimator.strategy in ("head", "lora"))
    part = {
        "backbone": _backbone_record(spec, module.backbone, module.head.in_features, stores),
        "layers": None if estimator.layers_ is None else list(estimator.layers_),
        "adapter": _adapter_state(estimator.adapter_),
    }
    return part, _tensors(module, [] if stores else ["backbone."])


def _fused_part(estimator) -> tuple[dict, dict]:
    """``(config entries, tensors)`` of a fused model: each branch as a one-backbone
    model is described, then the fusion; frozen pretrained branches' backbones are left
    out of the tensors."""
    from sktransfer._estimators.fusion import branch_table

    fused = _unwrapped(estimator.net_)
    inputs = estimator.adapter_
    records, skipped = [], []
    for (name, column, branch), fitted, dim in zip(branch_table(estimator.backbone), inputs.branches, fused.dims):
        view = estimator._branch_view(branch)
        module = fused.branches[fitted.key]
        stores = _stores_backbone(view, fitted.spec, view.strategy == "head")
        if not stores:
            skipped.append(f"branches.{fitted.key}.backbone.")
        records.append({
            "name": name,
            "column": column,
            "backbone": _backbone_record(fitted.spec, module.backbone, dim, stores),
            "layers": None if module.stages is None else list(module.stages),
            "adapter": _adapter_state(fitted.adapter),
            "inputs": _input_attributes(fitted.columns),
        })
    part = {"branches": records, "fusion": {"fusion": estimator.fusion, "mapped": bool(inputs.mapped)}}
    return part, _tensors(fused, skipped)


def _embedder_part(embedder, prefix: str = "") -> tuple[dict, dict]:
    """``(config entries, tensors)`` of a one-backbone embedder; its backbone is frozen,
    so only one without pretrained weights is stored."""
    spec = embedder.spec_
    stores = _stores_backbone(embedder, spec, True)
    part = {
        "backbone": _backbone_record(spec, embedder.module_.backbone, embedder.n_features_out_, stores),
        "layers": None if embedder.layers_ is None else list(embedder.layers_),
        "adapter": _adapter_state(embedder.adapter_),
        "widths": [int(w) for w in embedder._stage_widths],
        "name_prefix": embedder._name_prefix,
        "inputs": _input_attributes(embedder),
    }
    return part, _tensors(embedder.module_, [] if stores else ["backbone."], prefix)


def _embedders_part(embedder) -> tuple[dict, dict]:
    """``(config entries, tensors)`` of an embedder of several backbones: each child
    embedder as a one-backbone one, its tensors under ``b<i>.``."""
    records, tensors = [], {}
    for i, (name, column, child) in enumerate(embedder.branches_):
        record, child_tensors = _embedder_part(child, f"b{i}.")
        records.append({"name": name, "column": column, **record})
        tensors.update(child_tensors)
    part = {"branches": records, "inputs": _input_attributes(embedder),
            "n_features_out_": int(embedder.n_features_out_)}
    return part, tensors


def _write(path, config: dict, tensors: dict, overwrite: bool) -> Path:
    """Write ``model.safetensors`` and ``config.json`` (with the checksums) to ``path``."""
    from safetensors.torch import save_file

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
        config["files"] = {WEIGHTS: {"sha256": _sha256(weights_tmp), "bytes": weights_tmp.stat().st_size}}
        config["checksum"] = _config_checksum(config)
        config_tmp.write_text(json.dumps(config, indent=2, sort_keys=True, allow_nan=False), encoding="utf-8")
        os.replace(weights_tmp, path / WEIGHTS)
        os.replace(config_tmp, path / CONFIG)
    finally:
        for tmp in (weights_tmp, config_tmp):
            tmp.unlink(missing_ok=True)
    return path


def save_pretrained(estimator, path, *, overwrite: bool = False) -> Path:
    """Write ``estimator`` to the directory ``path``: ``config.json`` and ``model.safetensors``.

    Parameters
    ----------
    estimator : fitted TransferClassifier, TransferRegressor or TransferEmbedder
        One backbone or several (fused, or an embedder's branches), each a registered name.
    path : str or os.PathLike
        The directory to write.
    overwrite : bool, default=False
        Replace the files of a directory that holds some.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        For what JSON can't hold (a module backbone, a callable augment, object labels...).
    FileExistsError
        When ``path`` holds files and ``overwrite`` is False.
    """
    from sktransfer._estimators.embedder import TransferEmbedder
    from sktransfer._estimators.fusion import is_fused
    from sktransfer._version import __version__

    _check_savable(estimator)
    # An Accelerator is a handle on this run's processes, not a setting of the model: it
    # is left out, and the loaded estimator predicts (and refits) without one.
    params = {name: _encode(value, name) for name, value in estimator.get_params(deep=False).items()
              if name != "accelerator"}
    several = is_fused(estimator.backbone)
    if isinstance(estimator, TransferEmbedder):
        fitted = {}
        part, tensors = _embedders_part(estimator) if several else _embedder_part(estimator)
    else:
        fitted = _fitted_attributes(estimator)
        part, tensors = _fused_part(estimator) if several else _single_part(estimator)
    config = {
        "format": "sktransfer-model",
        # A format-1 reader rebuilds one-backbone classifiers and regressors only.
        "format_version": 2 if several or isinstance(estimator, TransferEmbedder) else 1,
        "sktransfer_version": __version__,
        "estimator": type(estimator).__name__,
        "params": params,
        "fitted": fitted,
        **part,
    }
    return _write(path, config, tensors, overwrite)


# ------------------------------------------------------------------ load
def _estimator_classes() -> dict:
    from sktransfer._estimators.classes import TransferClassifier, TransferRegressor
    from sktransfer._estimators.embedder import TransferEmbedder

    return {"TransferClassifier": TransferClassifier, "TransferRegressor": TransferRegressor,
            "TransferEmbedder": TransferEmbedder}


def _read_config(path: Path) -> dict:
    from sktransfer._version import __version__

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


def _resolve_spec(saved: dict, config_path: Path):
    """The spec of the saved backbone record ``saved``, from this machine's registry."""
    from sktransfer._spec.registry import get_spec

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
            stacklevel=4,
        )
    return spec


def _check_stages(owner, spec, saved, config_path: Path):
    """The stages ``owner``'s parameters give for ``spec``, which must be the saved ones."""
    stages = owner._layers(spec, None)
    if (None if stages is None else list(stages)) != saved:
        raise ModelFileError(f"{config_path}: the backbone's stages {stages} differ from the saved {saved}.")
    return stages


def _rebuild_backbone(spec, saved: dict, device, config_path: Path, shared: bool = True):
    """``(backbone, weights fingerprint)``: built empty when the file holds its tensors,
    else with the pretrained weights on this machine, which must hash as when saved.
    ``shared=False`` (LoRA, which injects adapters) gives a copy of its own instead of
    the read-only one frozen fits share."""
    from sktransfer._nn.backbone_cache import build_backbone

    if saved["stores_weights"]:
        return spec.build(pretrained=False), None  # every tensor comes from the file
    backbone, weights = build_backbone(spec, True, device if shared else None)
    expected = (saved.get("pretrained_weights") or {}).get("fingerprint")
    if weights is None or weights.hex() != expected:
        raise ModelFileError(
            f"{config_path} was saved on the pretrained weights of {spec.name!r} with fingerprint "
            f"{expected}, but the weights on this machine hash to {None if weights is None else weights.hex()}: "
            "they changed since. Restore the original weights, or refit the model."
        )
    return backbone, weights


def _load_tensors(module, tensors: dict, skipped: list[str], path: Path) -> None:
    """Load ``tensors`` into ``module``: every tensor of it but those under ``skipped``
    (frozen pretrained backbones, rebuilt from the registry), and nothing else. Loading
    also materialises lazy layers (the "mlp" backbone), so it comes before freezing."""
    from sktransfer._nn.lora import is_lora_name

    skipped = tuple(skipped)

    def referenced(name: str) -> bool:  # a pretrained weight rebuilt from the registry, not in the file
        return bool(skipped) and name.startswith(skipped) and not is_lora_name(name)

    try:
        # Checked before loading: a frozen pretrained backbone is shared with other fits.
        stray = sorted(name for name in tensors if referenced(name))
        if stray:
            raise ValueError(f"tensors {stray[:3]} of a backbone that the config says is not stored")
        missing, unexpected = module.load_state_dict(tensors, strict=False)
        missing = [name for name in missing if not referenced(name)]
        if missing or unexpected:
            raise ValueError(f"missing tensors {missing[:3]}, unexpected tensors {unexpected[:3]}")
    except (RuntimeError, ValueError) as exc:
        raise ModelFileError(f"{path / WEIGHTS} does not fit the model in {path / CONFIG}: {exc}") from None


def _decoded(config: dict, config_path: Path):
    """``(estimator, fitted attributes)`` from the config's class, parameters and fitted
    attributes, validated like ``fit`` validates them."""
    from sktransfer._estimators.fusion import branch_table, is_fused

    try:
        cls = _estimator_classes()[config["estimator"]]
        params = {name: _decode(value) for name, value in config["params"].items()}
        estimator = cls(**params)
        estimator._validate_params()
        table = branch_table(estimator.backbone) if is_fused(estimator.backbone) else None
        for _, _, branch in table or []:
            branch._validate_params()
        if not all(isinstance(backbone, str) for backbone in
                   ([branch.backbone for _, _, branch in table] if table else [estimator.backbone])):
            raise ValueError("a backbone is not a name")
        saved = [(b["name"], b["column"]) for b in config["branches"]] if "branches" in config else None
        if saved != (None if table is None else [(name, column) for name, column, _ in table]):
            raise ValueError("the branches differ from the backbone parameter")
        fitted = {} if cls.__name__ == "TransferEmbedder" else _restore_fitted(config["fitted"])
    except Exception as exc:  # a hand-made config that passed the checksum
        raise ModelFileError(f"{config_path} does not describe a model this sktransfer can rebuild: {exc!r}") from None
    return estimator, fitted


def load(path, *, device="auto"):
    """Rebuild an estimator written by :meth:`save_pretrained` (never unpickles).

    Parameters
    ----------
    path : str or os.PathLike
        The model directory.
    device : str or torch.device, default="auto"
        Where the model predicts: ``"auto"`` picks CUDA when available. The
        estimator's ``device`` parameter stays as it was saved (it applies to refits).

    Returns
    -------
    TransferClassifier, TransferRegressor or TransferEmbedder
        Fitted, predicting (or transforming) as the saved one did.
    """
    from sktransfer._training.devices import check_device, resolve_device

    path = Path(path)
    config = _read_config(path)
    tensors = _read_tensors(path, config)
    estimator, fitted = _decoded(config, path / CONFIG)
    check_device(device)
    device = resolve_device(device)
    try:
        if config["estimator"] == "TransferEmbedder":
            return _load_embedder(estimator, config, tensors, device, path)
        if "branches" in config:
            return _load_fused(estimator, config, tensors, fitted, device, path)
        return _load_single(estimator, config, tensors, fitted, device, path)
    except ModelFileError:
        raise
    except (KeyError, IndexError, TypeError, ValueError) as exc:  # a hand-made config that passed the checksum
        raise ModelFileError(
            f"{path / CONFIG} does not describe a model this sktransfer can rebuild: {exc!r}"
        ) from None


def _finish(estimator, module, adapter, spec, weights, device, fast, on_features, fitted, stages):
    """The skorch net around a rebuilt module, and the fitted state, set as ``fit`` sets it."""
    from sktransfer._features.stores import backbone_fingerprint, get_store
    from sktransfer._hashing import fingerprint_module

    net = estimator._build_net(module, adapter, None, estimator._seed(), device, on_features, fast, fitted)
    net.initialize()
    fingerprint = None
    if spec is not None and on_features and adapter.shares_features and get_store(estimator.feature_cache) is not None:
        fingerprint = backbone_fingerprint(
            spec, weights or fingerprint_module(module.backbone), *adapter.fingerprint_parts()
        )
    estimator._set_fitted(spec, adapter, net, device, fast, fingerprint, None, stages, fitted)
    return estimator


def _load_single(estimator, config, tensors, fitted, device, path):
    from sktransfer._nn.module import TransferModule
    from sktransfer._training.net import fast_path

    config_path = path / CONFIG
    saved = config["backbone"]
    spec = _resolve_spec(saved, config_path)
    adapter = _restore_adapter(estimator._build_adapter(spec, None), config["adapter"])
    stages = _check_stages(estimator, spec, config["layers"], config_path)
    with torch.random.fork_rng(devices=[]):
        backbone, weights = _rebuild_backbone(spec, saved, device, config_path, estimator.strategy != "lora")
        module = TransferModule(backbone, int(saved["feature_dim"]), fitted["n_outputs_"], adapter.pooling, stages,
                                spec.stage_outputs, chunk_pooling=adapter.chunk_pooling)
        estimator._add_adapters(module, spec)  # strategy="lora": the same adapters, then their saved values
    _load_tensors(module, tensors, [] if saved["stores_weights"] else ["backbone."], path)
    estimator._freeze(module, spec, stages)
    fast = fast_path(device, estimator.precision, spec.modality)
    module.channels_last = fast.channels_last
    if fast.channels_last:
        module.to(memory_format=torch.channels_last)
    on_features = estimator.strategy == "head" and estimator.augment is None
    return _finish(estimator, module, adapter, spec, weights, device, fast, on_features, fitted, module.stages)


def _load_fused(estimator, config, tensors, fitted, device, path):
    """A fused model: each branch rebuilt as fit builds it (its view of the estimator's
    settings, adapter, stages, freezing, placement), its tensors from the file."""
    from sktransfer._estimators.fusion import branch_table
    from sktransfer._inputs.fused import BranchColumns, FittedBranch
    from sktransfer._nn.fusion_module import FusionModule
    from sktransfer._nn.module import TransferModule

    config_path = path / CONFIG
    table = branch_table(estimator.backbone)
    try:
        estimator._check_fusion_params(table)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{config_path} does not describe a model this sktransfer can rebuild: {exc}") from None
    parts, modules, skipped = [], {}, []
    with torch.random.fork_rng(devices=[]):
        for i, ((name, column, branch), record) in enumerate(zip(table, config["branches"])):
            saved = record["backbone"]
            spec = _resolve_spec(saved, config_path)
            view, adapter = estimator._branch_adapter(branch, spec, None)
            adapter = _restore_adapter(adapter, record["adapter"])
            stages = _check_stages(view, spec, record["layers"], config_path)
            backbone, weights = _rebuild_backbone(spec, saved, device, config_path)
            key = f"b{i}"  # as fit names them
            modules[key] = TransferModule(backbone, int(saved["feature_dim"]), 1, adapter.pooling, stages,
                                          spec.stage_outputs, chunk_pooling=adapter.chunk_pooling)
            modules[key].head = nn.Identity()
            view._add_adapters(modules[key], spec)
            if not saved["stores_weights"]:
                skipped.append(f"branches.{key}.backbone.")
            columns = _restore_inputs(BranchColumns(), record["inputs"])
            parts.append((view, (name, key, column, spec, adapter, columns), weights))
        dims = [int(record["backbone"]["feature_dim"]) for record in config["branches"]]
        fused = FusionModule(modules, dims, fitted["n_outputs_"], estimator.fusion)
    _load_tensors(fused, tensors, skipped, path)
    fast = estimator._fused_fast_path(device, [spec.modality for _, (_, _, _, spec, _, _), _ in parts])
    branches = []
    for view, (name, key, column, spec, adapter, columns), weights in parts:
        module = modules[key]
        view._freeze(module, spec, module.stages)
        frozen, fingerprint = view._place_branch(module, spec, adapter, weights, device, fast)
        branches.append(FittedBranch(name, key, column, spec, adapter, columns, frozen, fingerprint))
    inputs = estimator._fused_input(fused, branches, bool(config["fusion"]["mapped"]))
    on_features = all(b.frozen for b in branches)
    return _finish(estimator, fused, inputs, None, None, device, fast, on_features, fitted, None)


def _load_embedder(embedder, config, tensors, device, path):
    """An embedder: one backbone, or one child embedder per branch (tensors under ``b<i>.``)."""
    from sktransfer._estimators.fusion import branch_table

    if "branches" not in config:
        return _rebuild_embedder(embedder, config, tensors, device, path)
    children = []
    for i, ((name, column, branch), record) in enumerate(zip(branch_table(embedder.backbone), config["branches"])):
        prefix = f"b{i}."
        own = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        children.append((name, column, _rebuild_embedder(embedder._branch_child(branch), record, own, device, path)))
    stray = sorted(set(tensors) - {f"b{i}.{k}" for i, (_, _, c) in enumerate(children) for k in c.module_.state_dict()})
    if stray:
        raise ModelFileError(f"{path / WEIGHTS} holds tensors {stray[:3]} that no branch in {path / CONFIG} has.")
    embedder.branches_ = children
    embedder.n_features_out_ = sum(child.n_features_out_ for _, _, child in children)
    _restore_inputs(embedder, config["inputs"])
    return embedder


def _rebuild_embedder(embedder, record, tensors, device, path):
    """A one-backbone embedder from its record, by the steps its ``fit`` takes."""
    from sktransfer._training.net import fast_path

    config_path = path / CONFIG
    saved = record["backbone"]
    spec = _resolve_spec(saved, config_path)
    adapter = _restore_adapter(embedder._build_adapter(spec, None), record["adapter"])
    stages = _check_stages(embedder, spec, record["layers"], config_path)
    fast = fast_path(device, embedder.precision, spec.modality)
    with torch.random.fork_rng(devices=[]):
        backbone, weights = _rebuild_backbone(spec, saved, device, config_path)
        module = embedder._headless_module(backbone, adapter, stages, spec)
    _load_tensors(module, tensors, [] if saved["stores_weights"] else ["backbone."], path)
    embedder._place_module(module, device, fast)
    widths = [int(w) for w in record["widths"]]
    embedder._set_fitted(spec, adapter, module, stages, device, fast, weights, widths, str(record["name_prefix"]))
    _restore_inputs(embedder, record["inputs"])
    return embedder
