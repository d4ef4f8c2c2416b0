"""_TransferBase: parameters, validation, building ``net_``, and the fit/predict plumbing."""

from __future__ import annotations

import copy
import functools
import os
from numbers import Integral, Real

import numpy as np
import torch
import torch.nn as nn
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    check_consistent_length,
    validate_data,
)

from .exceptions import InputModalityError
from ._backbone_cache import build_backbone
from ._feature_cache import backbone_fingerprint, fingerprint_module, get_store
from ._features import FeatureAwareCollate, cached_features, extract_features, feature_dataset
from ._net import PRECISIONS, TransferNet, fast_path, release_accelerator_memory
from ._inputs import TabularAdapter, make_adapter
from ._losses import WeightedLoss
from ._module import STRATEGIES, TransferModule
from ._registry import BackboneSpec, ImagePreprocessing, get_spec

OPTIMIZERS = {"adamw": "AdamW", "adam": "Adam", "sgd": "SGD"}
_DEFAULT_DRY_RUN = 2
_CHECKED_FEATURE_DIMS: dict = {}


def _copy_module(module: nn.Module, pretrained: bool = True) -> nn.Module:
    # The user's module is never trained in place: fit works on a copy.
    return copy.deepcopy(module)


def _children(module: nn.Module) -> list[str]:
    return [name for name, _ in module.named_children()]


def resolve_device(device) -> str:
    """``"auto"`` means CUDA when available, else the CPU."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


class _TransferBase(BaseEstimator):
    """Shared machinery of :class:`TransferClassifier` and :class:`TransferRegressor`."""

    _parameter_constraints: dict = {
        "backbone": [str, nn.Module],
        "pretrained": ["boolean"],
        "strategy": [StrOptions(set(STRATEGIES))],
        "trainable_blocks": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "backbone_lr": [Interval(Real, 0, None, closed="left"), None],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "optimizer": [StrOptions(set(OPTIMIZERS)), type],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither"), None],
        "patience": [Interval(Integral, 1, None, closed="left"), None],
        "augment": [StrOptions({"default", "mixup", "cutmix"}), callable, None],
        "lr_schedule": [StrOptions({"cosine", "onecycle", "constant"})],
        "warmup_fraction": [Interval(Real, 0, 1, closed="left")],
        "layer_decay": [Interval(Real, 0, 1, closed="right"), None],
        "image_size": [Interval(Integral, 8, None, closed="left"), None],
        "max_length": [Interval(Integral, 1, None, closed="left"), None],
        "pooling": [StrOptions({"auto", "mean", "cls"})],
        "device": [str, torch.device],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "feature_cache": [StrOptions({"memory"}), str, os.PathLike, None],
        "precision": [StrOptions(set(PRECISIONS))],
        "compile": ["boolean"],
        "net_params": [dict, None],
    }

    def __init__(
        self,
        backbone,
        *,
        pretrained=True,
        strategy="full",
        trainable_blocks=1,
        lr=1e-3,
        backbone_lr=None,
        layer_decay=None,
        lr_schedule="cosine",
        warmup_fraction=0.1,
        max_epochs=10,
        batch_size=32,
        optimizer="adamw",
        weight_decay=0.01,
        validation_fraction=None,
        patience=None,
        augment=None,
        image_size=None,
        max_length=None,
        pooling="auto",
        device="auto",
        random_state=None,
        verbose=0,
        feature_cache="memory",
        precision="auto",
        compile=False,
        net_params=None,
    ):
        self.backbone = backbone
        self.pretrained = pretrained
        self.strategy = strategy
        self.trainable_blocks = trainable_blocks
        self.lr = lr
        self.backbone_lr = backbone_lr
        self.layer_decay = layer_decay
        self.lr_schedule = lr_schedule
        self.warmup_fraction = warmup_fraction
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.augment = augment
        self.image_size = image_size
        self.max_length = max_length
        self.pooling = pooling
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.feature_cache = feature_cache
        self.precision = precision
        self.compile = compile
        self.net_params = net_params

    # ------------------------------------------------------------------ resolution
    def _resolve_spec(self, X=None) -> BackboneSpec:
        if isinstance(self.backbone, str):
            return get_spec(self.backbone)
        # A user module: its modality is read off X (a 2-D numeric matrix is tabular).
        is_tabular = X is not None and getattr(np.asarray(X, dtype=object) if isinstance(X, list) else X, "ndim", 0) == 2
        modality = "tabular" if is_tabular else "image"
        return BackboneSpec(
            name=type(self.backbone).__name__,
            modality=modality,
            build=functools.partial(_copy_module, self.backbone),
            feature_dim=0,  # inferred from a dry run
            preprocessing=ImagePreprocessing() if modality == "image" else None,
            blocks=_children,
            weights=None,
            plugin="<user module>",
        )

    def _spec_modality(self) -> str:
        """The backbone's modality without raising (tags must not fail)."""
        if isinstance(self.backbone, nn.Module):
            return "any"
        try:
            return get_spec(self.backbone).modality
        except Exception:
            return "tabular"

    def _check_params(self, spec: BackboneSpec) -> None:
        if isinstance(self.augment, str) and spec.modality != "image":
            raise ValueError(
                f"augment={self.augment!r} is defined for image backbones only; backbone {spec.name!r} takes "
                f"{spec.modality}. Use augment=None or a callable."
            )
        if self.augment in ("mixup", "cutmix") and self._loss_kind != "cross_entropy":
            raise ValueError(f"augment={self.augment!r} mixes class labels; it is for classifiers only.")
        if self.image_size is not None and spec.modality == "image" and spec.preprocessing.fixed_size:
            if self.image_size != spec.preprocessing.input_size:
                raise ValueError(
                    f"Backbone {spec.name!r} only accepts {spec.preprocessing.input_size}px inputs; "
                    f"got image_size={self.image_size}. Use image_size=None."
                )
        if self.pooling != "auto" and spec.modality != "text":
            raise ValueError(f"pooling={self.pooling!r} applies to text backbones; {spec.name!r} takes {spec.modality}.")

    def _preprocessing(self, spec: BackboneSpec):
        prep = spec.preprocessing
        if spec.modality == "image" and self.image_size is not None:
            prep = prep.with_input_size(self.image_size)
        return prep

    # ------------------------------------------------------------------ input
    def _check_X(self, X, *, fitting: bool, spec=None, adapter=None):
        """Validated X and the adapter that feeds it."""
        spec = spec if spec is not None else self.spec_
        if spec.modality == "tabular":
            if isinstance(X, (list, tuple)) and X and isinstance(X[0], str):
                raise InputModalityError(
                    f"X holds strings, but backbone {spec.name!r} takes a numeric feature matrix. "
                    "Use a text backbone such as 'all-MiniLM-L6-v2'."
                )
            X = validate_data(self, X, reset=fitting, dtype=[np.float64, np.float32])
            if adapter is None:
                adapter = TabularAdapter.fit(X)
            return X, adapter
        if adapter is None:
            adapter = make_adapter(spec, self._preprocessing(spec), self.augment, self.max_length)
        return adapter.check(X), adapter

    # ------------------------------------------------------------------ building
    def _build_module(self, spec, adapter, X_checked, n_outputs: int) -> TransferModule:
        pretrained = bool(self.pretrained) and spec.weights is not None
        if isinstance(self.backbone, nn.Module):
            backbone, weights_fingerprint = spec.build(pretrained=pretrained), None
        else:
            frozen_on = resolve_device(self.device) if self.strategy == "head" else None
            backbone, weights_fingerprint = build_backbone(spec, pretrained, frozen_on)
        pooling = None
        if spec.modality == "text":
            pooling = "mean" if self.pooling == "auto" else self.pooling
        # A dry run on two samples: materialises lazy layers and checks the feature size.
        # Pretrained weights are deterministic, so one check per weights and preprocessing is enough.
        checked_key = (weights_fingerprint, repr(getattr(adapter, "preprocessing", None)), pooling)
        feature_dim = _CHECKED_FEATURE_DIMS.get(checked_key) if weights_fingerprint else None
        if feature_dim is None:
            feature_dim = self._dry_run(backbone, pooling, adapter, X_checked)
            if weights_fingerprint:
                _CHECKED_FEATURE_DIMS[checked_key] = feature_dim
        declared = spec.get_feature_dim()
        if declared and declared != feature_dim:
            raise ValueError(
                f"Backbone {spec.name!r} (plugin {spec.plugin or '?'}) returned features of size {feature_dim}, "
                f"but its spec declares feature_dim={declared}. Fix the plugin's BackboneSpec."
            )
        module = TransferModule(backbone, feature_dim, n_outputs, pooling)
        blocks = spec.get_blocks(backbone)
        if self.strategy == "partial" and self.trainable_blocks > len(blocks):
            raise ValueError(
                f"trainable_blocks={self.trainable_blocks} but backbone {spec.name!r} has {len(blocks)} blocks "
                f"({', '.join(blocks)}). Use at most {len(blocks)}, or strategy='full'."
            )
        if self.strategy in ("partial", "gradual") and not blocks:
            raise ValueError(
                f"strategy={self.strategy!r} needs the backbone's blocks, but {spec.name!r} declares none. "
                "Use strategy='full' or 'head'."
            )
        module.freeze(self.strategy, blocks, self.trainable_blocks)
        return module, weights_fingerprint

    @staticmethod
    def _dry_run(backbone, pooling, adapter, X_checked) -> int:
        probe = TransferModule(backbone, 1, 1, pooling)
        n = min(_DEFAULT_DRY_RUN, len(X_checked))
        dry = adapter.dataset(X_checked)
        X_dry, _ = adapter.collate_fn([dry[i] for i in range(n)])
        probe.eval()
        with torch.no_grad():
            out = probe.features(**X_dry) if isinstance(X_dry, dict) else probe.features(X_dry)
        return int(out.shape[1])

    def _backbone_lr(self, spec) -> float:
        if self.backbone_lr is not None:
            return self.backbone_lr
        # Pretrained transformers get a 10x smaller step (larger ones forget what they
        # learned); CNNs moving to a new image domain need the full step: on 1,000
        # Fashion-MNIST images EfficientNet-Lite0 reached 0.802 with lr/10 and 0.869 with lr.
        pretrained = bool(self.pretrained) and spec.weights is not None
        return self.lr * 0.1 if pretrained and spec.modality == "text" else self.lr

    def _param_groups(self, module, spec) -> list:
        """Discriminative learning rates: the backbone's, decayed block by block from the top."""
        backbone_lr = self._backbone_lr(spec)
        if self.layer_decay is None or not module.blocks:
            return [("backbone.*", {"lr": backbone_lr})]
        groups = [
            (f"backbone.{name}.*", {"lr": backbone_lr * self.layer_decay**depth})
            for depth, name in enumerate(reversed(module.blocks))
        ]
        # Parameters outside every block (embeddings, position tables) sit below the first block.
        groups.append(("backbone.*", {"lr": backbone_lr * self.layer_decay ** len(module.blocks)}))
        return groups

    def _schedule_callback(self, n_train: int, fraction):
        from skorch.callbacks import LRScheduler
        from torch.optim.lr_scheduler import LambdaLR

        from ._callbacks import WarmupSchedule

        n_fit = n_train - int(np.ceil(n_train * fraction)) if fraction else n_train
        drop_last = (self.net_params or {}).get("iterator_train__drop_last", False)
        per_epoch = n_fit // self.batch_size if drop_last else int(np.ceil(n_fit / self.batch_size))
        schedule = WarmupSchedule(self.lr_schedule, max(1, per_epoch) * self.max_epochs, self.warmup_fraction)
        return LRScheduler(policy=LambdaLR, lr_lambda=schedule, step_every="batch")

    def _make_net(self, module, spec, collate_fn, seed, device, training_on_features: bool, fast, n_train: int):
        from skorch.callbacks import EarlyStopping, ProgressBar
        from skorch.dataset import ValidSplit

        from ._callbacks import GradualUnfreezing

        optimizer = self.optimizer
        if isinstance(optimizer, str):
            optimizer = getattr(torch.optim, OPTIMIZERS[optimizer])
        elif not issubclass(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be one of {sorted(OPTIMIZERS)} or a torch.optim.Optimizer subclass.")
        fraction = self.validation_fraction
        if fraction is None and self.patience is not None:
            fraction = 0.1  # early stopping needs a validation split
        callbacks = [("lr_schedule", self._schedule_callback(n_train, fraction))]
        if self.strategy == "gradual":
            callbacks.append(("gradual_unfreezing", GradualUnfreezing(module.blocks)))
        if self.patience is not None:
            callbacks.append(
                ("early_stopping", EarlyStopping(monitor="valid_loss", patience=self.patience, load_best=True))
            )
        if self.verbose:
            callbacks.append(("progress_bar", ProgressBar()))
        kwargs = dict(
            module=module,
            criterion=WeightedLoss,
            criterion__kind=self._loss_kind,
            optimizer=optimizer,
            lr=self.lr,
            optimizer__weight_decay=self.weight_decay,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            train_split=None
            if fraction is None
            else ValidSplit(fraction, stratified=self._stratify, random_state=seed),
            iterator_train__shuffle=True,
            iterator_train__collate_fn=self._train_collate(FeatureAwareCollate(collate_fn), module),
            iterator_valid__collate_fn=FeatureAwareCollate(collate_fn),
            iterator_train__num_workers=0 if training_on_features else fast.num_workers,
            iterator_valid__num_workers=0 if training_on_features else fast.num_workers,
            iterator_train__pin_memory=fast.pin_memory,
            iterator_valid__pin_memory=fast.pin_memory,
            callbacks=callbacks,
            device=device,
            verbose=int(self.verbose),
            compile=bool(self.compile),
            amp_dtype=fast.amp_dtype,
            grad_scaler=fast.grad_scaler,
        )
        if not training_on_features:
            kwargs["optimizer__param_groups"] = self._param_groups(module, spec)
        kwargs.update(self._extra_net_params())
        kwargs.update(self.net_params or {})
        return TransferNet(**kwargs)

    def _extra_net_params(self) -> dict:
        return {}

    def _train_collate(self, collate, module):
        return collate

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, sample_weight=None):
        """Fit the head (and the backbone, depending on ``strategy``) to ``X`` and ``y``.

        Parameters
        ----------
        X : array-like, list of PIL images or file paths, or list of str
            Samples in the backbone's modality.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self
        """
        # A failed fit restores the previous state: never a half-fitted estimator.
        previous = dict(self.__dict__)
        try:
            return self._fit(X, y, sample_weight)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(previous)
            raise

    def _fit(self, X, y, sample_weight):
        self._validate_params()
        spec = self._resolve_spec(X)
        self._check_params(spec)
        for attr in ("n_features_in_", "feature_names_in_"):
            self.__dict__.pop(attr, None)
        X_checked, adapter = self._check_X(X, fitting=True, spec=spec)
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
        check_consistent_length(X_checked, y)
        targets, fitted, stratify, class_weight = self._encode_targets(y)
        weight = self._sample_weight(sample_weight, len(X_checked), class_weight)
        target_dict = {"target": targets, "weight": weight}

        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max) if self.random_state is not None else None
        device = resolve_device(self.device)
        release_accelerator_memory(device)  # what earlier fits (search candidates) left behind
        fast = fast_path(device, self.precision, spec.modality)
        fingerprint = None
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            module, weights_fingerprint = self._build_module(spec, adapter, X_checked, fitted["n_outputs_"])
            module.channels_last = fast.channels_last
            if fast.channels_last:
                module.to(memory_format=torch.channels_last)
            on_features = self.strategy == "head" and self.augment is None
            if on_features:
                # Frozen backbone and no augmentation: one backbone pass (rows seen by
                # earlier fits come from the cache), then every epoch runs on features.
                module.to(device)
                store = self._feature_store(spec)
                if store is None:
                    features = extract_features(
                        module, adapter.dataset(X_checked), adapter.collate_fn, self.batch_size, device, fast
                    )
                else:
                    fingerprint = backbone_fingerprint(
                        spec,
                        weights_fingerprint or fingerprint_module(module.backbone),
                        getattr(adapter, "preprocessing", None),
                        module.pooling,
                        getattr(adapter.collate_fn, "max_length", None),
                    )
                    features = cached_features(
                        module, adapter, X_checked, self.batch_size, device, store, fingerprint, fast
                    )
                train_data = feature_dataset(features, target_dict)
            else:
                train_data = adapter.dataset(X_checked, target_dict, train=True)
            net = self._make_net(module, spec, adapter.collate_fn, seed, device, on_features, fast, len(X_checked))
            net.fit(train_data, stratify)
        self.spec_ = spec
        self.adapter_ = adapter
        self.net_ = net
        self.device_ = device
        self.fast_path_ = fast
        self.feature_fingerprint_ = fingerprint
        for key, value in fitted.items():
            setattr(self, key, value)
        return self

    def _feature_store(self, spec):
        # Tabular inputs are standardised with statistics of each training set, and
        # cheap anyway: only image and text features are shared across fits.
        if spec.modality == "tabular":
            return None
        return get_store(self.feature_cache)

    def _sample_weight(self, sample_weight, n: int, class_weight) -> np.ndarray:
        weight = _check_sample_weight(sample_weight, np.empty(n), dtype=np.float32, ensure_non_negative=True)
        weight = weight * class_weight
        total = weight.sum()
        if not total > 0:
            raise ValueError("sample_weight sums to zero: give at least one sample a positive weight.")
        return (weight * (n / total)).astype(np.float32)  # mean 1: rescaling the weights changes nothing

    # ------------------------------------------------------------------ predict
    def _forward(self, X) -> np.ndarray:
        """Raw outputs (logits or standardised targets) for X, batch by batch."""
        check_is_fitted(self)
        X_checked, _ = self._check_X(X, fitting=False, adapter=self.adapter_)
        fingerprint = getattr(self, "feature_fingerprint_", None)
        store = get_store(self.feature_cache) if fingerprint is not None else None
        if store is not None:
            # A frozen backbone: reuse (or add) cached features and run only the head.
            features = cached_features(
                self.net_.module_, self.adapter_, X_checked, self.batch_size, self.device_, store, fingerprint,
                self.fast_path_,
            )
            dataset = feature_dataset(features, None)
        else:
            dataset = self.adapter_.dataset(X_checked)
        return self.net_.forward(dataset, training=False, device="cpu").numpy()

    def __sklearn_is_fitted__(self):
        return hasattr(self, "net_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        modality = self._spec_modality()
        if modality == "image":
            tags.input_tags.two_d_array = False
            tags.input_tags.three_d_array = True
        elif modality == "text":
            tags.input_tags.two_d_array = False
            tags.input_tags.string = True
        return tags

    # skorch's DeviceWarning handles loading a GPU-fitted net on a CPU machine; the
    # fitted device is kept in sync so the estimator's own tensors follow.
    def __setstate__(self, state):
        self.__dict__.update(state)
        if hasattr(self, "net_") and str(self.net_.device) != self.device_:
            # Loaded where the fitting device is missing (a GPU model on a CPU-only
            # machine): skorch mapped the tensors; the fast path follows the new device.
            self.device_ = str(self.net_.device)
            self.fast_path_ = fast_path(self.device_, "auto", self.spec_.modality)
            self.net_.amp_dtype = self.fast_path_.amp_dtype
            self.net_.grad_scaler = self.fast_path_.grad_scaler
            module = getattr(self.net_.module_, "_orig_mod", self.net_.module_)
            module.channels_last = self.fast_path_.channels_last
            if not module.channels_last:
                module.to(memory_format=torch.contiguous_format)
