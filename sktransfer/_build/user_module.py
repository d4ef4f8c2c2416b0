"""A user's ``torch.nn.Module`` as a backbone: its spec, built as a copy per fit."""

from __future__ import annotations

import copy
import functools

import torch.nn as nn

from sktransfer._inputs import adapter_class
from sktransfer._nn.lora import lora_targets_linear_and_conv
from sktransfer._spec.registry import BackboneSpec


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
