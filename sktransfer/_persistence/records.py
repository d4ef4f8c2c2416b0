"""What a model file records of each part: a backbone (found again by name, checked by
fingerprint), the module's tensors, the input attributes and the target encoding."""

from __future__ import annotations

import importlib.metadata
from types import SimpleNamespace

import numpy as np

from sktransfer._hashing import fingerprint_module
from sktransfer._nn.lora import base_state, has_adapters, is_lora_name
from sktransfer._persistence.values import decode_labels, encode_labels, floats
from sktransfer._version import __version__


def distribution_version(distribution: str):
    if not distribution:
        return None
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        if distribution == "sktransfer":
            return __version__
        return None


def _pretrained_fingerprint(backbone) -> bytes:
    """The fingerprint of the pretrained weights under a frozen backbone (with LoRA
    adapters: of its base weights, under their original names)."""
    return fingerprint_module(backbone, base_state(backbone) if has_adapters(backbone) else None)


def backbone_record(spec, backbone, feature_dim: int, stores_weights: bool) -> dict:
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
        "distribution_version": distribution_version(spec.distribution),
        "feature_dim": int(feature_dim),
        "stores_weights": bool(stores_weights),
        "pretrained_weights": pretrained,
    }


def module_tensors(module, skipped: list[str], prefix: str = "") -> dict:
    """``module``'s tensors but those under the ``skipped`` prefixes (frozen pretrained
    backbones; their LoRA adapters are kept), named ``prefix + name``."""
    # Copies on the CPU, sharing no memory (tied weights): safetensors refuses shared tensors.
    return {
        prefix + name: t.detach().to("cpu", copy=True).contiguous()
        for name, t in module.state_dict().items()
        if not name.startswith(tuple(skipped)) or is_lora_name(name)
    }


def input_attributes(obj) -> dict:
    """scikit-learn's ``n_features_in_`` / ``feature_names_in_`` of ``obj``, where set."""
    inputs = {}
    if hasattr(obj, "n_features_in_"):
        inputs["n_features_in_"] = int(obj.n_features_in_)
    if hasattr(obj, "feature_names_in_"):
        inputs["feature_names_in_"] = encode_labels(obj.feature_names_in_, "the feature names")
    return inputs


def restore_inputs(obj, data: dict):
    """Set on ``obj`` what :func:`_input_attributes` stored."""
    for name, value in data.items():
        if name == "n_features_in_":
            obj.n_features_in_ = int(value)
        elif name == "feature_names_in_":
            obj.feature_names_in_ = decode_labels(value).astype(object)
        else:
            raise ValueError(f"unknown input attribute {name!r}")
    return obj


def fitted_attributes(declared: dict) -> dict:
    """The target encoding an estimator declared (``__sktransfer_state__()["fitted"]``), as JSON."""
    fitted = {"n_outputs_": int(declared["n_outputs_"])}
    if "classes_" in declared:
        fitted["classes_"] = encode_labels(declared["classes_"], "the class labels (classes_)")
    for name in ("target_mean_", "target_scale_", "_target_multiplier"):
        if name in declared:
            fitted[name] = floats(declared[name])
    if "_y_ndim" in declared:
        fitted["_y_ndim"] = int(declared["_y_ndim"])
    if declared.get("_multilabel", False):
        # What makes predict_proba sigmoids and predict an indicator matrix of y's dtype.
        fitted["_multilabel"] = True
        fitted["_indicator_dtype"] = np.dtype(declared["_indicator_dtype"]).str
    fitted.update(input_attributes(SimpleNamespace(**declared)))
    return fitted


def _indicator_dtype(value) -> np.dtype:
    dtype = np.dtype(str(value))
    if dtype.kind not in "biuf":
        raise ValueError(f"_indicator_dtype {value!r} is not a boolean or numeric dtype")
    return dtype


def restore_fitted(data: dict) -> dict:
    fitted = {"n_outputs_": int(data["n_outputs_"])}
    inputs = {name: data[name] for name in ("n_features_in_", "feature_names_in_") if name in data}
    fitted.update(vars(restore_inputs(SimpleNamespace(), inputs)))
    for name, value in data.items():
        if name == "classes_":
            fitted[name] = decode_labels(value)
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
