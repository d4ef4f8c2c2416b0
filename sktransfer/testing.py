"""Checks for plugin authors: does a :class:`~sktransfer.BackboneSpec` keep its promises?

Use them in a plugin's test suite::

    from sktransfer.testing import check_backbone_spec, check_plugin

    def test_my_backbone():
        check_backbone_spec("my_backbone")

    def test_my_plugin():
        import my_package.backbones
        check_plugin(my_package.backbones)

Every failed check raises :class:`AssertionError` naming the spec, its plugin and what
is wrong.  Nothing is downloaded: backbones are built with ``pretrained=False`` unless
asked otherwise.
"""

from __future__ import annotations

import pickle
from typing import Any, Callable, Iterable

from sktransfer._inputs import adapter_class
from sktransfer._spec.registry import BackboneSpec, get_spec

__all__ = ["check_backbone_spec", "check_plugin"]

_TEXTS = ("A short sentence.", "Another, slightly longer sentence to pad against.")


def _who(spec: BackboneSpec) -> str:
    plugin = spec.plugin or "?"
    dist = f", {spec.distribution}" if spec.distribution else ""
    return f"BackboneSpec {spec.name!r} (plugin {plugin}{dist})"


def _fail(spec: BackboneSpec, message: str) -> AssertionError:
    return AssertionError(f"{_who(spec)}: {message}")


def _check_preprocessing(spec: BackboneSpec) -> None:
    problem = adapter_class(spec.modality).preprocessing_problem(spec)
    if problem:
        raise _fail(spec, problem)


def _round_trip(spec: BackboneSpec) -> BackboneSpec:
    try:
        restored = pickle.loads(pickle.dumps(spec))
    except Exception as exc:
        raise _fail(
            spec,
            f"does not pickle ({exc!r}). Give build, blocks, feature_dim, stages, stage_outputs and "
            "weights.check as module-level functions or classes, or functools.partial objects of them; "
            "never lambdas or local functions.",
        ) from exc
    if (restored.name, restored.modality) != (spec.name, spec.modality):
        raise _fail(spec, f"unpickles as {restored.name!r}/{restored.modality!r}.")
    return restored


def _feature_dim(spec: BackboneSpec) -> int:
    try:
        dim = spec.get_feature_dim()
    except Exception as exc:
        raise _fail(spec, f"get_feature_dim() failed: {exc!r}") from exc
    if dim < 0:
        raise _fail(spec, f"declares feature_dim={dim}; it must be positive, or 0 for a size read from the data.")
    return dim


def _weights(spec: BackboneSpec, pretrained) -> bool:
    try:
        offline = spec.available_offline()
    except Exception as exc:
        raise _fail(spec, f"available_offline() raised {exc!r}; it must answer without the network.") from exc
    if not isinstance(offline, bool):
        raise _fail(spec, f"available_offline() returned {offline!r}, not a bool.")
    if spec.weights is None:
        return False
    if pretrained == "if_available":
        return offline
    return bool(pretrained)


def _sample_input(spec: BackboneSpec, batch_size: int, image_size: int | None, n_features: int):
    return adapter_class(spec.modality).sample_batch(spec, batch_size, image_size, n_features)


def _check_forward(spec, backbone, dim: int, batch_size: int, image_size, n_features: int):
    import torch

    from sktransfer._nn.module import TransferModule

    pooling = "mean" if adapter_class(spec.modality).pooling_applies else None
    module = TransferModule(backbone, dim or 1, 2, pooling)  # only .features runs: the head's width is moot
    args, kwargs = _sample_input(spec, batch_size, image_size, n_features)
    module.eval()
    try:
        with torch.no_grad():
            out = module.features(*args, **kwargs)
    except Exception as exc:
        raise _fail(spec, f"the backbone's forward pass failed on a random batch: {exc!r}") from exc
    if dim == 0:  # read from the data: any positive width
        dim = out.shape[1] if out.dim() == 2 and out.shape[1] > 0 else -1
    if tuple(out.shape) != (batch_size, dim):
        raise _fail(
            spec,
            f"the backbone returns features of shape {tuple(out.shape)} (after pooling/flatten) for a batch of "
            f"{batch_size}, but feature_dim={dim} is declared; expected {(batch_size, dim)}.",
        )
    if not torch.isfinite(out).all():
        raise _fail(spec, "the backbone returns non-finite features on a random batch.")
    return module


def _check_partial(spec, module, trainable_blocks: int) -> None:
    backbone = module.backbone
    if next(backbone.parameters(), None) is None:
        return  # nothing to train (passthrough): no blocks needed
    try:
        blocks = spec.get_blocks(backbone)
    except Exception as exc:
        raise _fail(spec, f"blocks could not be listed: {exc!r}") from exc
    if not blocks:
        raise _fail(spec, 'declares no blocks, so strategy="partial" cannot work.')
    if len(set(blocks)) != len(blocks):
        raise _fail(spec, f"lists a block twice: {blocks}.")
    for name in blocks:
        try:
            backbone.get_submodule(name)
        except AttributeError as exc:
            raise _fail(spec, f"block {name!r} is not a submodule of the built backbone.") from exc
    k = min(trainable_blocks, len(blocks))
    trainable = blocks[len(blocks) - k :]

    def in_trainable(name: str) -> bool:
        return any(name == t or name.startswith(t + ".") for t in trainable)

    module.blocks = list(blocks)
    module.train_last_blocks(k)
    module.train()
    wrong_frozen = [n for n, p in backbone.named_parameters() if in_trainable(n) and not p.requires_grad]
    wrong_trained = [n for n, p in backbone.named_parameters() if not in_trainable(n) and p.requires_grad]
    if not any(p.requires_grad for p in backbone.parameters()):
        raise _fail(spec, f'strategy="partial" with the last {k} block(s) {trainable} trains no parameter.')
    if wrong_frozen or wrong_trained:
        raise _fail(
            spec,
            f'strategy="partial" (last {k} block(s): {trainable}) froze {wrong_frozen[:5]} and left '
            f"{wrong_trained[:5]} trainable.",
        )
    wrong_mode = [
        n
        for n, m in backbone.named_modules()
        if n and next(m.children(), None) is None and not in_trainable(n) and m.training
    ]
    if wrong_mode:
        raise _fail(spec, f"frozen modules stay in train mode after .train(): {wrong_mode[:5]}.")
    not_training = [n for n, m in backbone.named_modules() if n and in_trainable(n) and not m.training]
    if not_training:
        raise _fail(spec, f"trainable modules are in eval mode after .train(): {not_training[:5]}.")


def _check_lora(spec: BackboneSpec, backbone, batch_size: int, image_size, n_features: int) -> None:
    """Declared ``lora_targets``: peft adapts a copy, which first answers as the backbone
    did (adapters start at zero), then otherwise once the adapters move."""
    import copy
    import importlib.util

    import torch

    from sktransfer._nn.lora import add_adapters, is_lora_name
    from sktransfer._nn.module import TransferModule

    if not spec.lora_targets or importlib.util.find_spec("peft") is None:
        return
    pooling = "mean" if adapter_class(spec.modality).pooling_applies else None
    args, kwargs = _sample_input(spec, batch_size, image_size, n_features)

    def features(m):
        module = TransferModule(m, 1, 2, pooling).eval()
        with torch.no_grad():
            return module.features(*args, **kwargs)

    adapted = copy.deepcopy(backbone)
    try:
        add_adapters(adapted, spec, 2, None)
        before, after = features(backbone), features(adapted)
    except Exception as exc:
        raise _fail(spec, f'strategy="lora": adapters on lora_targets fail: {exc!r}') from exc
    if not torch.allclose(before, after, rtol=1e-4, atol=1e-5):
        raise _fail(spec, 'strategy="lora": adding adapters (at zero) changed the features.')
    with torch.no_grad():
        for name, p in adapted.named_parameters():
            if is_lora_name(name) and ".lora_B." in name:
                p.normal_(0, 1.0)
    if torch.allclose(before, features(adapted), rtol=1e-4, atol=1e-5):
        raise _fail(spec, 'strategy="lora": the adapters on lora_targets do not change the features; are the '
                          "targets called by the forward pass (nn.MultiheadAttention never calls its out_proj)?")


def _check_stages(spec: BackboneSpec, backbone, batch_size: int, image_size, n_features: int) -> None:
    """Declared stages are unique and each one comes out of ``stage_outputs``, alone and together."""
    import torch

    from sktransfer._nn.stage_outputs import fx_stage_outputs

    try:
        stages = spec.get_stages()
    except Exception as exc:
        raise _fail(spec, f"get_stages() failed: {exc!r}") from exc
    if not stages:
        return
    bad = [s for s in stages if not isinstance(s, str) or not s]
    if bad:
        raise _fail(spec, f"stage names must be non-empty strings, got {bad!r}.")
    dupes = sorted({s for s in stages if stages.count(s) > 1})
    if dupes:
        raise _fail(spec, f"lists stage(s) {dupes} twice; every stage must be listed once.")
    make = spec.stage_outputs or fx_stage_outputs
    args, kwargs = _sample_input(spec, batch_size, image_size, n_features)

    def outputs(names: list[str], calls: int = 1) -> list:
        what = f"stage {names[0]!r}" if len(names) == 1 else f"stages {names}"
        try:
            # Made in train mode (as an estimator does) and called in eval mode: f must follow.
            backbone.train()
            f = make(backbone, list(names))
            backbone.eval()
            with torch.no_grad():
                runs = [list(f(*args, **kwargs)) for _ in range(calls)]
        except Exception as exc:
            raise _fail(spec, f"stage_outputs failed for {what}: {exc!r}") from exc
        outs = runs[0]
        for again in runs[1:]:
            for name, a, b in zip(names, outs, again):
                if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape:
                    if not torch.allclose(a, b, rtol=1e-4, atol=1e-5):
                        raise _fail(
                            spec,
                            f"stage {name!r} changes between two calls in eval mode: stage_outputs must follow "
                            "the backbone's train/eval mode (was it made while the backbone was training?).",
                        )
        if len(outs) != len(names):
            raise _fail(spec, f"stage_outputs returned {len(outs)} tensors for {len(names)} {what}.")
        for name, out in zip(names, outs):
            if not isinstance(out, torch.Tensor):
                raise _fail(spec, f"stage {name!r}: stage_outputs returned {type(out).__name__}, not a tensor.")
            if out.dim() not in (2, 3, 4) or out.shape[0] != batch_size:
                raise _fail(
                    spec,
                    f"stage {name!r} has shape {tuple(out.shape)} for a batch of {batch_size}; expected "
                    f"(N, D), (N, T, D) or (N, C, H, W) with N={batch_size}.",
                )
            if not torch.isfinite(out).all():
                raise _fail(spec, f"stage {name!r} has non-finite values on a random batch.")
        return outs

    alone = {name: outputs([name])[0] for name in stages}  # each alone first: errors name one stage
    together = outputs(stages, calls=2)
    for name, out in zip(stages, together):
        if alone[name].shape != out.shape:
            raise _fail(
                spec,
                f"stage {name!r} has shape {tuple(alone[name].shape)} asked alone but {tuple(out.shape)} asked with "
                "the other stages; stage_outputs must return them in the order of names.",
            )


def check_backbone_spec(
    spec_or_name: BackboneSpec | str,
    *,
    pretrained: bool | str = False,
    batch_size: int = 2,
    image_size: int | None = None,
    n_features: int = 8,
    trainable_blocks: int = 1,
    check_partial: bool = True,
) -> BackboneSpec:
    """Check that a backbone spec is coherent, pickles, builds and keeps its promises.

    The checks, in order:

    1. the preprocessing is coherent (images: positive int ``input_size``, three
       means and three positive stds, a known interpolation; text: the tokenizer
       loads offline);
    2. ``get_feature_dim()`` and ``available_offline()`` answer;
    3. the spec pickles, and the *unpickled* spec builds;
    4. a forward pass on a small random batch (images at the spec's input size or
       ``image_size``; text: two tokenised strings, mean-pooled; tabular: random
       ``n_features`` columns) gives features of shape ``(batch_size, feature_dim)``;
    5. the declared stages (``layers=``) are unique, and ``stage_outputs`` returns one
       finite tensor per requested stage (batch size first, 2 to 4 dims), for all
       stages at once and for each one alone; made while the backbone trains, it
       follows the backbone into eval mode (two calls agree);
    6. ``strategy="partial"`` trains exactly the last ``trainable_blocks`` blocks,
       and the frozen modules stay in eval mode after ``.train()``;
    7. with ``lora_targets`` declared (and peft installed), peft's LoRA adapters go
       onto a copy of the backbone, leave its features unchanged at zero, and change
       them once they move.

    Parameters
    ----------
    spec_or_name : BackboneSpec or str
        A spec, or a registered backbone name.
    pretrained : bool or "if_available", default=False
        Build with the pretrained weights. ``"if_available"`` uses them only when
        ``spec.available_offline()``; ``True`` fails when they are missing.
    batch_size : int, default=2
    image_size : int, optional
        Side of the random images; the spec's ``input_size`` by default (always for
        ``fixed_size`` specs). A small size makes the check faster.
    n_features : int, default=8
        Columns of the random matrix for tabular backbones.
    trainable_blocks : int, default=1
        How many trailing blocks ``"partial"`` trains in check 6.
    check_partial : bool, default=True
        Skip check 6 for backbones that don't support ``strategy="partial"``.

    Returns
    -------
    spec : BackboneSpec
        The checked spec.

    Raises
    ------
    AssertionError
        Naming the spec, its plugin and the first check that failed.
    """
    spec = get_spec(spec_or_name) if isinstance(spec_or_name, str) else spec_or_name
    if not isinstance(spec, BackboneSpec):
        raise AssertionError(f"Expected a BackboneSpec or a backbone name, got {type(spec).__name__}.")
    _check_preprocessing(spec)
    dim = _feature_dim(spec)
    use_weights = _weights(spec, pretrained)
    restored = _round_trip(spec)
    try:
        backbone = restored.build(pretrained=use_weights)
    except Exception as exc:
        raise _fail(spec, f"the unpickled spec does not build (pretrained={use_weights}): {exc!r}") from exc
    import torch.nn as nn

    if not isinstance(backbone, nn.Module):
        raise _fail(spec, f"build() returned {type(backbone).__name__}, not a torch.nn.Module.")
    module = _check_forward(spec, backbone, dim, batch_size, image_size, n_features)
    _check_lora(restored, backbone, batch_size, image_size, n_features)
    _check_stages(restored, backbone, batch_size, image_size, n_features)
    if check_partial:
        _check_partial(spec, module, trainable_blocks)
    return spec


def check_plugin(
    plugin: Any,
    *,
    select: Callable[[BackboneSpec], bool] | Iterable[str] | None = None,
    **kwargs,
) -> list[BackboneSpec]:
    """Run :func:`check_backbone_spec` on every spec a plugin registers.

    Parameters
    ----------
    plugin : module or object
        Has a ``register_backbones()`` hook implementation.
    select : callable or iterable of str, optional
        Only check the specs for which ``select(spec)`` is true, or whose names
        are listed (for plugins with many specs). The hook's return value and the
        uniqueness of names are always checked.
    **kwargs
        Passed to :func:`check_backbone_spec`.

    Returns
    -------
    specs : list of BackboneSpec
        The specs that were checked.
    """
    hook = getattr(plugin, "register_backbones", None)
    who = getattr(plugin, "__name__", type(plugin).__name__)
    if not callable(hook):
        raise AssertionError(f"Plugin {who!r} has no register_backbones() hook implementation.")
    if not hasattr(hook, "sktransfer_impl"):
        raise AssertionError(f"Plugin {who!r}: register_backbones is not decorated with @sktransfer.hookimpl.")
    specs = list(hook() or [])
    bad = [type(s).__name__ for s in specs if not isinstance(s, BackboneSpec)]
    if bad:
        raise AssertionError(f"Plugin {who!r}: register_backbones() returned {bad}, not BackboneSpec objects.")
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise AssertionError(f"Plugin {who!r} registers these names twice: {dupes}.")
    if select is not None:
        if callable(select):
            specs = [s for s in specs if select(s)]
        else:
            wanted = set(select)
            missing = sorted(wanted - set(names))
            if missing:
                raise AssertionError(f"Plugin {who!r} does not register {missing}.")
            specs = [s for s in specs if s.name in wanted]
    for spec in specs:
        if not spec.plugin:
            spec = _with_plugin(spec, who)
        check_backbone_spec(spec, **kwargs)
    return specs


def _with_plugin(spec: BackboneSpec, plugin: str) -> BackboneSpec:
    import dataclasses

    return dataclasses.replace(spec, plugin=plugin)
