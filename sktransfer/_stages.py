"""Intermediate stages of a backbone (``layers=``): which ones, how to get them, how to pool them.

A spec names its stages once (``BackboneSpec.stages``) and says how to read them
(``BackboneSpec.stage_outputs``); the libraries' own mechanisms do the reading:
torchvision's ``create_feature_extractor`` (the default here), timm's
``forward_intermediates`` and Hugging Face's ``output_hidden_states``.
"""

from __future__ import annotations

from numbers import Integral

import torch


def resolve_layers(layers, stages: list[str], backbone_name: str) -> list[str] | None:
    """Stage names for ``layers`` (a name, or a list of names and negative integers).

    ``None`` means the backbone's own final features.  Errors list the valid stages.
    """
    if layers is None:
        return None
    requested = [layers] if isinstance(layers, (str, Integral)) else list(layers)
    if not stages:
        raise ValueError(
            f"layers={layers!r}, but backbone {backbone_name!r} declares no stages: it offers only its final "
            "features. Use layers=None."
        )
    if not requested:
        raise ValueError(f"layers is empty; give at least one stage of {backbone_name!r}: {', '.join(stages)}.")
    names = []
    for item in requested:
        if isinstance(item, str):
            if item not in stages:
                raise ValueError(
                    f"Unknown stage {item!r} for backbone {backbone_name!r}. Its stages, input to output: "
                    f"{', '.join(stages)} (or negative integers counted from the top, -1 being the last)."
                )
            name = item
        elif isinstance(item, Integral) and not isinstance(item, bool):
            if not -len(stages) <= item < 0:
                raise ValueError(
                    f"layers holds {item}, but stages are counted from the top with negative integers: "
                    f"-1 (the last, {stages[-1]!r}) down to -{len(stages)} ({stages[0]!r}) for backbone "
                    f"{backbone_name!r}."
                )
            name = stages[item]
        else:
            raise TypeError(
                f"layers must be a stage name, a negative integer or a list of them; got {item!r} "
                f"({type(item).__name__})."
            )
        if name in names:
            raise ValueError(f"layers names stage {name!r} twice; list each stage once.")
        names.append(name)
    # Input-to-output order, whatever order they were given in: the concatenation is then stable.
    return sorted(names, key=stages.index)


def blocks_feeding(blocks: list[str], deepest_stage: str) -> list[str]:
    """The blocks up to the one that outputs ``deepest_stage``: only they get gradients.

    A block outputs a stage when the names agree, or one is the other's dotted tail
    (``"model.encoder.layer.2"`` and ``"layer.2"``).  When no block matches, all are kept.
    """
    def outputs(block: str) -> bool:
        return block == deepest_stage or block.endswith("." + deepest_stage) or deepest_stage.endswith("." + block)

    matches = [i for i, block in enumerate(blocks) if outputs(block)]
    return blocks[: matches[-1] + 1] if matches else blocks


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


class FxStageOutputs:
    """The default ``stage_outputs``: torchvision's ``create_feature_extractor``.

    The graph module it builds shares the backbone's submodules (no copy of the
    weights), so training the backbone trains what this reads.
    """

    def __init__(self, backbone, names: list[str]):
        from torchvision.models.feature_extraction import create_feature_extractor

        self.backbone = backbone
        self.names = list(names)
        from ._lora import tracer_leaf_modules

        # peft's LoRA layers branch on tensor dtypes, which fx can't trace: they stay leaves.
        leaves = tracer_leaf_modules()
        # Tracing switches the whole backbone to train, then eval, then back to its own
        # mode, which would put frozen parts (BatchNorm kept in eval mode) in train mode
        # for the batch that builds this reader: every submodule's mode is restored.
        modes = [(m, m.training) for m in backbone.modules()]
        try:
            self.graph = create_feature_extractor(
                backbone,
                return_nodes={n: n for n in self.names},
                tracer_kwargs={"leaf_modules": leaves} if leaves else None,
            )
        finally:
            for m, training in modes:
                m.training = training

    def __call__(self, *args, **kwargs) -> list[torch.Tensor]:
        # The graph module keeps a train and an eval graph. Its own train() would also
        # switch every shared submodule and undo the backbone's frozen (eval) parts, so
        # only the graph follows the backbone's mode here.
        mode = self.backbone.training
        if self.graph.training != mode:
            self.graph.graph = self.graph.train_graph if mode else self.graph.eval_graph
            self.graph.training = mode
        out = self.graph(*args, **kwargs)
        return [out[n] for n in self.names]


def fx_stage_outputs(backbone, names: list[str]) -> FxStageOutputs:
    """``stage_outputs`` for any fx-traceable backbone whose stage names are module paths."""
    return FxStageOutputs(backbone, names)
