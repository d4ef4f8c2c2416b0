"""The module that is exported: the path ``predict`` runs after preprocessing, plus its last step.

Each branch (one for a single backbone, several for a fused model) runs its fitted
:class:`~sktransfer._nn.module.TransferModule`'s backbone (and pooling, stages) as it
does in ``predict``; the branches' features are combined (the head, the fusion head, or
side by side); :class:`FinalStep` then turns that into what the estimator returns
(probabilities, targets in the user's units, features), in float64 where the estimator
computes in float64. A model fitted with ``init=`` adds its ``init=`` model's offsets, a
graph input, before that last step.
"""

from __future__ import annotations

import torch
from torch import nn

from sktransfer._nn.fusion_module import FusionModule

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


class BranchFeatures(nn.Module):
    """One backbone's features on its named inputs, as its module computes them in ``predict``.

    Parameters
    ----------
    module : TransferModule
        In eval mode; only its ``features`` run here.
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

    def __init__(self, module: nn.Module, input_names: list[str], keywords: bool, chunk_pooling: str | None = None):
        super().__init__()
        self.module = module
        self.input_names = list(input_names)
        self.keywords = keywords
        self.chunk_pooling = chunk_pooling

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        named = dict(zip(self.input_names, inputs))
        window_index, window_mask = named.pop(WINDOW_INDEX, None), named.pop(WINDOW_MASK, None)
        features = self.module.features(**named) if self.keywords else self.module.features(*named.values())
        if window_index is not None:
            features = self._pool_windows(features, window_index, window_mask)
        return features

    def _pool_windows(self, features, index, mask):
        dense = features[index]  # (N, W, D); padding slots point at any window and are masked out
        mask3 = mask.unsqueeze(-1)
        if self.chunk_pooling == "max":
            return dense.masked_fill(~mask3, float("-inf")).amax(dim=1)
        return torch.where(mask3, dense, 0.0).sum(dim=1) / mask.sum(dim=1, keepdim=True).to(dense.dtype)


class Head(nn.Module):
    """One backbone's features through its module's head (``nn.Identity`` for an embedder).

    Holds the head alone: the module is the branch's, and a module registered under two
    parents breaks torch.export's tracing of stage readers (``layers=``).
    """

    def __init__(self, head: nn.Module):
        super().__init__()
        self.head = head

    def forward(self, parts: list[torch.Tensor]) -> torch.Tensor:
        return self.head(parts[0])


class FusedHead(nn.Module):
    """Several branches' features fused (normalised, gated) and the fusion head, by
    :meth:`FusionModule.fuse <sktransfer._nn.fusion_module.FusionModule.fuse>` itself, on
    the fusion module's parts without its branches (those are the graph's branches)."""

    def __init__(self, fusion: nn.Module):
        super().__init__()
        self.norms, self.gates, self.head = fusion.norms, fusion.gates, fusion.head

    def forward(self, parts: list[torch.Tensor]) -> torch.Tensor:
        return self.head(FusionModule.fuse(self, parts))


class Concat(nn.Module):
    """Several embedders' features side by side (a fused :class:`~sktransfer.TransferEmbedder`)."""

    def forward(self, parts: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(parts, dim=1)


class ExportedModel(nn.Module):
    """Each branch's features on its own inputs, then ``combine`` and ``final``.

    The graph's inputs are the branches' inputs one after the other, in the order of
    ``branches``; a model fitted with ``init=`` takes one more, last: the ``init=``
    model's offsets ``(N, n_outputs)`` (float32), added to the network's outputs before
    ``final``, as the estimator adds them.
    """

    def __init__(self, branches: list[BranchFeatures], combine: nn.Module, final: FinalStep, offsets: bool = False):
        super().__init__()
        self.branches = nn.ModuleList(branches)
        self.combine = combine
        self.final = final
        self.offsets = offsets

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        parts, start = [], 0
        for branch in self.branches:
            parts.append(branch(*inputs[start: start + len(branch.input_names)]))
            start += len(branch.input_names)
        out = self.combine(parts)
        return self.final(out + inputs[start] if self.offsets else out)
