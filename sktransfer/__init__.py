"""sktransfer: transfer learning as scikit-learn estimators.

Estimators, the backbone registry and the types a plugin author needs are public
here; every other module of the package is private (``sktransfer._*``).
"""

from ._classes import TransferClassifier, TransferRegressor
from ._embedder import TransferEmbedder
from ._feature_cache import DiskFeatureStore, MemoryFeatureStore
from ._feature_store import FeatureStore
from ._fsspec_store import FsspecFeatureStore
from ._fusion import Branch
from ._lora import lora_targets_attention, lora_targets_linear_and_conv
from ._model_files import load
from ._registry import (
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
from .hookspecs import hookimpl

__version__ = "0.1.0"

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
        "get_spec",
        "hookimpl",
        "list_backbones",
        "list_stages",
        "load",
        "lora_targets_attention",
        "lora_targets_linear_and_conv",
    ]
)
