"""The training criterion: per-sample losses, weighted by ``sample_weight``."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class WeightedLoss(nn.Module):
    """Cross-entropy or mean squared error, averaged with per-sample weights.

    ``y_true`` is the dict ``{"target": ..., "weight": ...}`` that our datasets yield,
    so ``sample_weight`` and ``class_weight`` reach the loss without a custom loop.
    With ``init=``, it also holds ``"offset"``: the source model's output, computed once
    per fit, to which the network's output (the correction) is added.
    """

    def __init__(self, kind: str = "cross_entropy", label_smoothing: float = 0.0):
        super().__init__()
        self.kind = kind
        self.label_smoothing = label_smoothing

    def forward(self, y_pred: torch.Tensor, y_true: dict) -> torch.Tensor:
        target, weight = y_true["target"], y_true["weight"]
        if "offset" in y_true:
            y_pred = y_pred.float() + y_true["offset"].float()
        if self.kind == "cross_entropy":
            # Class indices, or class probabilities (soft targets from MixUp/CutMix).
            target = target.float() if target.dim() == 2 else target.long()
            loss = F.cross_entropy(y_pred.float(), target, reduction="none", label_smoothing=self.label_smoothing)
        else:
            loss = F.mse_loss(y_pred.float(), target.float(), reduction="none").mean(dim=1)
        return (loss * weight.to(loss.dtype)).mean()
