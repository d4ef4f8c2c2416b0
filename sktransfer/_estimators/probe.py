"""The linear probe before fine-tuning (LP-FT): ``head_epochs``' head on frozen features."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np
from sklearn.base import is_classifier

from sktransfer._build.branch import is_pretrained
from sktransfer._build.model import PreparedBranch
from sktransfer._build.param_checks import plain_numbers
from sktransfer._training.budget import planned_head_epochs, small_data_layers, small_data_views
from sktransfer._training.preflight import validation_fraction
from sktransfer._training.splits import SplitByRow


class Probe(NamedTuple):
    #: The head's weights after the probe (CPU tensors by name).
    head: dict
    #: Whether the probe is the whole fit: small data that ``max_epochs="auto"`` doesn't fine-tune.
    final: bool
    #: The stages the probe's head reads, where the small-data route chose them (else None).
    layers: list | None = None


def probe_head(estimator, X, y, sample_weight, prepared: PreparedBranch, seed: int | None) -> Probe | None:
    """The head after ``head_epochs`` of training on frozen features, or None.

    Linear probing, then fine-tuning (LP-FT, as fastai's ``fine_tune``): a random
    head's first gradients reach the backbone as noise and wear down features that
    already fit the task. The probe is this estimator with ``strategy="head"``: its
    features come from the shared cache, with the validation split and early stopping.
    On small data of some modalities (:func:`~sktransfer._training.budget.small_data_views`)
    the probe is the whole fit, and is solved on augmented views of the rows as well.
    """
    settings = prepared.settings
    params = plain_numbers(estimator.get_params(deep=False))
    pretrained = is_pretrained(settings, prepared.spec, prepared.source)
    # A registry backbone without weights (mlp), or pretrained=False, has random features: none to protect.
    # A user's module is taken to be pretrained: that is why it is passed.
    random_body = isinstance(estimator.backbone, str) and not pretrained
    head_epochs = planned_head_epochs(params, settings.strategy.warm_starts_head, pretrained=not random_body)
    if head_epochs == 0 or not settings.strategy.warm_starts_head:
        return None
    # Only a body whose weights are known to be pretrained (not a user's module) skips fine-tuning.
    views = small_data_views(params, len(prepared.X_checked), prepared.adapter, pretrained=pretrained,
                             trains_body=not settings.strategy.frozen_backbone)
    net_params = None
    layers = None
    if views:
        n_classes = len(np.unique(y)) if is_classifier(estimator) and np.ndim(y) == 1 else None
        if prepared.source is None:  # a fitted estimator's body keeps its own stages
            layers = small_data_layers(params, len(prepared.X_checked), n_classes, prepared.spec.get_stages())
        X, y, sample_weight = _with_views(prepared, y, sample_weight, views, seed)
        fraction = validation_fraction(params)
        if fraction is not None:  # validate on whole photos: a photo's views go where it goes
            net_params = {"train_split": SplitByRow(fraction, len(prepared.X_checked), random_state=seed)}
    probe = type(estimator)(**estimator.get_params(deep=False))
    probe.set_params(strategy="head", augment=None, head_epochs=0, max_epochs=head_epochs, verbose=0,
                     net_params=net_params, compile=False, **({} if layers is None else {"layers": layers}))
    probe.fit(X, y, sample_weight)
    head = {name: t.detach().to("cpu", copy=True) for name, t in probe.net_.module_.head.state_dict().items()}
    return Probe(head, final=bool(views), layers=layers)


def with_probe_layers(prepared: list[PreparedBranch], probe: Probe | None) -> list[PreparedBranch]:
    """The branches to build: with the stages the small-data probe chose, so that its head fits."""
    if probe is None or probe.layers is None:
        return prepared
    settings = dataclasses.replace(prepared[0].settings, layers=probe.layers)
    return [dataclasses.replace(prepared[0], settings=settings)]


def probe_was_the_fit(estimator) -> bool:
    """Whether a fitted estimator is the small-data probe alone: ``max_epochs="auto"`` planned no
    fine-tuning (small image data), so its backbone is the pretrained one."""
    net = getattr(estimator, "net_", None)
    return net is not None and not net.history and net.max_epochs == 0


def _with_views(prepared: PreparedBranch, y, sample_weight, views: int, seed):
    """The rows and ``views`` augmented copies of them, with their targets and weights. A row
    weighs as much as its views together, so that they regularise it rather than replace it
    (measured on flowers12 at 1 and 4 photos a species: 0.8 and 0.3 point more accurate than
    equal weights, 10 draws)."""
    X = prepared.adapter.with_views(prepared.X_checked, views, seed)
    y = np.concatenate([np.asarray(y)] * (views + 1))
    n = len(prepared.X_checked)
    weight = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    return X, y, np.concatenate([weight * views] + [weight] * views)
