"""sktransfer: transfer learning as scikit-learn estimators.

Estimators, the backbone registry and the types a plugin author needs are public
here; every other module of the package is private (``sktransfer._*``).

The public names are imported on first use (PEP 562 ``__getattr__``): ``import
sktransfer`` imports neither torch nor scikit-learn, so the command line's ``--help``
and tools that need no model start at once, and the package imports where torch is
not installed.
"""

import importlib as _importlib

from sktransfer import _legacy_paths
from sktransfer._version import __version__

_legacy_paths.install()  # pickles written before the layered package name the old module paths

#: Public name -> the module that defines it, imported when the name is first used.
_LAZY_NAMES = {
    "Branch": "sktransfer._build.fusion",
    "clear_caches": "sktransfer._caches",
    "TransferClassifier": "sktransfer._estimators.classes",
    "TransferRegressor": "sktransfer._estimators.classes",
    "TransferEmbedder": "sktransfer._estimators.embedder",
    "load": "sktransfer._estimators.loading",
    "FINAL_FEATURES": "sktransfer._spec.stages",
    "FsspecFeatureStore": "sktransfer._features.fsspec_store",
    "FeatureStore": "sktransfer._features.protocol",
    "DiskFeatureStore": "sktransfer._features.stores",
    "MemoryFeatureStore": "sktransfer._features.stores",
    "lora_targets_attention": "sktransfer._nn.lora",
    "lora_targets_linear_and_conv": "sktransfer._nn.lora",
    "export_onnx": "sktransfer._onnx.export",
    "load_onnx": "sktransfer._onnx.predictor",
    "IMAGENET_MEAN": "sktransfer._spec.registry",
    "IMAGENET_STD": "sktransfer._spec.registry",
    "BackboneSpec": "sktransfer._spec.registry",
    "ImagePreprocessing": "sktransfer._spec.registry",
    "TextPreprocessing": "sktransfer._spec.registry",
    "Weights": "sktransfer._spec.registry",
    "get_spec": "sktransfer._spec.registry",
    "list_backbones": "sktransfer._spec.registry",
    "list_stages": "sktransfer._spec.registry",
    "hookimpl": "sktransfer.hookspecs",
}

#: Public submodules: ``sktransfer.report`` works after a bare ``import sktransfer``, as
#: it did when the eager imports loaded them on the way.
_SUBMODULES = ("exceptions", "hookspecs", "mlflow", "plugins", "report", "testing")

# A literal list, so that static tools read it; tests check it names every lazy name.
__all__ = [  # noqa: RUF022 - plain sorted() order, which tests/test_registry_stages.py checks
    "BackboneSpec",
    "Branch",
    "DiskFeatureStore",
    "FINAL_FEATURES",
    "FeatureStore",
    "FsspecFeatureStore",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImagePreprocessing",
    "MemoryFeatureStore",
    "TextPreprocessing",
    "TransferClassifier",
    "TransferEmbedder",
    "TransferRegressor",
    "Weights",
    "clear_caches",
    "export_onnx",
    "get_spec",
    "hookimpl",
    "list_backbones",
    "list_stages",
    "load",
    "load_onnx",
    "lora_targets_attention",
    "lora_targets_linear_and_conv",
]


def __getattr__(name: str):
    if name in _LAZY_NAMES:
        value = getattr(_importlib.import_module(_LAZY_NAMES[name]), name)
    elif name in _SUBMODULES:
        value = _importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # the next access is a plain attribute: no second lookup
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))
