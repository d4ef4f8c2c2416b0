"""_TransferBase: the estimators' orchestration. Parameters, validation, the rollback of a
failed fit, targets, and the scikit-learn protocol; every build step is the build path's
(``sktransfer._build``), every training piece the training layer's.

``fit`` runs, in order: validate, prepare the branches (resolve each backbone, make
its input adapter, check the data), encode the targets, build the model (one branch
with a head, or several fused), make the training data and the skorch net, train,
and set the fitted state in one place.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import (
    _check_sample_weight,
    check_consistent_length,
    check_is_fitted,
)

from sktransfer._build.branch import make_adapter, resolve_backbone, tune_body
from sktransfer._build.fusion import (
    branch_table,
    check_fusion_params,
    is_fused,
    prepare_fused,
)
from sktransfer._build.model import (
    BuiltModel,
    PreparedBranch,
    build_model,
    model_fast_path,
    training_data,
)
from sktransfer._build.param_checks import StrictParams, plain_numbers
from sktransfer._build.settings import BranchSettings
from sktransfer._build.sources import modality_of
from sktransfer._estimators.fusion import FusionMixin
from sktransfer._estimators.init_offsets import check_init, out_of_fold_answers
from sktransfer._estimators.init_outputs import source_offsets
from sktransfer._estimators.params import TRANSFER_PARAMETERS
from sktransfer._estimators.pickling import ClonePickleMixin
from sktransfer._estimators.probe import probe_head, with_probe_layers
from sktransfer._estimators.sharing import SharingMixin
from sktransfer._estimators.targets import check_class_labels
from sktransfer._features.extraction import FeatureDataset, feature_dataset, frozen_features, inference_subset
from sktransfer._features.progress import shows_progress
from sktransfer._inputs import adapter_class
from sktransfer._inputs.augment import mixes_batches
from sktransfer._inputs.checks import check_samples
from sktransfer._inputs.fused import FusedInput, check_columns
from sktransfer._training.accelerate import (
    accelerated_fast_path,
    check_accelerator,
    shared_seed,
    weights_device,
)
from sktransfer._training.budget import planned_epochs, planned_wise_alpha
from sktransfer._training.devices import check_device, resolve_device
from sktransfer._training.net import FitInterrupted, draw_seed, forward_outputs, release_accelerator_memory
from sktransfer._training.net_factory import converges, make_net
from sktransfer._training.preflight import batchnorm_drop_last, check_validation_split
from sktransfer._training.scoring import validation_metric
from sktransfer._training.strategies import make_strategy
from sktransfer.exceptions import NonFiniteOutputError


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


def unwrapped(net):
    """The net's module, through torch.compile's wrapper."""
    return getattr(net.module_, "_orig_mod", net.module_)


def normalised_weights(sample_weight, n: int, class_weight) -> np.ndarray:
    """Per-sample weights times class weights, rescaled to mean 1."""
    weight = _check_sample_weight(sample_weight, np.empty(n), dtype=np.float32, ensure_non_negative=True)
    weight = weight * class_weight
    total = weight.sum()
    if not total > 0:
        raise ValueError("sample_weight sums to zero: give at least one sample a positive weight.")
    return (weight * (n / total)).astype(np.float32)  # mean 1: rescaling the weights changes nothing


def check_batch_mixing(augment, loss_kind: str, init) -> None:
    """MixUp and CutMix mix class labels and samples: classifiers only, and not with ``init=``."""
    if not mixes_batches(augment):
        return None
    if loss_kind != "cross_entropy":
        raise ValueError(f"augment={augment!r} mixes class labels; it is for classifiers only.")
    if init is not None:
        raise ValueError(
            f"augment={augment!r} mixes samples, but init= adds each sample's own source output. "
            "Use augment='default' with init=, or drop init."
        )


def fitted_state(estimator) -> dict:
    """What a model file stores of a fitted classifier or regressor (``__sktransfer_state__``)."""
    check_is_fitted(estimator)
    module = unwrapped(estimator.net_)
    fitted = {name: getattr(estimator, name) for name in
              (*estimator._target_attributes, "n_features_in_", "feature_names_in_") if hasattr(estimator, name)}
    if isinstance(estimator.adapter_, FusedInput):
        branches = [dict(name=b.name, column=b.column, spec=b.spec, adapter=b.adapter, inputs=b.columns,
                         module=module.branches[b.key], width=dim)
                    for b, dim in zip(estimator.adapter_.branches, module.dims)]
        return {"module": module, "branches": branches, "fitted": fitted, "mapped": estimator.adapter_.mapped}
    branch = dict(name=None, column=None, spec=estimator.spec_, adapter=estimator.adapter_, inputs=estimator, module=module,
                  width=module.head.in_features)
    return {"module": module, "branches": [branch], "fitted": fitted, "mapped": False}


class _TransferBase(StrictParams, ClonePickleMixin, FusionMixin, SharingMixin, BaseEstimator):
    """Shared machinery of :class:`TransferClassifier` and :class:`TransferRegressor`."""

    _parameter_constraints: dict = TRANSFER_PARAMETERS
    #: A fitted estimator of this kind can be another model's ``backbone=``.
    reusable_as_backbone = True
    #: The loss the targets train with (``WeightedLoss``'s ``kind``); subclasses set it.
    _loss_kind: str

    def __init__(
        self,
        backbone,
        *,
        pretrained=True,
        strategy="full",
        trainable_blocks=1,
        lora_rank=8,
        lora_alpha=None,
        contrastive_iterations=20,
        layers=None,
        init=None,
        init_cv=None,
        lr=1e-3,
        backbone_lr=None,
        layer_decay=None,
        head_epochs="auto",
        wise_alpha="auto",
        head_solver="lbfgs",
        C=1.0,
        lr_schedule="cosine",
        warmup_fraction=0.1,
        max_epochs="auto",
        batch_size=32,
        optimizer="adamw",
        weight_decay=0.01,
        validation_fraction=None,
        patience=None,
        early_stopping_metric="loss",
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
        self.contrastive_iterations = contrastive_iterations
        self.layers = layers
        self.init = init
        self.init_cv = init_cv
        self.lr = lr
        self.backbone_lr = backbone_lr
        self.layer_decay = layer_decay
        self.head_epochs = head_epochs
        self.wise_alpha = wise_alpha
        self.head_solver = head_solver
        self.C = C
        self.lr_schedule = lr_schedule
        self.warmup_fraction = warmup_fraction
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.early_stopping_metric = early_stopping_metric
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

    # ------------------------------------------------------------ hooks of the subclasses
    def _encode_targets(self, y) -> tuple:
        """``(targets, fitted, stratify, class_weight)``: the encoded training targets, the
        fitted attributes they give (``n_outputs_`` and the target encoding), the labels
        that stratify a validation split (or None), and per-sample class weights."""
        raise NotImplementedError

    def _source_outputs(self, init, answers, fitted: dict) -> np.ndarray:
        """``init``'s answers (``answers(method)``) in the network's output space."""
        raise NotImplementedError

    def _fitted_outputs(self) -> dict:  # what _source_outputs reads at predict time
        return {"n_outputs_": self.n_outputs_}

    def _criterion_params(self, fitted: dict) -> dict:
        """skorch's ``criterion__*`` settings of ``WeightedLoss`` for the targets ``fitted`` describes."""
        return {"criterion__kind": self._loss_kind}

    def _stratified(self, fitted: dict) -> bool:  # whether the validation split is stratified
        return False

    def _train_collate(self, module, fitted: dict):
        """A wrapper of the training batches' collate (MixUp, CutMix), or None."""
        return None

    #: Fitted attributes that describe the target encoding (saved in model files).
    _target_attributes: tuple = ("n_outputs_",)

    # ------------------------------------------------------------------ fit
    @shows_progress
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
        params = plain_numbers(self.get_params(deep=False))  # numpy numbers from a search grid work too
        check_device(self.device)
        check_accelerator(self.accelerator, self, make_strategy(self.strategy))
        check_samples(X)
        fused = is_fused(self.backbone)
        init = check_init(self.init)
        for attr in ("n_features_in_", "feature_names_in_"):
            self.__dict__.pop(attr, None)
        prepared = self._prepare_fused(X, params) if fused else [self._prepare_single(X, params)]
        n = len(prepared[0].X_checked)
        target_dict, fitted, stratify = self._targets(X, n, y, sample_weight, init)
        fitted["n_samples_fit_"] = n
        seed = self._seed()
        probe = None if fused else probe_head(self, X, y, sample_weight, prepared[0], seed)
        prepared, probe_only = with_probe_layers(prepared, probe), probe is not None and probe.final
        params["wise_alpha"] = 1.0 if probe_only else planned_wise_alpha(
            params, n, probed=probe is not None, trains_body=not all(p.settings.strategy.frozen_backbone for p in prepared))

        device = self._fit_device()
        release_accelerator_memory(device)  # what earlier fits (search candidates) left behind
        fast = model_fast_path(device, self.precision, prepared)
        fast = fast if self.accelerator is None else accelerated_fast_path(fast)
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            model = build_model(prepared, fused=fused, n_outputs=fitted["n_outputs_"], zero_head=init is not None,
                                fusion=self.fusion, mapped=isinstance(self.backbone, Mapping),
                                remainder=self.remainder, device=device, fast=fast, feature_cache=self.feature_cache)
            if probe is not None:
                model.module.head.load_state_dict(probe.head)
            # The budget in steps needs the training size and whether the head is solved full-batch.
            solved = model.on_features and converges(params)
            params["max_epochs"] = planned_epochs(params, n, full_batch=solved, probe_only=probe_only)
            if solved and fused:
                model.module.fix_norms()
            train_params = {}
            for p, branch in zip(prepared, model.branches):  # before any training
                train_params.update(batchnorm_drop_last(params, p.settings.strategy, branch.module, n))
            for p, branch in zip(prepared, model.branches):  # contrastive tuning: before the features
                tune_body(branch, p.X_checked, target_dict, device=device, fast=fast, seed=seed,
                          feature_cache=self.feature_cache)
            kind = self._criterion_params(fitted)["criterion__kind"]  # multi-label: binary, no metric
            metric = None if init is not None else validation_metric(kind, target_dict["target"])
            net = self._make_net(params, model, seed, device, fast, fitted, metric)
            net.set_params(**train_params)
            if probe_only:  # the probe is the fit: no epoch to run, nor training features to compute
                net.initialize()
            else:
                net.fit(training_data(model, prepared, target_dict, batch_size=params["batch_size"], device=device,
                                      fast=fast, feature_cache=self.feature_cache), stratify)
        self._set_fitted(model, net, device, fast, init, fitted)
        return self

    def _prepare_single(self, X, params) -> PreparedBranch:
        settings = BranchSettings.from_params(params)
        spec, source = resolve_backbone(self.backbone, X)
        check_batch_mixing(self.augment, self._loss_kind, self.init)
        adapter = make_adapter(spec, source, settings)
        X_checked = adapter.check(X, estimator=self, reset=True)
        if source is None:
            adapter.fit(X_checked)
        return PreparedBranch(None, None, settings, spec, source, adapter, None, X_checked)

    def _prepare_fused(self, X, params) -> list[PreparedBranch]:
        table = branch_table(self.backbone)
        check_fusion_params(params, table)
        if isinstance(self.backbone, Mapping):
            columns = check_columns(X, [column for _, column, _ in table], self.remainder)
            self.feature_names_in_ = np.asarray(columns, dtype=object)
            self.n_features_in_ = len(columns)
        return prepare_fused(params, X, table)

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
        check_validation_split(plain_numbers(self.get_params(deep=False)), n, stratify, fitted.get("classes_"))
        target_dict = {"target": targets, "weight": normalised_weights(sample_weight, n, class_weight)}
        if init is not None:
            # The source model runs once per fit; its output rides along with the targets.
            answers = out_of_fold_answers(init, self.init_cv, X, y)
            target_dict["offset"] = source_offsets(self._source_outputs, init, X, n, fitted, answers)
        return target_dict, fitted, stratify

    def _seed(self) -> int | None:
        seed = draw_seed(self.random_state)
        return seed if self.accelerator is None else shared_seed(self.accelerator, seed)

    def _fit_device(self) -> str:
        """The device the fit builds on: the Accelerator's (this process's GPU), or ``device``."""
        return resolve_device(self.device) if self.accelerator is None else str(self.accelerator.device)

    def _make_net(self, params: dict, model: BuiltModel, seed, device, fast, fitted: dict, metric=None):
        single = None if model.fused else model.branches[0]
        strategy_callbacks = [] if single is None else single.settings.strategy.callbacks(single.module)
        return make_net(
            params, model.module, model.inputs.collate_fn,
            param_groups=None if model.on_features else model.param_groups, seed=seed, device=device,
            on_features=model.on_features, fast=fast, strategy_callbacks=strategy_callbacks,
            criterion_params=self._criterion_params(fitted), stratified=self._stratified(fitted),
            train_collate=self._train_collate(model.module, fitted), metric=metric,
        )

    def _set_fitted(self, model: BuiltModel, net, device, fast, init, fitted: dict) -> None:
        """Every fitted attribute, set in one place once training succeeded (or a model loaded)."""
        # Left in eval mode: every predict path restores the mode it found, so threads
        # predicting at once can never flip the module back into training (BatchNorm
        # batch statistics, dropout) under each other.
        net.module_.eval()
        single = None if model.fused else model.branches[0]
        self.spec_ = None if single is None else single.spec
        self.adapter_ = model.inputs
        self.net_ = net
        # Accelerate chose the device: where the weights ended up.
        self.device_ = device if self.accelerator is None else weights_device(net.module_)
        self.fast_path_ = fast
        self.feature_fingerprint_ = None if single is None else single.fingerprint
        self.layers_ = None if single is None else single.module.stages
        self.init_ = init
        for key, value in fitted.items():
            setattr(self, key, value)

    # ------------------------------------------------------------------ model files
    # The two halves of the persistence protocol (sktransfer._persistence): what this
    # fitted estimator declares of itself, and how a model rebuilt by the build path
    # becomes a fitted estimator, as fit makes one.
    def __sktransfer_state__(self) -> dict:
        """The fitted state a model file stores: the module, each branch and the targets' encoding."""
        return fitted_state(self)

    def __sktransfer_restore__(self, model: BuiltModel, fitted: dict, device: str, fast):
        """Become the fitted estimator of a model the build path rebuilt (``sktransfer.load``)."""
        self._validate_params()
        params = plain_numbers(self.get_params(deep=False))
        # A loaded model doesn't train: the number only completes the net's settings.
        params["max_epochs"] = planned_epochs(params, 0, full_batch=True)
        params["wise_alpha"] = 1.0
        net = self._make_net(params, model, self._seed(), device, fast, fitted)
        net.initialize()
        # A model file's init= model (sktransfer.load rebuilt it first) is set as the parameter.
        self._set_fitted(model, net, device, fast, self.init, fitted)
        return self

    # ------------------------------------------------------------------ predict
    @shows_progress
    def _forward(self, X) -> np.ndarray:
        """Raw outputs (logits or standardised targets) for X, batch by batch."""
        check_is_fitted(self)
        check_samples(X)
        X_checked = self.adapter_.check(X, estimator=self, reset=False)
        restore = None
        if isinstance(self.adapter_, FusedInput):
            dataset = self.adapter_.dataset(
                X_checked, self.net_.module_, batch_size=int(self.batch_size), device=self.device_,
                fast=self.fast_path_, feature_cache=self.feature_cache,
            )
        elif self.feature_fingerprint_ is not None:
            # A frozen backbone: reuse (or add) cached features and run only the head.
            features = frozen_features(self.net_.module_, self.spec_, self.adapter_, X_checked,
                                       fingerprint=self.feature_fingerprint_, batch_size=int(self.batch_size),
                                       device=self.device_, fast=self.fast_path_, feature_cache=self.feature_cache)
            dataset = feature_dataset(features, None)
        else:
            # In the adapter's inference order (texts by length: less padding), outputs put back below.
            dataset, restore = inference_subset(self.adapter_, X_checked, self.adapter_.dataset(X_checked))
        quick = isinstance(dataset, FeatureDataset)  # only the head runs: no bar
        out = forward_outputs(self.net_, dataset, None if quick else "predicting").numpy()
        if restore is not None:
            out = out[restore]
        if self.init_ is not None:
            out = out + source_offsets(self._source_outputs, self.init_, X, len(out), self._fitted_outputs())
        check_finite_outputs(out)
        return out

    def __sklearn_is_fitted__(self):
        return hasattr(self, "net_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        modality = modality_of(self.backbone)
        return tags if modality is None else adapter_class(modality).update_tags(tags)
