"""The module that is exported: the path ``predict`` runs after preprocessing, plus its last step.

A fitted :class:`~sktransfer._nn.module.TransferModule` runs its backbone (and pooling,
stages, head) as it does in ``predict``; :class:`FinalStep` then turns the head's
outputs into what the estimator returns (probabilities, targets in the user's units,
features), in float64 where the estimator computes in float64.
"""

from __future__ import annotations

import torch
from torch import nn

#: Graph inputs of windowed texts (``long_text="chunk"``) besides the tokenizer's.
WINDOW_INDEX = "window_index"
WINDOW_MASK = "window_mask"


class FinalStep(nn.Module):
    """The estimator's arithmetic after the network: ``"softmax"``, ``"sigmoid"``,
    ``"affine"`` (``out * multiplier + mean``, a regressor's targets) or ``"identity"``."""

    def __init__(self, rule: str, multiplier=None, mean=None):
        super().__init__()
        self.rule = rule
        if rule == "affine":
            self.register_buffer("multiplier", torch.as_tensor(multiplier, dtype=torch.float64))
            self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float64))

    def forward(self, out: torch.Tensor) -> torch.Tensor:
        # The estimators take the float32 outputs to float64 first (scipy's softmax/expit).
        if self.rule == "softmax":
            return out.double().softmax(dim=1)
        if self.rule == "sigmoid":
            return out.double().sigmoid()
        if self.rule == "affine":
            return out.double() * self.multiplier + self.mean
        return out


class ExportedModel(nn.Module):
    """``module``'s features (and head) on named inputs, then ``final``.

    Parameters
    ----------
    module : TransferModule
        In eval mode; its head is ``nn.Identity`` for an embedder.
    input_names : list of str
        The tokenizer's keys for text (passed as keywords), one pixel or feature
        tensor otherwise (passed positionally).
    keywords : bool
        Whether the backbone takes its inputs as keywords (text).
    chunk_pooling : {"mean", "max"} or None
        Windowed texts: the inputs hold one row per window, and two more inputs say
        which windows are each text's (``window_index`` ``(N, W)`` into the windows,
        ``window_mask`` ``(N, W)`` the real ones); the windows' features are pooled
        per text as :func:`sktransfer._nn.pooling.pool_windows` pools them.
    """

    def __init__(self, module: nn.Module, input_names: list[str], keywords: bool, final: FinalStep,
                 chunk_pooling: str | None = None):
        super().__init__()
        self.module = module
        self.input_names = list(input_names)
        self.keywords = keywords
        self.final = final
        self.chunk_pooling = chunk_pooling

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        named = dict(zip(self.input_names, inputs))
        window_index, window_mask = named.pop(WINDOW_INDEX, None), named.pop(WINDOW_MASK, None)
        features = self.module.features(**named) if self.keywords else self.module.features(*named.values())
        if window_index is not None:
            features = self._pool_windows(features, window_index, window_mask)
        return self.final(self.module.head(features))

    def _pool_windows(self, features, index, mask):
        dense = features[index]  # (N, W, D); padding slots point at any window and are masked out
        mask3 = mask.unsqueeze(-1)
        if self.chunk_pooling == "max":
            return dense.masked_fill(~mask3, float("-inf")).amax(dim=1)
        return torch.where(mask3, dense, 0.0).sum(dim=1) / mask.sum(dim=1, keepdim=True).to(dense.dtype)
