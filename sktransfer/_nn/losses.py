"""The training criterion: per-sample losses, weighted by ``sample_weight``."""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

LOSS_KINDS = ("cross_entropy", "binary_cross_entropy", "mse")


class WeightedLoss(nn.Module):
    """Cross-entropy, binary cross-entropy (multi-label) or mean squared error, averaged
    with per-sample weights.

    ``y_true`` is the dict ``{"target": ..., "weight": ...}`` that our datasets yield,
    so ``sample_weight`` and ``class_weight`` reach the loss without a custom loop.
    With ``init=``, it also holds ``"offset"``: the source model's output, computed once
    per fit, to which the network's output (the correction) is added.

    ``label_weights`` (multi-label only) is ``(positive, negative)``, two arrays of shape
    ``(n_labels,)``: each label's loss on a positive target is multiplied by its
    positive weight, on a negative one by its negative weight (soft targets from
    MixUp/CutMix interpolate between them), which is ``class_weight="balanced"`` applied
    to every label column as to a binary problem.
    """

    def __init__(self, kind: str = "cross_entropy", label_smoothing: float = 0.0, label_weights=None):
        super().__init__()
        if kind not in LOSS_KINDS:
            raise ValueError(f"kind={kind!r}; expected one of {LOSS_KINDS}.")
        self.kind = kind
        self.label_smoothing = label_smoothing
        self.label_weights = None
        if label_weights is not None:
            self.label_weights = torch.as_tensor(np.asarray(label_weights, dtype=np.float32))

    def forward(self, y_pred: torch.Tensor, y_true: dict) -> torch.Tensor:
        target, weight = y_true["target"], y_true["weight"]
        if "offset" in y_true:
            y_pred = y_pred.float() + y_true["offset"].float()
        if self.kind == "cross_entropy":
            # Class indices, or class probabilities (soft targets from MixUp/CutMix).
            target = target.float() if target.dim() == 2 else target.long()
            loss = F.cross_entropy(y_pred.float(), target, reduction="none", label_smoothing=self.label_smoothing)
        elif self.kind == "binary_cross_entropy":
            loss = self._binary_cross_entropy(y_pred.float(), target.float())
        else:
            loss = F.mse_loss(y_pred.float(), target.float(), reduction="none").mean(dim=1)
        return (loss * weight.to(loss.dtype)).mean()

    def _binary_cross_entropy(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-sample mean over labels of the sigmoid cross-entropy (BCEWithLogitsLoss's)."""
        # Label smoothing pulls each 0/1 target towards 1/2, as it pulls a one-hot
        # target towards the uniform distribution in the multi-class loss.
        smoothed = target * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        loss = F.binary_cross_entropy_with_logits(logits, smoothed, reduction="none")
        if self.label_weights is not None:
            # skorch doesn't move the criterion to the device: the weights follow the logits.
            positive, negative = self.label_weights.to(loss.device)
            loss = loss * (target * positive + (1.0 - target) * negative)
        return loss.mean(dim=1)
