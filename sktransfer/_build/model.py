"""A whole model through the one build path: one branch with a head, or several
headless branches joined by a fusion head. Used by ``fit`` and by ``sktransfer.load``."""

from __future__ import annotations

import dataclasses

from sktransfer._build.branch import (
    BuiltBranch,
    build_branch,
    make_adapter,
    param_groups,
    resolve_backbone,
)
from sktransfer._build.branch import training_data as branch_training_data
from sktransfer._build.settings import BranchSettings
from sktransfer._inputs.fused import BranchColumns, FittedBranch, FusedInput, check_branch_input, select
from sktransfer._nn.fusion_module import FusionModule
from sktransfer._training.net import fast_path


@dataclasses.dataclass
class PreparedBranch:
    """A branch whose backbone is resolved and whose input adapter is made (and, when
    fitting, whose input is checked)."""

    name: str | None
    column: object
    settings: BranchSettings
    spec: object
    source: object
    adapter: object
    columns: BranchColumns | None = None  # a fused branch's n_features_in_ / feature_names_in_
    X_checked: object = None  # None when loading


@dataclasses.dataclass
class BuiltModel:
    module: object  # a TransferModule (one branch) or a FusionModule
    inputs: object  # the branch's adapter, or the FusedInput
    branches: list[BuiltBranch]
    fused: bool
    param_groups: list | None  # None: training runs on cached features only

    @property
    def on_features(self) -> bool:
        return all(b.frozen for b in self.branches)


def prepare_fused_branch(name, column, settings: BranchSettings, X) -> PreparedBranch:
    """Resolve, adapt and check one fused branch's input, as a single-backbone fit does."""
    spec, source = resolve_backbone(settings.backbone, select(X, column, "image"))
    settings = settings.for_modality(spec.modality)
    adapter = make_adapter(spec, source, settings)
    columns = BranchColumns()
    X_checked = check_branch_input(adapter, select(X, column, spec.modality), columns, column=column, name=name,
                                   backbone=spec.name, reset=True)
    if source is None:
        adapter.fit(X_checked)
    return PreparedBranch(name, column, settings, spec, source, adapter, columns, X_checked)


def model_fast_path(device, precision, prepared: list[PreparedBranch]):
    """The fast path of a model: an image branch's, where it has one."""
    modalities = [p.spec.modality for p in prepared]
    return fast_path(device, precision, "image" if "image" in modalities else modalities[0])


def build_model(prepared: list[PreparedBranch], *, fused: bool, n_outputs: int, zero_head: bool, fusion: str,
                mapped: bool, remainder: str, device, fast, feature_cache, saved=None) -> BuiltModel:
    """Every branch through :func:`build_branch`, then (fused) the fusion head.
    ``saved`` (loading) gives each branch's saved part (``saved.branches[i]``) and loads
    the fusion head's tensors (``saved.load_fusion(module)``)."""
    if not fused:
        p = prepared[0]
        branch = build_branch(p.settings, p.spec, p.source, p.adapter, device=device, fast=fast,
                              feature_cache=feature_cache, n_outputs=n_outputs, X_checked=p.X_checked,
                              saved=None if saved is None else saved.branches[0])
        groups = None if branch.frozen else param_groups(p.settings, branch)
        return BuiltModel(branch.module, p.adapter, [branch], False, groups)
    modules, dims, branches, fitted, groups = {}, [], [], [], []
    for i, p in enumerate(prepared):
        key = f"b{i}"  # module names can't hold a column's dots or spaces
        branch = build_branch(p.settings, p.spec, p.source, p.adapter, device=device, fast=fast,
                              feature_cache=feature_cache, X_checked=p.X_checked,
                              saved=None if saved is None else saved.branches[i])
        modules[key] = branch.module
        dims.append(branch.feature_dim)
        branches.append(branch)
        fitted.append(FittedBranch(p.name, key, p.column, p.spec, p.adapter, p.columns, branch.frozen,
                                   branch.fingerprint))
        if not branch.frozen:
            groups += param_groups(p.settings, branch, prefix=f"branches.{key}.")
    module = FusionModule(modules, dims, n_outputs, fusion, zero_head=zero_head)
    module.frozen_keys = {b.key for b in fitted if b.frozen}
    if saved is not None:
        saved.load_fusion(module)
    return BuiltModel(module, FusedInput(fitted, mapped, remainder), branches, True, groups)


def training_data(model: BuiltModel, prepared: list[PreparedBranch], targets: dict, *, batch_size, device, fast,
                  feature_cache):
    """What the net trains on: frozen branches' features computed once (cached), the others' samples."""
    if not model.fused:
        return branch_training_data(model.branches[0], prepared[0].X_checked, targets, batch_size=batch_size,
                                    device=device, fast=fast, feature_cache=feature_cache)
    checked = {b.key: p.X_checked for b, p in zip(model.inputs.branches, prepared)}
    return model.inputs.dataset(checked, model.module, targets, train=True, batch_size=batch_size, device=device,
                                fast=fast, feature_cache=feature_cache)
