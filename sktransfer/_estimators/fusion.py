"""Fusion: several backbones in one model, on one input or on the columns of a DataFrame.

``backbone=["efficientnet_lite0", "resnet18"]`` runs each backbone on the same ``X``;
``backbone={"photo": "efficientnet_lite0", "caption": "all-MiniLM-L6-v2", "price":
"passthrough"}`` runs each on one column of a DataFrame (or a dict of columns). Each
branch is a backbone with its own input adapter, chosen stages and strategy, built by
the same steps as a single-backbone fit; their features are concatenated (or gated,
then concatenated) and one head is trained on them.

Frozen branches (``strategy="head"``, no augmentation) read their features from the
shared feature cache, so a search that varies the other branches or the head runs
each frozen backbone about once per row. When every branch is frozen, training runs
on the concatenated features alone; otherwise trainable branches run end to end.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from numbers import Integral, Real

import numpy as np
import torch
import torch.nn as nn
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from sktransfer._features.extraction import FeatureDataset
from sktransfer._features.stores import get_store
from sktransfer._inputs import adapter_class
from sktransfer._inputs.fused import (
    BranchColumns,
    FittedBranch,
    FusedInput,
    branch_fingerprint,
    check_columns,
    select,
)
from sktransfer._nn.fusion_module import FusionModule
from sktransfer._nn.module import STRATEGIES
from sktransfer._training.net import fast_path, release_accelerator_memory
from sktransfer._training.preflight import batchnorm_drop_last

FUSIONS = ("concat", "gated")
REMAINDERS = ("error", "drop")
#: Branch settings that default to the estimator's own (``None``: inherit).
BRANCH_PARAMS = ("strategy", "lr", "layers", "trainable_blocks", "pretrained")


class Branch(BaseEstimator):
    """One branch of a fused model: a backbone, and the settings where it differs.

    Parameters
    ----------
    backbone : str, torch.nn.Module or fitted TransferClassifier / TransferRegressor
        As the estimators' ``backbone``; ``"passthrough"`` for numeric columns.
    strategy : {"full", "partial", "head", "lora"}, default=None
        This branch's strategy; ``None`` uses the estimator's. ``"lora"`` takes the
        estimator's ``lora_rank`` and ``lora_alpha``.
    lr : float, default=None
        This branch's backbone learning rate; ``None`` uses the estimator's rule
        (``backbone_lr``, else ``lr`` or ``lr / 10`` for pretrained text encoders).
    layers : str, int or list of them, default=None
        This branch's stages; ``None`` uses the estimator's ``layers``.
    trainable_blocks : int, default=None
        Blocks trained by ``strategy="partial"``; ``None`` uses the estimator's.
    pretrained : bool, default=None
        Whether this branch loads pretrained weights; ``None`` uses the estimator's.

    Examples
    --------
    >>> from sktransfer import Branch, TransferClassifier
    >>> clf = TransferClassifier({"photo": Branch("efficientnet_lite0", strategy="head"),
    ...                           "caption": "all-MiniLM-L6-v2"})
    """

    _parameter_constraints: dict = {
        "backbone": [str, nn.Module, HasMethods(["fit", "predict"])],
        "strategy": [StrOptions(set(STRATEGIES)), None],
        "lr": [Interval(Real, 0, None, closed="neither"), None],
        "layers": [str, Integral, list, tuple, None],
        "trainable_blocks": [Interval(Integral, 1, None, closed="left"), None],
        "pretrained": ["boolean", None],
    }

    def __init__(self, backbone, *, strategy=None, lr=None, layers=None, trainable_blocks=None, pretrained=None):
        self.backbone = backbone
        self.strategy = strategy
        self.lr = lr
        self.layers = layers
        self.trainable_blocks = trainable_blocks
        self.pretrained = pretrained


def is_fused(backbone) -> bool:
    """Whether ``backbone`` names several branches (a list or a column mapping)."""
    return isinstance(backbone, (list, tuple, Mapping))


def _as_branch(value, where: str) -> Branch:
    if isinstance(value, Branch):
        return value
    if isinstance(value, (list, tuple, Mapping)):
        raise TypeError(f"{where} is a {type(value).__name__}; each branch is one backbone (or a Branch).")
    return Branch(value)


def _branch_name(backbone, i: int) -> str:
    if isinstance(backbone, str):
        return backbone
    return f"branch{i}"


def branch_table(backbone) -> list[tuple[str, object, Branch]]:
    """``(name, column, Branch)`` per branch: column names for a mapping, ``None`` (the
    whole ``X``) for a list. Names are the columns, or the backbone names of a list."""
    if isinstance(backbone, Mapping):
        if not backbone:
            raise ValueError("backbone={} names no columns; map each column to a backbone, e.g. {'text': "
                             "'all-MiniLM-L6-v2'}.")
        for column in backbone:
            if not isinstance(column, str):
                raise TypeError(
                    f"backbone mapping keys are DataFrame column names and must be str, got {column!r} "
                    f"({type(column).__name__})."
                )
        return [(column, column, _as_branch(value, f"backbone[{column!r}]")) for column, value in backbone.items()]
    if not backbone:
        raise ValueError("backbone=[] names no backbones; pass at least one.")
    table, seen = [], {}
    for i, value in enumerate(backbone):
        branch = _as_branch(value, f"backbone[{i}]")
        name = _branch_name(branch.backbone, i)
        seen[name] = seen.get(name, 0) + 1
        table.append((name if seen[name] == 1 else f"{name}_{seen[name]}", None, branch))
    return table


def with_branch_params(backbone, updates: dict):
    """A copy of ``backbone`` (list or mapping) with ``{"branch__<name>__<param>": value}``
    applied to new Branch objects; the caller's list, dict and Branch objects are kept."""
    table = branch_table(backbone)
    names = [name for name, _, _ in table]
    branches = {name: copy.copy(branch) for name, _, branch in table}
    for key, value in updates.items():
        name, _, param = key[len("branch__"):].rpartition("__")
        if name not in branches or param not in BRANCH_PARAMS:
            raise ValueError(
                f"Invalid parameter {key!r}: branch parameters are branch__<name>__<param> with <name> one of "
                f"{names} and <param> one of {list(BRANCH_PARAMS)}."
            )
        setattr(branches[name], param, value)
    if isinstance(backbone, Mapping):
        return {column: branches[name] for name, column, _ in table}
    return [branches[name] for name in names]


class FusionMixin:
    """``get_params``/``set_params`` that expose each branch's settings as
    ``branch__<name>__<param>``, so that a search can tune them."""

    def get_params(self, deep=True):
        params = super().get_params(deep=deep)
        if deep and is_fused(self.backbone):
            try:
                table = branch_table(self.backbone)
            except (TypeError, ValueError):
                return params  # fit reports the bad mapping
            for name, _, branch in table:
                for param in BRANCH_PARAMS:
                    params[f"branch__{name}__{param}"] = getattr(branch, param)
        return params

    def set_params(self, **params):
        updates = {key: params.pop(key) for key in list(params) if key.startswith("branch__")}
        if "backbone" in params:
            super().set_params(backbone=params.pop("backbone"))
        if updates:
            if not is_fused(self.backbone):
                raise ValueError(
                    f"Invalid parameters {sorted(updates)}: branch__ parameters need several backbones "
                    "(a list or a column mapping as backbone)."
                )
            self.backbone = with_branch_params(self.backbone, updates)
        return super().set_params(**params)


    # ------------------------------------------------------------ fit
    def _branch_view(self, branch: Branch):
        """A shallow copy of this estimator with the branch's backbone and settings: the
        single-backbone fit steps then build the branch exactly as they build a model."""
        view = copy.copy(self)
        view.accelerator = self.accelerator  # copy.copy goes through __getstate__, which leaves it out
        view.backbone = branch.backbone
        view.init = None  # the offset belongs to the fused model's output, not a branch's
        for param in ("strategy", "layers", "trainable_blocks", "pretrained"):
            if getattr(branch, param) is not None:
                setattr(view, param, getattr(branch, param))
        if branch.lr is not None:
            view.backbone_lr = branch.lr
        return view

    def _check_fusion_params(self, table) -> None:
        for name, _, branch in table:
            try:
                branch._validate_params()
            except ValueError as exc:
                raise type(exc)(f"branch {name!r}: {exc}") from None
        if self.augment in ("mixup", "cutmix"):
            raise ValueError(
                f"augment={self.augment!r} mixes whole batches of one image input; a fused model has several inputs. "
                "Use augment='default' (applied to image branches) or None."
            )
        strategies = {self.strategy} | {b.strategy for _, _, b in table if b.strategy is not None}
        if "gradual" in strategies:
            raise ValueError(
                "strategy='gradual' is not supported for fused models yet; use 'partial' or 'full' per branch "
                "(branch__<name>__strategy)."
            )

    def _branch_adapter(self, branch: Branch, spec, source):
        """``(view, adapter)`` of a branch whose backbone is resolved: the estimator's
        settings that mean nothing for this modality are reset in the view first."""
        view = self._branch_view(branch)
        if not adapter_class(spec.modality).pooling_applies:
            view.pooling = "auto"  # pooling is the text branches' setting
        if not adapter_class(spec.modality).long_text_applies:
            view.long_text = "truncate"  # so is long_text
        if spec.modality != "image" and isinstance(view.augment, str):
            view.augment = None  # augment="default" is the image branches' setting
        return view, view._build_adapter(spec, source)

    def _prepare_branch(self, i, name, column, branch, X):
        """Resolve, adapt and check one branch's input, as a single-backbone fit does."""
        spec, source = self._branch_view(branch)._resolve_backbone(select(X, column, "image"))
        view, adapter = self._branch_adapter(branch, spec, source)
        columns = BranchColumns()
        try:
            X_checked = adapter.check(select(X, column, spec.modality), estimator=columns, reset=True)
        except (ValueError, TypeError) as exc:
            where = f"column {column!r}" if column is not None else f"branch {name!r}"
            raise type(exc)(f"{where} ({spec.name}): {exc}") from exc
        if source is None:
            adapter.fit(X_checked)
        return view, spec, source, adapter, columns, X_checked

    def _fit_fused(self, X, y, sample_weight):
        table = branch_table(self.backbone)
        self._check_fusion_params(table)
        mapped = isinstance(self.backbone, Mapping)
        init = self._check_init()
        for attr in ("n_features_in_", "feature_names_in_"):
            self.__dict__.pop(attr, None)
        if mapped:
            columns = check_columns(X, [column for _, column, _ in table], self.remainder)
            self.feature_names_in_ = np.asarray(columns, dtype=object)
            self.n_features_in_ = len(columns)
        prepared = [self._prepare_branch(i, *row, X) for i, row in enumerate(table)]
        n = len(prepared[0][-1])
        target_dict, fitted, stratify = self._targets(X, n, y, sample_weight, init)

        seed = self._seed()
        device = self._fit_device()
        release_accelerator_memory(device)
        fast = self._fit_fast_path(self._fused_fast_path(device, [spec.modality for _, spec, *_ in prepared]))
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            module, inputs, groups, train_params = self._build_fused(prepared, table, mapped, init, fitted, n,
                                                                     device, fast)
            checked = {b.key: part[-1] for b, part in zip(inputs.branches, prepared)}
            train_data = inputs.dataset(checked, module, target_dict, train=True, batch_size=self.batch_size,
                                        device=device, fast=fast, feature_cache=self.feature_cache)
            on_features = isinstance(train_data, FeatureDataset)
            net = self._build_net(module, inputs, None if on_features else groups, seed, device, on_features, fast,
                                 fitted)
            net.set_params(**train_params)
            net.fit(train_data, stratify)
        self._set_fitted(None, inputs, net, device, fast, None, init, None, fitted)
        return self

    def _fused_fast_path(self, device, modalities: list[str]):
        """The fast path of a fused model: an image branch's, where it has one."""
        return fast_path(device, self.precision, "image" if "image" in modalities else modalities[0])

    def _build_fused(self, prepared, table, mapped, init, fitted, n, device, fast):
        """The FusionModule, its input side, its parameter groups and BatchNorm settings."""
        modules, dims, branches, groups, train_params = {}, [], [], [], {}
        for i, ((view, spec, source, adapter, columns, X_checked), (name, column, _)) in enumerate(
            zip(prepared, table)
        ):
            key = f"b{i}"  # module names can't hold a column's dots or spaces
            module, weights = view._build_module(spec, source, adapter, X_checked, 1, device)
            dims.append(module.head.in_features)
            module.head = nn.Identity()  # the fused model's head replaces it
            modules[key] = module
            frozen, fingerprint = view._place_branch(module, spec, adapter, weights, device, fast)
            branches.append(FittedBranch(name, key, column, spec, adapter, columns, frozen, fingerprint))
            if not frozen:
                groups += [(f"branches.{key}.{pattern}", options)
                           for pattern, options in view._param_groups(module, spec, source)]
                train_params.update(batchnorm_drop_last(view, module, n))
        fused = FusionModule(modules, dims, fitted["n_outputs_"], self.fusion, zero_head=init is not None)
        return fused, self._fused_input(fused, branches, mapped), groups, train_params

    def _place_branch(self, module, spec, adapter, weights, device, fast) -> tuple[bool, bytes | None]:
        """Put a built branch module (this view's) on ``device``; ``(frozen, fingerprint)``:
        whether its features are computed once, before training, and where the shared
        cache keys them (``None``: not cached). Shared by fit and model-file loading, so
        that both key the cache alike."""
        module.channels_last = fast.channels_last and adapter.pixel_batches
        if module.channels_last:
            module.to(memory_format=torch.channels_last)
        module.to(device)
        frozen = self.strategy == "head" and self.augment is None
        cached = frozen and adapter.shares_features and get_store(self.feature_cache) is not None
        return frozen, branch_fingerprint(spec, weights, module, adapter) if cached else None

    def _fused_input(self, fused: FusionModule, branches: list[FittedBranch], mapped: bool) -> FusedInput:
        """The input side of ``fused``; its frozen branches' features come precomputed."""
        fused.frozen_keys = {b.key for b in branches if b.frozen}
        return FusedInput(branches, mapped, self.remainder)
