"""TransferModule: backbone -> pooling -> head, and which of its parts train."""

from __future__ import annotations

import torch
import torch.nn as nn

STRATEGIES = ("head", "partial", "full", "gradual")


def pool_tokens(states: torch.Tensor, attention_mask: torch.Tensor | None, rule: str) -> torch.Tensor:
    """Pool token states ``(N, T, D)`` to ``(N, D)`` by ``"mean"`` (over real tokens) or ``"cls"``."""
    if rule == "cls":
        return states[:, 0]
    if attention_mask is None:
        return states.mean(dim=1)
    mask = attention_mask.unsqueeze(-1).to(states.dtype)
    return (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


class TransferModule(nn.Module):
    """A backbone with a new linear head.

    Parameters
    ----------
    backbone : nn.Module
        Returns pooled features ``(N, D)``, or token states ``(N, T, D)`` when
        ``pooling`` is set (text).
    feature_dim : int
    n_outputs : int
    pooling : {"mean", "cls"} or None
    """

    def __init__(self, backbone: nn.Module, feature_dim: int, n_outputs: int, pooling: str | None = None):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(feature_dim, n_outputs)
        self.pooling = pooling
        # Names of backbone submodules that don't train; they stay in eval mode so that
        # frozen BatchNorm statistics (and dropout) don't move during fit.
        self.frozen_modules: list[str] = []
        # Dotted names of the backbone's blocks, input to output (partial/gradual, layer decay).
        self.blocks: list[str] = []
        # channels_last inputs for convolutional backbones on CUDA (set by the fast path).
        self.channels_last = False

    def features(self, *args, **kwargs) -> torch.Tensor:
        if self.channels_last and args and args[0].dim() == 4:
            args = (args[0].contiguous(memory_format=torch.channels_last), *args[1:])
        out = self.backbone(*args, **kwargs)
        if self.pooling is not None:
            out = pool_tokens(out, kwargs.get("attention_mask"), self.pooling)
        return out.flatten(1)

    def forward(self, *args, features: torch.Tensor | None = None, **kwargs) -> torch.Tensor:
        # Precomputed features (frozen strategy) skip the backbone entirely.
        if features is None:
            features = self.features(*args, **kwargs)
        return self.head(features)

    def train(self, mode: bool = True):
        if self.frozen_modules == [""]:
            # Whole backbone frozen: skorch switches modes on every batch, and walking
            # hundreds of backbone modules each time would cost more than the head's step.
            self.training = mode
            self.head.train(mode)
            if self.backbone.training:
                self.backbone.eval()
            return self
        super().train(mode)
        for name in self.frozen_modules:
            self.backbone.get_submodule(name).eval()
        return self

    def freeze(self, strategy: str, blocks: list[str], trainable_blocks: int) -> None:
        """Set ``requires_grad`` and the eval-mode list for a fine-tuning strategy.

        ``"head"`` freezes the whole backbone, ``"full"`` trains everything, and
        ``"partial"`` trains only the last ``trainable_blocks`` of ``blocks``.
        ``"gradual"`` starts like ``"head"``; its callback unfreezes blocks epoch by epoch.
        """
        self.blocks = list(blocks)
        if strategy == "gradual":
            strategy = "head"
        self.backbone.requires_grad_(strategy == "full")
        if strategy == "full":
            self.frozen_modules = []
        elif strategy == "head":
            self.frozen_modules = [""]
        else:
            trainable = blocks[len(blocks) - trainable_blocks :]
            for name in trainable:
                self.backbone.get_submodule(name).requires_grad_(True)
            self.frozen_modules = [
                name
                for name, module in self.backbone.named_modules()
                if name
                and not any(name == t or name.startswith(t + ".") for t in trainable)
                and next(module.children(), None) is None
            ]
        self.train(self.training)
