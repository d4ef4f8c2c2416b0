"""TransferEmbedder: a backbone's frozen features as a scikit-learn transformer.

``fit`` resolves the backbone (a name, a module or a fitted TransferClassifier /
TransferRegressor), builds it frozen, and learns the feature size from a dry run on
two samples: it trains nothing and doesn't run the backbone over ``X``. ``transform``
returns the features from the shared feature cache, keyed exactly as the estimators'
frozen features (``strategy="head"``), so an embedder and a frozen estimator on the
same backbone and rows compute each row once between them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from numbers import Integral

import numpy as np
import torch
import torch.nn as nn
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted

from sktransfer._build.branch import build_branch, make_adapter, resolve_backbone
from sktransfer._build.fusion import REMAINDERS, branch_table, is_fused
from sktransfer._build.param_checks import StrictParams
from sktransfer._build.settings import BranchSettings
from sktransfer._build.sources import (
    modality_of,
)
from sktransfer._estimators.sharing import SharingMixin
from sktransfer._features.extraction import frozen_features
from sktransfer._features.progress import shows_progress
from sktransfer._inputs import adapter_class
from sktransfer._inputs.checks import check_samples
from sktransfer._inputs.fused import check_columns, select
from sktransfer._inputs.text import CHUNK_POOLING, LONG_TEXT
from sktransfer._training.devices import check_device, resolve_device
from sktransfer._training.net import PRECISIONS, draw_seed, fast_path

_DRY_RUN = 2


def feature_prefix(name: str) -> str:
    """An identifier-safe prefix for feature names: ``"all-MiniLM-L6-v2"`` -> ``"all_minilm_l6_v2"``."""
    prefix = re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_") or "feature"
    return prefix if prefix[0].isalpha() else f"f_{prefix}"


class TransferEmbedder(StrictParams, SharingMixin, TransformerMixin, BaseEstimator):
    """The frozen features of a pretrained backbone, as a scikit-learn transformer.

    ``transform`` returns one row of backbone features per sample: the backbone's own
    final features, or its chosen stages (``layers``), each pooled and concatenated,
    exactly what ``TransferClassifier(backbone, strategy="head")`` trains its head on.
    They come from the shared feature cache, so the rows of a cross-validation fold, a
    search candidate or a frozen estimator on the same backbone are computed once.
    ``fit`` downloads and trains nothing: it builds the frozen backbone and checks its
    output size on two samples.

    Parameters
    ----------
    backbone : str, torch.nn.Module, fitted TransferClassifier / TransferRegressor, list or dict
        A registered backbone name (see :func:`sktransfer.list_backbones`), a module
        returning ``(N, D)`` features (copied, never changed), or a fitted estimator of
        this library (in :class:`sklearn.frozen.FrozenEstimator` inside a search): its
        fine-tuned backbone, preprocessing, pooling and ``layers``. A list embeds ``X``
        with each backbone; a dict maps DataFrame columns to backbones (``"passthrough"``
        for numeric columns), as the estimators' fusion does. Their features are
        concatenated, branch by branch. Entries may be :class:`sktransfer.Branch` objects,
        whose ``layers`` and ``pretrained`` apply.
    pretrained : bool, default=True
        Load the backbone's pretrained weights (never downloaded). ``False`` gives a
        random initialisation, seeded by ``random_state``.
    layers : str, int or list of them, default=None
        Stages whose pooled outputs are concatenated (stage names or negative integers
        from the top, see :func:`sktransfer.list_stages`). ``None``: the backbone's final
        features (a fitted source's own ``layers``).
    image_size : int, default=None
        Input size for image backbones; ``None`` uses the pretrained configuration.
    max_length : int, default=None
        Token limit for text backbones; ``None`` uses the backbone's default.
    pooling : {"auto", "mean", "cls"}, default="auto"
        Token pooling for text backbones; ``"auto"`` is mean pooling (a fitted source's
        pooling).
    long_text : {"truncate", "chunk"}, default="truncate"
        Text backbones: texts longer than ``max_length`` tokens are truncated, or split
        into overlapping windows (a quarter window shared, at most 16 per text) whose
        features are pooled by ``chunk_pooling``, as in :class:`TransferClassifier`.
    chunk_pooling : {"mean", "max"}, default="mean"
        With ``long_text="chunk"``: a text's row is the mean or the elementwise maximum
        of its windows' features. Ignored with ``"truncate"``.
    batch_size : int, default=32
        Samples per backbone batch in ``transform``.
    device : str or torch.device, default="auto"
        ``"auto"`` picks CUDA when available, else the CPU.
    precision : {"auto", "fp32", "bf16", "fp16"}, default="auto"
        Autocast for the backbone pass; ``"auto"`` is bf16 (or fp16) on CUDA, fp32 on the CPU.
    feature_cache : "memory", path, FeatureStore or None, default="memory"
        Where features are shared: the process-wide in-memory store, a directory
        (an SQLite file shared by the processes of one machine; keep it off network
        file systems), a store object with ``get_many`` and ``put_many``
        (:class:`FeatureStore`; :class:`FsspecFeatureStore` shares rows between
        machines), or ``None`` to recompute on every ``transform``. Tabular
        input is never cached (it is standardised with each fit's statistics).
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation of backbones without pretrained weights
        (``pretrained=False``, ``"mlp"``) and of a module's lazy layers; pretrained
        weights don't depend on it.
    remainder : {"error", "drop"}, default="error"
        With a column mapping: columns of ``X`` that are not mapped raise an error, or
        are dropped (as in :class:`sklearn.compose.ColumnTransformer`).
    verbose : int, default=0
        ``1`` or more shows a progress bar on stderr while ``transform`` computes features
        (when stderr is a terminal, or ``SKTRANSFER_PROGRESS=1``).

    Attributes
    ----------
    spec_ : BackboneSpec
        The backbone's spec.
    adapter_ : object
        Validates and feeds inputs (image transforms, tokenizer or scaler).
    module_ : torch.nn.Module
        The frozen feature extractor, in eval mode: ``module_.features(...)`` is one
        row per sample. A pretrained backbone is shared, read-only, with the frozen
        fits of this process.
    layers_ : list of str or None
        The stages, by name, or ``None`` for the final features.
    n_features_out_ : int
        Features per sample (all stages together).
    device_ : str
        The device the backbone runs on.
    n_features_in_, feature_names_in_ :
        For tabular backbones and column mappings, as in scikit-learn.
    branches_ : list of (name, column, TransferEmbedder)
        With several backbones: one fitted embedder per branch (``column`` is ``None``
        for a list); the attributes above then describe the branches, not this object.

    Notes
    -----
    Feature names (:meth:`get_feature_names_out`) are ``f"{prefix}_{i}"``, where the
    prefix is the backbone's name lowercased with every run of other characters than
    letters and digits turned into ``_`` (``"all_minilm_l6_v2_0"``, ...;
    a module's class name, a fitted source's backbone name), and, with ``layers``,
    ``f"{prefix}_{stage}_{i}"`` with ``i`` counted within each stage
    (``"efficientnet_lite0_blocks_4_0"``, ...). With several backbones each branch's
    names are prefixed by the branch name, as a ColumnTransformer does:
    ``"caption__all_minilm_l6_v2_0"``.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from sktransfer import TransferEmbedder
    >>> model = make_pipeline(TransferEmbedder("all-MiniLM-L6-v2"), LogisticRegression())  # doctest: +SKIP
    >>> model.fit(["good", "bad", "great", "awful"], [1, 0, 1, 0]).predict(["fine"])  # doctest: +SKIP
    """

    __sktransfer_kind__ = "embedder"  # model files: an embedder, not a classifier or regressor
    _parameter_constraints: dict = {
        "backbone": [str, nn.Module, HasMethods(["fit", "predict"]), list, tuple, dict],
        "remainder": [StrOptions(set(REMAINDERS))],
        "pretrained": ["boolean"],
        "layers": [str, Integral, list, tuple, None],
        "image_size": [Interval(Integral, 8, None, closed="left"), None],
        "max_length": [Interval(Integral, 1, None, closed="left"), None],
        "pooling": [StrOptions({"auto", "mean", "cls"})],
        "long_text": [StrOptions(set(LONG_TEXT))],
        "chunk_pooling": [StrOptions(set(CHUNK_POOLING))],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [str, torch.device],
        "precision": [StrOptions(set(PRECISIONS))],
        "feature_cache": [StrOptions({"memory"}), str, os.PathLike, HasMethods(["get_many", "put_many"]), None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        backbone,
        *,
        pretrained=True,
        layers=None,
        image_size=None,
        max_length=None,
        pooling="auto",
        long_text="truncate",
        chunk_pooling="mean",
        batch_size=32,
        device="auto",
        precision="auto",
        feature_cache="memory",
        random_state=None,
        remainder="error",
        verbose=0,
    ):
        self.backbone = backbone
        self.pretrained = pretrained
        self.layers = layers
        self.image_size = image_size
        self.max_length = max_length
        self.pooling = pooling
        self.long_text = long_text
        self.chunk_pooling = chunk_pooling
        self.batch_size = batch_size
        self.device = device
        self.precision = precision
        self.feature_cache = feature_cache
        self.random_state = random_state
        self.remainder = remainder
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None):
        """Build the frozen backbone for ``X``'s modality; nothing is trained.

        Only two samples of ``X`` run through the backbone (to learn the feature size);
        tabular ``X`` also fits the standardisation.

        Parameters
        ----------
        X : array-like, list of PIL images or file paths, or list or Series of str
            Samples in the backbone's modality.
        y : None
            Ignored.

        Returns
        -------
        self
        """
        previous = dict(self.__dict__)
        try:
            return self._fit(X)
        except BaseException:
            # A failed fit leaves the embedder as it was.
            self.__dict__.clear()
            self.__dict__.update(previous)
            raise

    def _fit(self, X):
        self._validate_params()
        check_device(self.device)
        check_samples(X)
        for attr in ("n_features_in_", "feature_names_in_", "branches_", "module_"):
            self.__dict__.pop(attr, None)
        if is_fused(self.backbone):
            return fit_branches(self, X)
        # An embedder's backbone is frozen: the build path's "head" branch, without a head.
        settings = BranchSettings.from_params({**self.get_params(deep=False), "strategy": "head"})
        spec, source = resolve_backbone(self.backbone, X)
        adapter = make_adapter(spec, source, settings)
        X_checked = adapter.check(X, estimator=self, reset=True)
        if source is None:
            adapter.fit(X_checked)
        device = resolve_device(self.device)
        fast = fast_path(device, self.precision, spec.modality)
        seed = draw_seed(self.random_state)
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            built = build_branch(settings, spec, source, adapter, device=device, fast=fast,
                                 feature_cache=self.feature_cache, X_checked=X_checked)
        prefix = feature_prefix(source.spec_.name if source is not None else spec.name)
        self._set_fitted(built, device, fast, prefix)
        return self

    def _set_fitted(self, built, device, fast, prefix) -> None:
        """Every fitted attribute of a one-backbone embedder, set in one place."""
        built.module.eval()
        self.spec_ = built.spec
        self.adapter_ = built.adapter
        self.module_ = built.module
        self.layers_ = built.module.stages
        self.device_ = device
        self.fast_path_ = fast
        self.feature_fingerprint_ = built.fingerprint
        self.n_features_out_ = built.feature_dim
        self._stage_widths = list(built.widths)
        self._name_prefix = prefix

    # ------------------------------------------------------------------ model files
    # The persistence protocol (see _TransferBase.__sktransfer_state__).
    def __sktransfer_state__(self) -> dict:
        """What a model file stores: each branch's module, adapter, widths and feature names."""
        check_is_fitted(self)
        children = self.branches_ if hasattr(self, "branches_") else [(None, None, self)]
        branches = [dict(name=name, column=column, spec=child.spec_, adapter=child.adapter_, inputs=child,
                         module=child.module_, width=child.n_features_out_, widths=list(child._stage_widths),
                         name_prefix=child._name_prefix) for name, column, child in children]
        return {"branches": branches, "fused": hasattr(self, "branches_")}

    def __sktransfer_restore__(self, built_branches: list, device: str, fast_paths: list, prefixes: list):
        """Become the fitted embedder of branches the build path rebuilt (``sktransfer.load``)."""
        self._validate_params()
        if not is_fused(self.backbone):
            self._set_fitted(built_branches[0], device, fast_paths[0], prefixes[0])
            return self
        children = []
        for (name, column, branch), built, fast, prefix in zip(branch_table(self.backbone), built_branches,
                                                               fast_paths, prefixes):
            child = self._branch_child(branch)
            child._set_fitted(built, device, fast, prefix)
            children.append((name, column, child))
        self.branches_ = children
        self.n_features_out_ = sum(child.n_features_out_ for _, _, child in children)
        return self

    def _branch_child(self, branch):
        """An unfitted embedder of one branch: this one's settings, the branch's backbone,
        ``layers`` and ``pretrained``."""
        child = clone(self).set_params(backbone=branch.backbone)
        for param in ("layers", "pretrained"):
            if getattr(branch, param) is not None:
                child.set_params(**{param: getattr(branch, param)})
        return child

    # ------------------------------------------------------------------ transform
    @shows_progress
    def transform(self, X):
        """The backbone's features for ``X``: rows seen before come from the cache.

        Parameters
        ----------
        X : array-like, list of PIL images or file paths, or list or Series of str

        Returns
        -------
        ndarray of shape (n_samples, n_features_out_), float32
        """
        check_is_fitted(self)
        check_samples(X)
        if hasattr(self, "branches_"):
            if hasattr(self, "feature_names_in_"):
                check_columns(X, [column for _, column, _ in self.branches_], self.remainder)
            parts = [child.transform(select(X, column, child.spec_.modality)) for _, column, child in self.branches_]
            return np.concatenate(parts, axis=1)
        X_checked = self.adapter_.check(X, estimator=self, reset=False)
        fingerprint = self.feature_fingerprint_ if self.adapter_.shares_features else None
        features = frozen_features(self.module_, self.spec_, self.adapter_, X_checked, fingerprint=fingerprint,
                                   batch_size=int(self.batch_size), device=self.device_, fast=self.fast_path_,
                                   feature_cache=self.feature_cache)
        return features.numpy().astype(np.float32, copy=False)

    def get_feature_names_out(self, input_features=None):
        """Names of the output features (see the class's Notes).

        Parameters
        ----------
        input_features : array-like of str or None
            Checked against ``feature_names_in_`` for tabular input; the names out
            don't depend on it.

        Returns
        -------
        ndarray of str objects
        """
        check_is_fitted(self)
        _check_feature_names_in(self, input_features, generate_names=False)
        if hasattr(self, "branches_"):
            return np.asarray(
                [f"{name}__{feature}" for name, _, child in self.branches_ for feature in child.get_feature_names_out()],
                dtype=object,
            )
        if self.layers_ is None:
            names = [f"{self._name_prefix}_{i}" for i in range(self.n_features_out_)]
        else:
            names = [
                f"{self._name_prefix}_{feature_prefix(stage)}_{i}"
                for stage, width in zip(self.layers_, self._stage_widths)
                for i in range(width)
            ]
        return np.asarray(names, dtype=object)

    def __sklearn_is_fitted__(self):
        return hasattr(self, "module_") or hasattr(self, "branches_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Features are float32 whatever the input: float32 in, float32 out.
        tags.transformer_tags.preserves_dtype = ["float32"]
        modality = modality_of(self.backbone)
        return tags if modality is None else adapter_class(modality).update_tags(tags)


def fit_branches(embedder, X):
    """One embedder per branch, each fitted on its column (or on all of ``X``)."""
    table = branch_table(embedder.backbone)
    if isinstance(embedder.backbone, Mapping):
        columns = check_columns(X, [column for _, column, _ in table], embedder.remainder)
        embedder.feature_names_in_ = np.asarray(columns, dtype=object)
        embedder.n_features_in_ = len(columns)
    branches = []
    for name, column, branch in table:
        branch._validate_params()
        child = embedder._branch_child(branch)
        modality = modality_of(branch.backbone)
        if modality is not None and not adapter_class(modality).long_text_applies:
            child.set_params(long_text="truncate")  # long_text is the text branches' setting
        try:
            child.fit(select(X, column, modality or "image"))
        except (ValueError, TypeError) as exc:
            where = f"column {column!r}" if column is not None else f"branch {name!r}"
            raise type(exc)(f"{where}: {exc}") from exc
        branches.append((name, column, child))
    embedder.branches_ = branches
    embedder.n_features_out_ = sum(child.n_features_out_ for _, _, child in branches)
    return embedder
