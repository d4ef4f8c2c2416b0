"""Stages of timm models (``layers=``): their names from ``feature_info``, and their outputs read
with timm's ``forward_intermediates``."""

from __future__ import annotations

import functools

from sktransfer import FINAL_FEATURES


def _feature_modules(model) -> list[str]:
    """Module names of a (built) timm model's ``feature_info``, or [] without ``forward_intermediates``."""
    info = getattr(model, "feature_info", None)
    if not callable(getattr(model, "forward_intermediates", None)) or not info:
        return []
    try:
        names = [str(entry["module"]) for entry in info]
    except (TypeError, KeyError):
        return []
    # Stage names must be unique; a model whose feature_info repeats a module offers none.
    return names if len(set(names)) == len(names) and all(names) else []


@functools.lru_cache(maxsize=None)
def meta_stages(arch: str) -> tuple[str, ...]:
    """``arch``'s stages: its ``feature_info`` module names, from a build on the ``meta`` device.

    Nothing is allocated or loaded; the answer is cached.  A model that timm can't
    build on ``meta`` or that has no ``forward_intermediates`` offers no stages.
    """
    import timm
    import torch

    try:
        with torch.device("meta"):
            model = timm.create_model(arch, pretrained=False, num_classes=0)
    except Exception:
        return ()
    return tuple(_feature_modules(model))


def timm_stages(model_name: str) -> list[str]:
    """Stages of ``timm/<model_name>`` (a pretrained tag doesn't change them)."""
    return list(meta_stages(model_name.split(".", 1)[0]))


class TimmIntermediates:
    """``stage_outputs`` of timm models: ``forward_intermediates`` with the stages' indices.

    A stage is an entry of the model's ``feature_info``, named by its module; the
    index of that entry is what ``forward_intermediates(indices=...)`` takes.  It
    holds the backbone itself (current weights, current train/eval mode) and pickles.
    """

    def __init__(self, backbone, names: list[str]):
        modules = _feature_modules(backbone)
        stages = [n for n in names if n != FINAL_FEATURES]
        unknown = [n for n in stages if n not in modules]
        if unknown:
            raise ValueError(
                f"{type(backbone).__name__} has no stage {unknown[0]!r}; its feature_info modules are "
                f"{modules or 'none (no forward_intermediates)'}."
            )
        self.backbone = backbone
        self.names = list(names)
        # forward_intermediates returns the sorted indices' outputs; `order` maps them back to names.
        self.indices = sorted({modules.index(n) for n in stages})
        self.order = [None if n == FINAL_FEATURES else self.indices.index(modules.index(n)) for n in self.names]

    def __call__(self, x) -> list:
        if FINAL_FEATURES not in self.names:
            outs = self.backbone.forward_intermediates(x, indices=self.indices, intermediates_only=True,
                                                       stop_early=True)
            return [outs[i] for i in self.order]
        if not self.indices:  # the final features alone
            return [self.backbone(x)]
        # The final features from the same pass: the last feature map through the model's own head
        # (num_classes=0, so its pooled pre-logits features, exactly what forward returns).
        last, outs = self.backbone.forward_intermediates(x, indices=self.indices, intermediates_only=False)
        final = self.backbone.forward_head(last, pre_logits=True)
        return [final if i is None else outs[i] for i in self.order]


def timm_stage_outputs(backbone, names: list[str]) -> TimmIntermediates:
    """The ``stage_outputs`` of timm specs (and of ``efficientnet_lite0``)."""
    return TimmIntermediates(backbone, names)


timm_stage_outputs.reads_final_features = True  # "final" among the names: one pass for all
