"""_TransferBase: parameters, validation, and fit as small steps; the predict plumbing.

``fit`` runs, in order: resolve the backbone (a name, a module or a fitted source),
build the input adapter, check the data and the targets, build the module, the
training data, the callbacks and the skorch net, train, and set the fitted state in
one place.  Whatever differs by modality is asked of the adapter.
"""

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
    check_consistent_length,
    check_is_fitted,
)

from sktransfer._build.sources import (
    check_fitted_source,
    fitted_transfer_source,
    modality_of,
    source_module,
    source_spec,
    unwrap_frozen,
)
from sktransfer._estimators.fusion import (
    FUSIONS,
    REMAINDERS,
    FusedInput,
    FusionMixin,
    is_fused,
)
from sktransfer._estimators.targets import check_class_labels
from sktransfer._features.extraction import (
    FeatureAwareCollate,
    cached_features,
    extract_features,
    feature_dataset,
)
from sktransfer._features.stores import backbone_fingerprint, get_store
from sktransfer._hashing import fingerprint_module
from sktransfer._inputs import adapter_class, guess_modality
from sktransfer._inputs.checks import check_samples
from sktransfer._inputs.text import CHUNK_POOLING, LONG_TEXT
from sktransfer._nn.backbone_cache import build_backbone
from sktransfer._nn.calls import call_args
from sktransfer._nn.lora import (
    add_adapters,
    lora_targets_linear_and_conv,
    no_targets_message,
)
from sktransfer._nn.losses import WeightedLoss
from sktransfer._nn.module import STRATEGIES, TransferModule
from sktransfer._spec.registry import BackboneSpec, get_spec
from sktransfer._spec.stages import blocks_feeding, resolve_layers
from sktransfer._training.accelerate import (
    accelerated_fast_path,
    accelerated_net_class,
    check_accelerator,
    print_on_main,
    shared_seed,
    weights_device,
)
from sktransfer._training.callbacks import SCHEDULES
from sktransfer._training.devices import check_device, resolve_device
from sktransfer._training.net import (
    PRECISIONS,
    FitInterrupted,
    TransferNet,
    fast_path,
    release_accelerator_memory,
)
from sktransfer._training.preflight import batchnorm_drop_last, check_validation_split
from sktransfer.exceptions import NonFiniteOutputError

OPTIMIZERS = {"adamw": "AdamW", "adam": "Adam", "sgd": "SGD"}
_DEFAULT_DRY_RUN = 2
_CHECKED_FEATURE_DIMS: dict = {}


def _copy_module(module: nn.Module, pretrained: bool = True) -> nn.Module:
    # The user's module is never trained in place: fit works on a copy.
    return copy.deepcopy(module)


def _children(module: nn.Module) -> list[str]:
    return [name for name, _ in module.named_children()]


def module_spec(module: nn.Module, modality: str) -> BackboneSpec:
    """The spec of a user's ``nn.Module``: a copy per fit, its children as blocks and stages,
    LoRA adapters (``strategy="lora"``) on its linear layers and ungrouped convolutions."""
    return BackboneSpec(
        name=type(module).__name__,
        modality=modality,
        build=functools.partial(_copy_module, module),
        feature_dim=0,  # inferred from a dry run
        preprocessing=adapter_class(modality).default_preprocessing(),
        blocks=_children,
        stages=tuple(_children(module)),
        weights=None,
        lora_targets=lora_targets_linear_and_conv,
        plugin="<user module>",
    )


def check_finite_outputs(out: np.ndarray) -> None:
    """Refuse to turn NaN or infinite network outputs into predictions (argmax of NaN is
    the first class: a wrong answer that looks like an answer)."""
    bad = ~np.isfinite(out).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise NonFiniteOutputError(
            f"The model gave NaN or infinite outputs for {len(rows)} of {len(out)} sample(s) (rows "
            f"{', '.join(map(str, rows[:5]))}{', ...' if len(rows) > 5 else ''}). Check those inputs for extreme "
            "values, far outside the training data's range."
        )


class _TransferBase(FusionMixin, BaseEstimator):
    """Shared machinery of :class:`TransferClassifier` and :class:`TransferRegressor`."""

    _parameter_constraints: dict = {
        "backbone": [str, nn.Module, HasMethods(["fit", "predict"]), list, tuple, dict],
        "fusion": [StrOptions(set(FUSIONS))],
        "remainder": [StrOptions(set(REMAINDERS))],
        "pretrained": ["boolean"],
        "strategy": [StrOptions(set(STRATEGIES))],
        "trainable_blocks": [Interval(Integral, 1, None, closed="left")],
        "lora_rank": [Interval(Integral, 1, None, closed="left")],
        "lora_alpha": [Interval(Real, 0, None, closed="neither"), None],
        "layers": [str, Integral, list, tuple, None],
        "init": [HasMethods(["predict"]), None],
        "init_cv": ["cv_object", None],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "backbone_lr": [Interval(Real, 0, None, closed="left"), None],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "optimizer": [StrOptions(set(OPTIMIZERS)), type],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither"), None],
        "patience": [Interval(Integral, 1, None, closed="left"), None],
        "augment": [StrOptions({"default", "mixup", "cutmix", "word_dropout", "span_deletion"}), callable, None],
        "lr_schedule": [StrOptions(set(SCHEDULES))],
        "warmup_fraction": [Interval(Real, 0, 1, closed="left")],
        "layer_decay": [Interval(Real, 0, 1, closed="right"), None],
        "head_epochs": [Interval(Integral, 0, None, closed="left")],
        "image_size": [Interval(Integral, 8, None, closed="left"), None],
        "max_length": [Interval(Integral, 1, None, closed="left"), None],
        "pooling": [StrOptions({"auto", "mean", "cls"})],
        "long_text": [StrOptions(set(LONG_TEXT))],
        "chunk_pooling": [StrOptions(set(CHUNK_POOLING))],
        "device": [str, torch.device],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "feature_cache": [StrOptions({"memory"}), str, os.PathLike, HasMethods(["get_many", "put_many"]), None],
        "precision": [StrOptions(set(PRECISIONS))],
        "compile": ["boolean"],
        "net_params": [dict, None],
        # Checked in fit by check_accelerator, whose message names accelerate.Accelerator
        # (imported only when one is given).
        "accelerator": "no_validation",
    }

    def __init__(
        self,
        backbone,
        *,
        pretrained=True,
        strategy="full",
        trainable_blocks=1,
        lora_rank=8,
        lora_alpha=None,
        layers=None,
        init=None,
        init_cv=None,
        lr=1e-3,
        backbone_lr=None,
        layer_decay=None,
        head_epochs=0,
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
        long_text="truncate",
        chunk_pooling="mean",
        device="auto",
        random_state=None,
        verbose=0,
        feature_cache="memory",
        precision="auto",
        compile=False,
        net_params=None,
        fusion="concat",
        remainder="error",
        accelerator=None,
    ):
        self.backbone = backbone
        self.pretrained = pretrained
        self.strategy = strategy
        self.trainable_blocks = trainable_blocks
        self.lora_rank = lora_rank
        self.lora_alpha = lora_alpha
        self.layers = layers
        self.init = init
        self.init_cv = init_cv
        self.lr = lr
        self.backbone_lr = backbone_lr
        self.layer_decay = layer_decay
        self.head_epochs = head_epochs
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
        self.long_text = long_text
        self.chunk_pooling = chunk_pooling
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.feature_cache = feature_cache
        self.precision = precision
        self.compile = compile
        self.net_params = net_params
        self.fusion = fusion
        self.remainder = remainder
        self.accelerator = accelerator

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
        # A failed fit restores the previous state: never a half-fitted estimator, and
        # never an interrupted or diverged one that looks fitted.
        previous = dict(self.__dict__)
        try:
            return self._fit(X, y, sample_weight)
        except FitInterrupted as stop:
            self.__dict__.clear()
            self.__dict__.update(previous)
            raise KeyboardInterrupt(
                f"{type(self).__name__}.fit was interrupted after {stop.epochs_done} of {stop.max_epochs} epoch(s); "
                "the estimator was left as it was before this fit. To keep the weights of interrupted runs, add "
                "skorch's Checkpoint callback, which saves every epoch with monitor=None: "
                "net_params={'callbacks': [Checkpoint(dirname=..., monitor=None)]}."
            ) from None
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(previous)
            raise

    def _fit(self, X, y, sample_weight):
        self._validate_params()
        check_device(self.device)
        check_accelerator(self.accelerator, self)
        check_samples(X)
        if is_fused(self.backbone):
            return self._fit_fused(X, y, sample_weight)
        spec, source = self._resolve_backbone(X)
        adapter = self._build_adapter(spec, source)
        init = self._check_init()
        for attr in ("n_features_in_", "feature_names_in_"):
            self.__dict__.pop(attr, None)
        X_checked = adapter.check(X, estimator=self, reset=True)
        if source is None:
            adapter.fit(X_checked)
        target_dict, fitted, stratify = self._targets(X, len(X_checked), y, sample_weight, init)
        warm_head = self._warm_head(X, y, sample_weight)

        seed = self._seed()
        device = self._fit_device()
        release_accelerator_memory(device)  # what earlier fits (search candidates) left behind
        fast = self._fit_fast_path(fast_path(device, self.precision, spec.modality))
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            module, weights = self._build_module(spec, source, adapter, X_checked, fitted["n_outputs_"], device)
            if warm_head is not None:
                module.head.load_state_dict(warm_head)
            train_params = batchnorm_drop_last(self, module, len(X_checked))  # before any training
            module.channels_last = fast.channels_last
            if fast.channels_last:
                module.to(memory_format=torch.channels_last)
            on_features = self.strategy == "head" and self.augment is None
            fingerprint = None
            if on_features:
                train_data, fingerprint = self._frozen_training_data(
                    module, spec, adapter, X_checked, target_dict, weights, device, fast
                )
            else:
                train_data = adapter.dataset(X_checked, target_dict, train=True)
            param_groups = None if on_features else self._param_groups(module, spec, source)
            net = self._build_net(module, adapter, param_groups, seed, device, on_features, fast, fitted)
            net.set_params(**train_params)
            net.fit(train_data, stratify)
        self._set_fitted(spec, adapter, net, device, fast, fingerprint, init, module.stages, fitted)
        return self

    def _targets(self, X, n: int, y, sample_weight, init) -> tuple[dict, dict, object]:
        """``(target_dict, fitted, stratify)``: the encoded targets with their weights
        (and ``init``'s offsets), the fitted attributes they give, and the labels that
        stratify a validation split."""
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
        if self._loss_kind == "cross_entropy":
            check_class_labels(y)
        check_consistent_length(np.empty((n, 0)), y)
        targets, fitted, stratify, class_weight = self._encode_targets(y)
        check_validation_split(self, n, stratify, fitted.get("classes_"))
        target_dict = {"target": targets, "weight": self._sample_weight(sample_weight, n, class_weight)}
        if init is not None:
            # The source model runs once per fit; its output rides along with the targets.
            answers = self._init_answers(init, X, y)
            target_dict["offset"] = self._source_offsets(init, X, n, fitted, answers)
        return target_dict, fitted, stratify

    def _warm_head(self, X, y, sample_weight) -> dict | None:
        """The head after ``head_epochs`` of training on frozen features, or None.

        Linear probing, then fine-tuning (LP-FT; fastai's ``fine_tune`` freezes for its
        first epochs alike): a random head's first gradients reach the backbone as
        noise and wear down pretrained features that already fit the task, while a
        trained head passes on small gradients where the features fit and large ones
        where they don't. The probe is this estimator with ``strategy="head"``, so its
        features come from the shared cache (one backbone pass, shared by a search),
        and it keeps the validation split and early stopping.
        """
        if self.head_epochs == 0 or self.strategy == "head":
            return None
        probe = type(self)(**self.get_params(deep=False))
        probe.set_params(strategy="head", augment=None, head_epochs=0, max_epochs=self.head_epochs, verbose=0,
                         net_params=None, compile=False)
        probe.fit(X, y, sample_weight)
        return {name: t.detach().to("cpu", copy=True) for name, t in probe.net_.module_.head.state_dict().items()}

    def _seed(self) -> int | None:
        seed = None if self.random_state is None else check_random_state(self.random_state).randint(
            np.iinfo(np.int32).max
        )
        return seed if self.accelerator is None else shared_seed(self.accelerator, seed)

    def _fit_device(self) -> str:
        """The device the fit builds on: the Accelerator's (this process's GPU), or ``device``."""
        return resolve_device(self.device) if self.accelerator is None else str(self.accelerator.device)

    def _fit_fast_path(self, fast):
        return fast if self.accelerator is None else accelerated_fast_path(fast)

    def _set_fitted(self, spec, adapter, net, device, fast, fingerprint, init, layers, fitted) -> None:
        """Every fitted attribute, set in one place once training succeeded."""
        # Left in eval mode: every predict path restores the mode it found, so threads
        # predicting at once can never flip the module back into training (BatchNorm
        # batch statistics, dropout) under each other.
        net.module_.eval()
        self.spec_ = spec
        self.adapter_ = adapter
        self.net_ = net
        # Accelerate chose the device: where the weights ended up.
        self.device_ = device if self.accelerator is None else weights_device(net.module_)
        self.fast_path_ = fast
        self.feature_fingerprint_ = fingerprint
        self.layers_ = layers
        self.init_ = init
        for key, value in fitted.items():
            setattr(self, key, value)

    def save_pretrained(self, path, *, overwrite=False):
        """Write the fitted model to the directory ``path`` (``config.json`` and
        ``model.safetensors``), loadable with :func:`sktransfer.load` without unpickling.
        A frozen pretrained backbone is stored as a reference plus a hash, not again."""
        from sktransfer._persistence.model_files import save_pretrained

        return save_pretrained(self, path, overwrite=overwrite)

    # ------------------------------------------------------------------ fit steps
    def _resolve_backbone(self, X) -> tuple[BackboneSpec, object]:
        """``(spec, source)``: source is the fitted estimator whose backbone is reused, or None."""
        if isinstance(self.backbone, str):
            return get_spec(self.backbone), None
        if isinstance(self.backbone, nn.Module):
            return module_spec(self.backbone, guess_modality(X)), None
        source = fitted_transfer_source(self.backbone)
        return source_spec(source), source

    def _adapter_params(self) -> dict:
        return {
            "augment": self.augment,
            "image_size": self.image_size,
            "max_length": self.max_length,
            "pooling": self.pooling,
            "long_text": self.long_text,
            "chunk_pooling": self.chunk_pooling,
        }

    def _build_adapter(self, spec: BackboneSpec, source):
        params = self._adapter_params()
        adapter_class(spec.modality).check_params(spec, params)
        if self.augment in ("mixup", "cutmix"):
            if self._loss_kind != "cross_entropy":
                raise ValueError(f"augment={self.augment!r} mixes class labels; it is for classifiers only.")
            if self.init is not None:
                raise ValueError(
                    f"augment={self.augment!r} mixes samples, but init= adds each sample's own source output. "
                    "Use augment='default' with init=, or drop init."
                )
        if source is not None:
            return source.adapter_.inherit(params)
        return adapter_class(spec.modality).from_params(spec, params)

    def _check_init(self):
        if self.init is None:
            return None
        check_fitted_source(self.init, "init")
        return self.init

    def _layers(self, spec: BackboneSpec, source) -> list[str] | None:
        if self.layers is None and source is not None:
            return source_module(source).stages  # the source's own knowledge base
        return resolve_layers(self.layers, spec.get_stages(), spec.name)

    def _is_pretrained(self, spec: BackboneSpec, source=None) -> bool:
        return source is not None or (bool(self.pretrained) and spec.weights is not None)

    def _build_module(self, spec, source, adapter, X_checked, n_outputs: int, device):
        """The TransferModule: the backbone (built, shared or copied), chosen stages, new head."""
        stages = self._layers(spec, source)
        pretrained = self._is_pretrained(spec, source)
        if self.strategy == "lora" and not spec.lora_targets:
            raise ValueError(no_targets_message(spec))  # before building anything
        if source is not None or isinstance(self.backbone, nn.Module):
            backbone = spec.build(pretrained=pretrained)
            weights = fingerprint_module(backbone) if source is not None else None
        else:
            # Only "head" fits share the pretrained copy; "lora" injects adapters into its own.
            frozen_on = device if self.strategy == "head" else None
            backbone, weights = build_backbone(spec, pretrained, frozen_on)
        pooling = adapter.pooling
        # A dry run on two samples: materialises lazy layers and checks the feature size.
        # Pretrained weights are deterministic, so one check per weights and preprocessing is enough.
        checked_key = (weights, adapter.fingerprint_parts(), pooling, tuple(stages or ()))
        feature_dim = _CHECKED_FEATURE_DIMS.get(checked_key) if weights else None
        if feature_dim is None:
            feature_dim = self._dry_run(backbone, pooling, stages, spec, adapter, X_checked)
            if weights:
                _CHECKED_FEATURE_DIMS[checked_key] = feature_dim
        declared = spec.get_feature_dim()
        if stages is None and declared and declared != feature_dim:
            raise ValueError(
                f"Backbone {spec.name!r} (plugin {spec.plugin or '?'}) returned features of size {feature_dim}, "
                f"but its spec declares feature_dim={declared}. Fix the plugin's BackboneSpec."
            )
        module = TransferModule(
            backbone, feature_dim, n_outputs, pooling, stages, spec.stage_outputs, zero_head=self.init is not None,
            chunk_pooling=adapter.chunk_pooling,
        )
        self._add_adapters(module, spec)
        self._freeze(module, spec, stages)
        return module, weights

    def _add_adapters(self, module, spec) -> None:
        """``strategy="lora"``: inject LoRA adapters into ``module``'s backbone (its own copy)
        on the modules ``spec.lora_targets`` names; other strategies add nothing."""
        if self.strategy == "lora":
            add_adapters(module.backbone, spec, self.lora_rank, self.lora_alpha)

    def _freeze(self, module, spec, stages) -> None:
        """Freeze ``module``'s backbone for ``strategy``, its blocks counted below the deepest stage."""
        blocks = spec.get_blocks(module.backbone)
        if stages:
            # Blocks above the deepest chosen stage get no gradient: "partial" and "gradual"
            # count from the deepest stage instead.
            blocks = blocks_feeding(blocks, stages[-1])
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

    @staticmethod
    def _dry_run(backbone, pooling, stages, spec, adapter, X_checked) -> int:
        # The probe's throwaway head draws from its own RNG stream: whether the dry run
        # happens (or the size was already known) can't change the seeded fit. The forward
        # pass stays on the seeded stream: it materialises a user module's lazy layers,
        # whose initial weights must come from the seed, not repeat the head's numbers
        # (forking the whole dry run would replay the same stream for both). It only
        # happens when the size is not cached, i.e. always for modules without weights.
        with torch.random.fork_rng(devices=[]):
            probe = TransferModule(backbone, 1, 1, pooling, stages, spec.stage_outputs,
                                   chunk_pooling=adapter.chunk_pooling)
        n = min(_DEFAULT_DRY_RUN, len(X_checked))
        dry = adapter.dataset(X_checked)
        X_dry, _ = adapter.collate_fn([dry[i] for i in range(n)])
        was_training = backbone.training
        probe.eval()
        try:
            with torch.no_grad():
                args, kwargs = call_args(X_dry)
                out = probe.features(*args, **kwargs)
        except Exception as exc:
            if stages is None:
                raise
            raise ValueError(
                f"Backbone {spec.name!r} could not return its stages {stages}: {exc!r}. Use layers=None, or "
                "other stages."
            ) from exc
        finally:
            backbone.train(was_training)
        return int(out.shape[1])

    def _frozen_training_data(self, module, spec, adapter, X_checked, target_dict, weights, device, fast):
        """Frozen backbone, no augmentation: one backbone pass (rows seen by earlier fits
        come from the cache), then every epoch runs on features."""
        module.to(device)
        store = get_store(self.feature_cache) if adapter.shares_features else None
        if store is None:
            features = extract_features(module, adapter.dataset(X_checked), adapter.collate_fn, self.batch_size,
                                        device, fast)
            return feature_dataset(features, target_dict), None
        fingerprint = backbone_fingerprint(
            spec, weights or fingerprint_module(module.backbone), *adapter.fingerprint_parts()
        )
        all_stages = spec.get_stages() if module.stages is not None else None
        features = cached_features(module, adapter, X_checked, self.batch_size, device, store, fingerprint, fast,
                                   all_stages)
        return feature_dataset(features, target_dict), fingerprint

    def _backbone_lr(self, spec, source=None) -> float:
        if self.backbone_lr is not None:
            return self.backbone_lr
        if self.strategy == "lora":
            return self.lr  # adapters start at zero: no pretrained knowledge to protect with a smaller step
        # Pretrained transformers get a 10x smaller step (larger ones forget what they
        # learned); CNNs moving to a new image domain need the full step: on 1,000
        # Fashion-MNIST images EfficientNet-Lite0 reached 0.802 with lr/10 and 0.869 with lr.
        if not self._is_pretrained(spec, source):
            return self.lr
        return self.lr * adapter_class(spec.modality).pretrained_backbone_lr_factor

    def _param_groups(self, module, spec, source) -> list:
        """Discriminative learning rates: the backbone's, decayed block by block from the top."""
        backbone_lr = self._backbone_lr(spec, source)
        if self.layer_decay is None or not module.blocks:
            return [("backbone.*", {"lr": backbone_lr})]
        groups = [
            (f"backbone.{name}.*", {"lr": backbone_lr * self.layer_decay**depth})
            for depth, name in enumerate(reversed(module.blocks))
        ]
        # Parameters outside every block (embeddings, position tables) sit below the first block.
        groups.append(("backbone.*", {"lr": backbone_lr * self.layer_decay ** len(module.blocks)}))
        return groups

    def _validation_fraction(self):
        if self.validation_fraction is None and self.patience is not None:
            return 0.1  # early stopping needs a validation split
        return self.validation_fraction

    def _build_callbacks(self, module) -> list:
        from skorch.callbacks import EarlyStopping, ProgressBar

        from sktransfer._training.callbacks import (
            FiniteLossGuard,
            GradualUnfreezing,
            WarmupLRScheduler,
        )

        callbacks = [
            ("finite_loss", FiniteLossGuard()),
            ("lr_schedule", WarmupLRScheduler(self.lr_schedule, self.warmup_fraction)),
        ]
        if self.strategy == "gradual":
            callbacks.append(("gradual_unfreezing", GradualUnfreezing(module.blocks)))
        if self.patience is not None:
            callbacks.append(
                ("early_stopping", EarlyStopping(monitor="valid_loss", patience=self.patience, load_best=True))
            )
        if self.verbose and (self.accelerator is None or self.accelerator.is_local_main_process):
            callbacks.append(("progress_bar", ProgressBar()))  # one bar per machine, as the epoch lines
        return self._merge_user_callbacks(callbacks)

    def _merge_user_callbacks(self, callbacks: list) -> list:
        """Ours plus ``net_params["callbacks"]``: the user's are added, not put in place
        of the schedule and early stopping; a user callback named like one of ours
        (``("lr_schedule", ...)``) replaces that one. The user's objects are copied, so
        fitting never changes them (the fitted ones are in ``net_.callbacks_``)."""
        user = (self.net_params or {}).get("callbacks") or []
        if not isinstance(user, (list, tuple)):
            raise TypeError(
                f"net_params['callbacks'] must be a list of skorch callbacks or (name, callback) pairs, got "
                f"{type(user).__name__}."
            )
        merged, unnamed = dict(callbacks), []
        for item in copy.deepcopy(list(user)):
            if isinstance(item, tuple):
                name, callback = item
                merged[name] = callback
            else:
                unnamed.append(item)  # skorch names it after its class
        return [*merged.items(), *unnamed]

    def _optimizer_class(self):
        if isinstance(self.optimizer, str):
            return getattr(torch.optim, OPTIMIZERS[self.optimizer])
        if not issubclass(self.optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be one of {sorted(OPTIMIZERS)} or a torch.optim.Optimizer subclass.")
        return self.optimizer

    def _build_net(self, module, adapter, param_groups, seed, device, on_features: bool, fast, fitted: dict):
        """The skorch net; ``fitted`` (what the targets gave) sets the loss and the split."""
        from skorch.dataset import ValidSplit

        fraction = self._validation_fraction()
        collate = FeatureAwareCollate(adapter.collate_fn)
        kwargs = dict(
            module=module,
            criterion=WeightedLoss,
            optimizer=self._optimizer_class(),
            lr=self.lr,
            optimizer__weight_decay=self.weight_decay,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            train_split=None
            if fraction is None
            else ValidSplit(fraction, stratified=self._stratified(fitted), random_state=seed),
            iterator_train__shuffle=True,
            iterator_train__collate_fn=self._train_collate(collate, module, fitted),
            iterator_valid__collate_fn=collate,
            iterator_train__num_workers=0 if on_features else fast.num_workers,
            iterator_valid__num_workers=0 if on_features else fast.num_workers,
            iterator_train__pin_memory=fast.pin_memory,
            iterator_valid__pin_memory=fast.pin_memory,
            callbacks=self._build_callbacks(module),
            device=device,
            verbose=int(self.verbose),
            compile=bool(self.compile),
            amp_dtype=fast.amp_dtype,
            grad_scaler=fast.grad_scaler,
        )
        if param_groups is not None:
            kwargs["optimizer__param_groups"] = param_groups
        kwargs.update(self._criterion_params(fitted))
        net_class = TransferNet
        if self.accelerator is not None:
            # Accelerate places the module (device=None); the epoch lines come from each
            # machine's main process only (skorch's PrintLog passes every line to a sink
            # other than print, whatever the verbosity).
            net_class = accelerated_net_class()
            sink = print_on_main if self.verbose else print
            kwargs.update(accelerator=self.accelerator, device=None, callbacks__print_log__sink=sink)
        kwargs.update({key: value for key, value in (self.net_params or {}).items() if key != "callbacks"})
        return net_class(**kwargs)

    def _criterion_params(self, fitted: dict) -> dict:
        """skorch's ``criterion__*`` settings of :class:`WeightedLoss` for the targets ``fitted`` describes."""
        return {"criterion__kind": self._loss_kind}

    def _stratified(self, fitted: dict) -> bool:
        """Whether the validation split is stratified by the targets."""
        return False

    def _train_collate(self, collate, module, fitted: dict):
        return collate

    def _sample_weight(self, sample_weight, n: int, class_weight) -> np.ndarray:
        weight = _check_sample_weight(sample_weight, np.empty(n), dtype=np.float32, ensure_non_negative=True)
        weight = weight * class_weight
        total = weight.sum()
        if not total > 0:
            raise ValueError("sample_weight sums to zero: give at least one sample a positive weight.")
        return (weight * (n / total)).astype(np.float32)  # mean 1: rescaling the weights changes nothing

    def _init_answers(self, init, X, y):
        """How ``init`` answers for the training rows: its own predictions, or with
        ``init_cv``, out-of-fold predictions of clones fitted on the other folds (as
        scikit-learn's stacking does), so that the correction learns the residuals
        ``init`` makes on rows it has not seen, not on its own training rows."""
        if self.init_cv is None:
            return None
        from sklearn.base import clone, is_classifier
        from sklearn.model_selection import check_cv, cross_val_predict

        estimator = unwrap_frozen(init)
        cv = check_cv(self.init_cv, y, classifier=is_classifier(estimator))
        return lambda method: cross_val_predict(clone(estimator), X, y, cv=cv, method=method)

    def _source_offsets(self, init, X, n: int, fitted: dict, answers=None) -> np.ndarray:
        """The ``init`` model's output for ``X`` in the network's output space, checked.

        ``answers(method)`` replaces ``getattr(init, method)(X)`` (``init_cv``)."""
        answers = answers or (lambda method: getattr(init, method)(X))
        offsets = np.asarray(self._source_outputs(init, answers, fitted), dtype=np.float64)
        expected = (n, fitted["n_outputs_"])
        if offsets.shape != expected or not np.isfinite(offsets).all():
            raise ValueError(
                f"init={type(unwrap_frozen(init)).__name__}(...) gave outputs of shape {offsets.shape}"
                f"{'' if np.isfinite(offsets).all() else ' with NaN or infinite values'}; expected finite values of "
                f"shape {expected}. init must be fitted on the same kind of X and y as this estimator."
            )
        return offsets.astype(np.float32)

    # ------------------------------------------------------------------ predict
    def _forward(self, X) -> np.ndarray:
        """Raw outputs (logits or standardised targets) for X, batch by batch."""
        check_is_fitted(self)
        check_samples(X)
        X_checked = self.adapter_.check(X, estimator=self, reset=False)
        fingerprint = self.feature_fingerprint_
        store = get_store(self.feature_cache) if fingerprint is not None else None
        if isinstance(self.adapter_, FusedInput):
            dataset = self.adapter_.dataset(
                X_checked, self.net_.module_, batch_size=self.batch_size, device=self.device_, fast=self.fast_path_,
                feature_cache=self.feature_cache,
            )
        elif store is not None:
            # A frozen backbone: reuse (or add) cached features and run only the head.
            module = self.net_.module_
            all_stages = self.spec_.get_stages() if self.layers_ is not None else None
            features = cached_features(
                module, self.adapter_, X_checked, self.batch_size, self.device_, store, fingerprint,
                self.fast_path_, all_stages,
            )
            dataset = feature_dataset(features, None)
        else:
            dataset = self.adapter_.dataset(X_checked)
        out = self.net_.forward(dataset, training=False, device="cpu").numpy()
        if self.init_ is not None:
            out = out + self._source_offsets(self.init_, X, len(out), self._fitted_outputs())
        check_finite_outputs(out)
        return out

    def _fitted_outputs(self) -> dict:
        return {"n_outputs_": self.n_outputs_}

    def __sklearn_is_fitted__(self):
        return hasattr(self, "net_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        modality = modality_of(self.backbone)
        return tags if modality is None else adapter_class(modality).update_tags(tags)

    # An Accelerator is this process's handle on the process group, holding every model
    # it prepared: clones share it (scikit-learn's clone would deep-copy it, and with it
    # those models), and pickles leave it out (accelerator=None once loaded).
    def __sklearn_clone__(self):
        if self.accelerator is None:
            return super().__sklearn_clone__()
        from sklearn.base import clone

        params = {name: clone(value, safe=False) for name, value in self.get_params(deep=False).items()
                  if name != "accelerator"}
        return type(self)(**params, accelerator=self.accelerator)

    def __getstate__(self):
        state = super().__getstate__()
        if state.get("accelerator") is not None:
            state = {**state, "accelerator": None}
        return state

    # skorch's DeviceWarning handles loading a GPU-fitted net on a CPU machine; the
    # fitted device is kept in sync so the estimator's own tensors follow.
    def __setstate__(self, state):
        self.__dict__.update(state)
        if hasattr(self, "net_") and str(self.net_.device) != self.device_:
            # Loaded where the fitting device is missing (a GPU model on a CPU-only
            # machine): skorch mapped the tensors; the fast path follows the new device.
            self.device_ = str(self.net_.device)
            modality = "image" if self.spec_ is None else self.spec_.modality  # fused: as if an image branch
            self.fast_path_ = fast_path(self.device_, "auto", modality)
            self.net_.amp_dtype = self.fast_path_.amp_dtype
            self.net_.grad_scaler = self.fast_path_.grad_scaler
            module = getattr(self.net_.module_, "_orig_mod", self.net_.module_)
            module.channels_last = self.fast_path_.channels_last
            if not module.channels_last:
                module.to(memory_format=torch.contiguous_format)
