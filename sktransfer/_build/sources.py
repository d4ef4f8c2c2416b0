"""Fitted models as knowledge sources: ``backbone=`` a fitted estimator, and ``init=``.

scikit-learn's ``clone`` (in ``GridSearchCV``, ``cross_val_score``...) clones every
estimator parameter, which would hand us an unfitted copy of the source: such a
source must be wrapped in :class:`sklearn.frozen.FrozenEstimator`, whose clone is
itself.  The errors here say so.
"""

from __future__ import annotations

import copy
import dataclasses
import functools

import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from sktransfer._spec.registry import get_spec

_FROZEN_HINT = (
    "Fit it first. Inside GridSearchCV, cross_val_score or clone(), which refit clones of every "
    "parameter, wrap the fitted model in sklearn.frozen.FrozenEstimator so that it stays fitted."
)


def unwrap_frozen(estimator):
    """The estimator inside a ``FrozenEstimator``, or ``estimator`` itself."""
    from sklearn.frozen import FrozenEstimator

    return estimator.estimator if isinstance(estimator, FrozenEstimator) else estimator


def check_fitted_source(estimator, parameter: str):
    """Raise a clear error unless ``estimator`` (maybe frozen) is fitted."""
    try:
        check_is_fitted(unwrap_frozen(estimator))
    except NotFittedError:
        raise NotFittedError(
            f"{parameter}={type(unwrap_frozen(estimator)).__name__}(...) is not fitted. {_FROZEN_HINT}"
        ) from None


def fitted_transfer_source(backbone):
    """The fitted TransferClassifier/TransferRegressor behind ``backbone=``."""
    source = unwrap_frozen(backbone)
    # TransferClassifier and TransferRegressor say so with a class attribute: this layer
    # sits below the estimators and can't import them.
    if not getattr(type(source), "reusable_as_backbone", False):
        raise TypeError(
            f"backbone must be a backbone name, a torch.nn.Module, or a fitted TransferClassifier / "
            f"TransferRegressor (optionally in sklearn.frozen.FrozenEstimator); got {type(source).__name__}. "
            "To start from another model's predictions, pass it as init= instead."
        )
    check_fitted_source(backbone, "backbone")
    return source


def source_module(source):
    """The fitted source's TransferModule (through ``torch.compile``'s wrapper)."""
    module = source.net_.module_
    return getattr(module, "_orig_mod", module)


def source_spec(source):
    """The spec of a fitted source's fine-tuned backbone: its name, stages and blocks,
    building a copy of its trained weights."""
    spec = source.spec_
    return dataclasses.replace(
        spec,
        name=f"{spec.name} (fine-tuned by {type(source).__name__})",
        build=functools.partial(_build_copy, source_module(source).backbone),
    )


def _build_copy(module, pretrained: bool = True):
    # The source is never modified: every fit starts from a CPU copy of its backbone,
    # with a LoRA source's adapters folded into its weights (a plain backbone again).
    from sktransfer._nn.lora import merge_adapters

    return merge_adapters(copy.deepcopy(module).cpu())


def modality_of(backbone) -> str | None:
    """The modality of a ``backbone`` parameter, without raising (tags must not fail):
    a name's, or a fitted source's; ``None`` for modules, lists and anything unknown."""
    backbone = unwrap_frozen(backbone)
    if isinstance(backbone, torch.nn.Module):
        return None
    spec = getattr(backbone, "spec_", None)  # a fitted TransferClassifier / TransferRegressor
    if spec is not None:
        return spec.modality
    try:
        return get_spec(backbone).modality
    except Exception:
        return None
