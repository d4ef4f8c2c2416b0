"""sktransfer: transfer learning as scikit-learn estimators."""

from ._classes import TransferClassifier, TransferRegressor
from .hookspecs import hookimpl
from .registry import list_backbones

__version__ = "0.1.0"

__all__ = sorted(["TransferClassifier", "TransferRegressor", "hookimpl", "list_backbones"])
