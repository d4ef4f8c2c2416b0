"""sktransfer: transfer learning as scikit-learn estimators.

Estimators, the backbone registry and the types a plugin author needs are public
here; every other module of the package is private (``sktransfer._*``).
"""

from sktransfer import _legacy_paths
from sktransfer._build.fusion import Branch
from sktransfer._caches import clear_caches
from sktransfer._estimators.classes import TransferClassifier, TransferRegressor
from sktransfer._estimators.embedder import TransferEmbedder
from sktransfer._estimators.loading import load
from sktransfer._features.fsspec_store import FsspecFeatureStore
from sktransfer._features.protocol import FeatureStore
from sktransfer._features.stores import DiskFeatureStore, MemoryFeatureStore
from sktransfer._nn.lora import lora_targets_attention, lora_targets_linear_and_conv
from sktransfer._onnx.export import export_onnx
from sktransfer._onnx.predictor import load_onnx
from sktransfer._spec.registry import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    BackboneSpec,
    ImagePreprocessing,
    TextPreprocessing,
    Weights,
    get_spec,
    list_backbones,
    list_stages,
)
from sktransfer._version import __version__

_legacy_paths.install()  # pickles written before the layered package name the old module paths
from sktransfer.hookspecs import hookimpl

__all__ = sorted(
    [
        "BackboneSpec",
        "Branch",
        "DiskFeatureStore",
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
)
