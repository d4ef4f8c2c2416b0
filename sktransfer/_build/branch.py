"""The one build path: a branch's settings turned into a built, placed module.

Every kind of model goes through these steps: a single fit, each branch of a fused
model, the embedder, and ``sktransfer.load`` (which passes what the model file saved,
as timm's ``create_model`` + ``load_checkpoint`` do)::

    resolve_backbone -> make_adapter -> build_branch:
        choose_stages -> make_backbone -> feature_widths (dry run, or the saved ones)
        -> TransferModule -> strategy.prepare (LoRA) -> [saved tensors] -> freeze -> place
        -> feature-cache key

``BuiltBranch`` is the result; :func:`training_data` and :func:`param_groups` are what
training needs of it.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn

from sktransfer import _caches
from sktransfer._build.sources import fitted_transfer_source, source_module, source_spec
from sktransfer._build.user_module import module_spec
from sktransfer._features.extraction import feature_dataset, frozen_features
from sktransfer._features.stores import backbone_fingerprint, get_store
from sktransfer._hashing import fingerprint_module
from sktransfer._inputs import adapter_class, guess_modality
from sktransfer._nn.backbone_cache import build_backbone
from sktransfer._nn.calls import call_args
from sktransfer._nn.module import TransferModule
from sktransfer._spec.registry import get_spec
from sktransfer._spec.stages import blocks_feeding, resolve_layers

_DRY_RUN = 2
#: Feature widths already measured, by (weights, preprocessing, pooling, stages): pretrained
#: weights are deterministic, so one dry run per combination is enough (cleared by
#: ``sktransfer.clear_caches``).
CHECKED_WIDTHS: dict = {}
_caches.register("feature_widths", CHECKED_WIDTHS.clear, lambda: f"{len(CHECKED_WIDTHS)} measured feature widths")


@dataclasses.dataclass
class BuiltBranch:
    """A branch after the build path: what fit trains and what predict and save read."""

    settings: object  # the BranchSettings it was built from
    spec: object
    source: object  # the fitted estimator whose backbone is reused, or None
    adapter: object
    module: TransferModule
    weights: bytes | None  # fingerprint of the weights as built; None for a user module
    widths: list[int]  # feature width of each chosen stage (one entry: the final features)
    frozen: bool  # trains and predicts on features computed once (and cached)
    fingerprint: bytes | None  # the shared feature cache's key; None: computed, not cached

    @property
    def feature_dim(self) -> int:
        return int(sum(self.widths))


def resolve_backbone(backbone, X):
    """``(spec, source)`` of a ``backbone`` parameter: a name, a module (its modality
    guessed from ``X``) or a fitted estimator (``source``, whose backbone is reused)."""
    if isinstance(backbone, str):
        return get_spec(backbone), None
    if isinstance(backbone, nn.Module):
        return module_spec(backbone, guess_modality(X)), None
    source = fitted_transfer_source(backbone)
    return source_spec(source), source


def make_adapter(spec, source, settings):
    """The input adapter: the source's preprocessing (changed only where the settings
    say so explicitly), or the spec's under the settings."""
    params = settings.adapter_params()
    adapter_class(spec.modality).check_params(spec, params)
    if source is not None:
        return source.adapter_.inherit(params)
    return adapter_class(spec.modality).from_params(spec, params)


def choose_stages(settings, spec, source) -> list[str] | None:
    if settings.layers is None and source is not None:
        return source_module(source).stages  # the source's own knowledge base
    return resolve_layers(settings.layers, spec.get_stages(), spec.name)


def is_pretrained(settings, spec, source=None) -> bool:
    return source is not None or (bool(settings.pretrained) and spec.weights is not None)


def make_backbone(settings, spec, source, device, saved=None):
    """``(backbone, weights fingerprint)``: a copy of a user's module or a source's backbone
    (never changed), the registry's (the shared read-only copy where the strategy trains
    nothing in it), or, when loading, an empty one for the file's tensors."""
    shared_on = device if settings.strategy.shares_pretrained_backbone else None
    if saved is not None:
        if saved.stores_weights:
            return spec.build(pretrained=False), None  # every tensor comes from the file
        backbone, weights = build_backbone(spec, True, shared_on)
        saved.check_weights(weights)
        return backbone, weights
    if source is not None or isinstance(settings.backbone, nn.Module):
        backbone = spec.build(pretrained=is_pretrained(settings, spec, source))
        return backbone, fingerprint_module(backbone) if source is not None else None
    return build_backbone(spec, is_pretrained(settings, spec, source), shared_on)


def feature_widths(backbone, spec, adapter, stages, X_checked, weights) -> list[int]:
    """The width of each stage's pooled output (or of the final features), from a dry run
    on two samples, which also materialises a user module's lazy layers."""
    key = (weights, adapter.fingerprint_parts(), adapter.pooling, tuple(stages or ()))
    widths = CHECKED_WIDTHS.get(key) if weights else None
    if widths is None:
        widths = _dry_run(backbone, spec, adapter, stages, X_checked)
        if weights:
            CHECKED_WIDTHS[key] = widths
    declared = spec.get_feature_dim()
    if stages is None and declared and declared != widths[0]:
        raise ValueError(
            f"Backbone {spec.name!r} (plugin {spec.plugin or '?'}) returned features of size {widths[0]}, "
            f"but its spec declares feature_dim={declared}. Fix the plugin's BackboneSpec."
        )
    return list(widths)


def _dry_run(backbone, spec, adapter, stages, X_checked) -> list[int]:
    # The probe's throwaway head draws from its own RNG stream: whether the dry run
    # happens (or the size was already known) can't change the seeded fit. The forward
    # pass stays on the seeded stream: it materialises a user module's lazy layers,
    # whose initial weights must come from the seed, not repeat the head's numbers.
    with torch.random.fork_rng(devices=[]):
        probe = TransferModule(backbone, 1, 1, adapter.pooling, stages, spec.stage_outputs,
                               chunk_pooling=adapter.chunk_pooling)
    n = min(_DRY_RUN, len(X_checked))
    dry = adapter.dataset(X_checked)
    X_dry, _ = adapter.collate_fn([dry[i] for i in range(n)])
    was_training = backbone.training
    probe.eval()
    try:
        with torch.no_grad():
            args, kwargs = call_args(X_dry)
            if stages is None:
                return [int(probe.features(*args, **kwargs).shape[1])]
            return [int(out.shape[1]) for out in probe.pooled_stages(*args, names=stages, **kwargs)]
    except Exception as exc:
        if stages is None:
            raise
        raise ValueError(
            f"Backbone {spec.name!r} could not return its stages {stages}: {exc!r}. Use layers=None, or "
            "other stages."
        ) from exc
    finally:
        backbone.train(was_training)


def freeze(strategy, module, spec, stages) -> None:
    """Apply ``strategy`` to ``module``, its blocks counted below the deepest chosen stage
    (blocks above it get no gradient)."""
    blocks = spec.get_blocks(module.backbone)
    if stages:
        blocks = blocks_feeding(blocks, stages[-1])
    strategy.freeze(module, blocks, spec.name)


def place(module, adapter, device, fast) -> None:
    """Put ``module`` on ``device``, channels_last where its batches are images on CUDA."""
    module.channels_last = fast.channels_last and adapter.pixel_batches
    if module.channels_last:
        module.to(memory_format=torch.channels_last)
    module.to(device)


def build_branch(settings, spec, source, adapter, *, device, fast, feature_cache, n_outputs=None,
                 X_checked=None, saved=None) -> BuiltBranch:
    """Build one branch. ``n_outputs=None`` gives a headless module (a fused branch, an
    embedder). Fitting passes ``X_checked`` for the dry run; loading passes ``saved``
    (the file's widths, weights and tensors: ``stores_weights``, ``widths``,
    ``check_weights(weights)``, ``load_into(module)``) instead."""
    strategy = settings.strategy
    strategy.check(spec)  # before building anything
    stages = choose_stages(settings, spec, source)
    backbone, weights = make_backbone(settings, spec, source, device, saved)
    if saved is None:
        widths = feature_widths(backbone, spec, adapter, stages, X_checked, weights)
    else:
        widths = saved.check_stages(stages)
    module = TransferModule(backbone, int(sum(widths)), n_outputs or 1, adapter.pooling, stages, spec.stage_outputs,
                            zero_head=settings.zero_head, chunk_pooling=adapter.chunk_pooling)
    if n_outputs is None:
        module.head = nn.Identity()  # a fused model's head, or none (embedder)
    strategy.prepare(module, spec)
    if saved is not None:
        saved.load_into(module)  # before freezing: loading materialises lazy layers
    freeze(strategy, module, spec, module.stages)
    place(module, adapter, device, fast)
    frozen = strategy.trains_on_cached_features(settings.augment)
    fingerprint = None
    if frozen and adapter.shares_features and get_store(feature_cache) is not None:
        fingerprint = backbone_fingerprint(
            spec, weights or fingerprint_module(module.backbone), *adapter.fingerprint_parts()
        )
    return BuiltBranch(settings, spec, source, adapter, module, weights, widths, frozen, fingerprint)


def tune_body(branch: BuiltBranch, X_checked, targets: dict, *, device, fast, seed, feature_cache) -> None:
    """The strategy's body tuning before the head trains (contrastive tuning; most
    strategies tune nothing). Tuned weights are new weights: the branch's features are
    then keyed by them, never by the pretrained ones."""
    if not branch.settings.strategy.tune_body(branch.module, branch.adapter, X_checked, targets["target"],
                                              device=device, fast=fast, seed=seed):
        return
    branch.weights = fingerprint_module(branch.module.backbone)
    if branch.fingerprint is not None:
        branch.fingerprint = backbone_fingerprint(branch.spec, branch.weights, *branch.adapter.fingerprint_parts())


def branch_features(branch: BuiltBranch, X_checked, *, batch_size, device, fast, feature_cache) -> torch.Tensor:
    """A frozen branch's features for ``X_checked`` (one backbone pass; cached rows reused)."""
    return frozen_features(branch.module, branch.spec, branch.adapter, X_checked, fingerprint=branch.fingerprint,
                           batch_size=batch_size, device=device, fast=fast, feature_cache=feature_cache)


def training_data(branch: BuiltBranch, X_checked, targets: dict, *, batch_size, device, fast, feature_cache):
    """What the net trains on: the frozen features, computed once, or the samples."""
    if not branch.frozen:
        return branch.adapter.dataset(X_checked, targets, train=True)
    features = branch_features(branch, X_checked, batch_size=batch_size, device=device, fast=fast,
                               feature_cache=feature_cache)
    return feature_dataset(features, targets)


def backbone_lr(settings, spec, source=None) -> float:
    if settings.backbone_lr is not None:
        return settings.backbone_lr
    if not settings.strategy.protects_pretrained_weights:
        return settings.lr  # LoRA adapters start at zero: no pretrained knowledge to protect
    # Pretrained transformers get a 10x smaller step (larger ones forget what they
    # learned); CNNs moving to a new image domain need the full step: on 1,000
    # Fashion-MNIST images EfficientNet-Lite0 reached 0.802 with lr/10 and 0.869 with lr.
    if not is_pretrained(settings, spec, source):
        return settings.lr
    return settings.lr * adapter_class(spec.modality).pretrained_backbone_lr_factor


def param_groups(settings, branch: BuiltBranch, prefix: str = "") -> list:
    """Discriminative learning rates: the backbone's, decayed block by block from the top
    (``layer_decay``); ``prefix`` names the branch's module inside a fused model."""
    lr = backbone_lr(settings, branch.spec, branch.source)
    blocks = branch.module.blocks
    if settings.layer_decay is None or not blocks:
        return [(f"{prefix}backbone.*", {"lr": lr})]
    groups = [
        (f"{prefix}backbone.{name}.*", {"lr": lr * settings.layer_decay**depth})
        for depth, name in enumerate(reversed(blocks))
    ]
    # Parameters outside every block (embeddings, position tables) sit below the first block.
    groups.append((f"{prefix}backbone.*", {"lr": lr * settings.layer_decay ** len(blocks)}))
    return groups
