"""Pooling: token states to one row per text, stage outputs to rows, windows of a long text to one row."""

from __future__ import annotations

import torch


def pool_tokens(states: torch.Tensor, attention_mask: torch.Tensor | None, rule: str) -> torch.Tensor:
    """Pool token states ``(N, T, D)`` to ``(N, D)`` by ``"mean"`` (over real tokens) or ``"cls"``."""
    if rule == "cls":
        return states[:, 0]
    if attention_mask is None:
        return states.mean(dim=1)
    mask = attention_mask.unsqueeze(-1).to(states.dtype)
    return (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


#: Batch key of the ``(N, W)`` mask of real windows, when texts come as windows (``long_text="chunk"``).
WINDOW_MASK = "window_mask"


def split_windows(kwargs: dict) -> tuple[dict, torch.Tensor | None]:
    """``(kwargs, mask)``: a batch of windowed texts as the backbone's inputs, one row per real window.

    Tensors ``(N, W, T)`` become ``(n_windows, T)``, windows in text order; without a
    window mask the batch comes back unchanged with ``None``.
    """
    mask = kwargs.get(WINDOW_MASK)
    if mask is None:
        return kwargs, None
    flat = {
        key: value[mask] if isinstance(value, torch.Tensor) and value.dim() == 3 else value
        for key, value in kwargs.items()
        if key != WINDOW_MASK
    }
    return flat, mask


def pool_windows(features: torch.Tensor, mask: torch.Tensor, rule: str | None) -> torch.Tensor:
    """Pool each text's window features ``(n_windows, D)`` to ``(N, D)`` by ``"mean"`` or ``"max"``.

    ``mask`` ``(N, W)`` marks the real windows (as :func:`split_windows` ordered them);
    gradients flow to every window (to the largest, per feature, for ``"max"``). A text
    of one window gets that window's features exactly.
    """
    mask3 = mask.unsqueeze(-1)
    dense = features.new_zeros(*mask.shape, features.shape[-1]).masked_scatter(mask3, features)
    if rule == "max":
        return dense.masked_fill(~mask3, float("-inf")).amax(dim=1)
    return dense.sum(dim=1) / mask.sum(dim=1, keepdim=True).to(dense.dtype)


def pool_stage(out: torch.Tensor, attention_mask: torch.Tensor | None, rule: str | None) -> torch.Tensor:
    """One stage's output as ``(N, D)``: global average pooling for feature maps, the
    token rule (``"mean"`` when none is set) for token states, vectors as they are."""
    if out.dim() == 4:
        return out.mean(dim=(2, 3))
    if out.dim() == 3:
        return pool_tokens(out, attention_mask, rule or "mean")
    return out.flatten(1)
