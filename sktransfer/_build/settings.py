"""BranchSettings: what one branch of a model is built from, as plain frozen data.

A single-backbone estimator has one branch; a fused model one per backbone; an
embedder's branches are frozen. The settings come from the estimator's public
parameters (``get_params``) and, for a fused branch, the :class:`~sktransfer.Branch`
overrides, so that ``fit`` and ``sktransfer.load`` derive them alike.
"""

from __future__ import annotations

import dataclasses

from sktransfer._build.param_checks import plain_number, plain_numbers
from sktransfer._inputs import adapter_class
from sktransfer._inputs.augment import modality_default
from sktransfer._training.strategies import Head, Strategy, make_strategy

#: Branch parameters that, when set, replace the estimator's.
BRANCH_OVERRIDES = ("strategy", "layers", "trainable_blocks", "pretrained")


@dataclasses.dataclass(frozen=True)
class BranchSettings:
    """One branch's settings. ``backbone`` is a name, a ``torch.nn.Module`` or a fitted
    estimator (read, never changed); everything else is plain data."""

    backbone: object
    strategy: Strategy = dataclasses.field(default_factory=Head)
    pretrained: bool = True
    layers: object = None
    augment: object = None
    image_size: int | None = None
    max_length: int | None = None
    pooling: str = "auto"
    long_text: str = "truncate"
    chunk_pooling: str = "mean"
    lr: float = 1e-3
    backbone_lr: float | None = None
    layer_decay: float | None = None
    zero_head: bool = False  # the head starts at zero: the output starts at what init= adds

    @classmethod
    def from_params(cls, params: dict, branch=None) -> "BranchSettings":
        """The settings of an estimator with parameters ``params`` (its ``get_params(deep=False)``),
        or of its fused branch ``branch`` (a :class:`~sktransfer.Branch`)."""
        params = plain_numbers(params)  # numpy numbers from a search grid work as Python ones
        if branch is not None:
            params["backbone"] = branch.backbone
            params["init"] = None  # the offset belongs to the fused model's output, not a branch's
            for name in BRANCH_OVERRIDES:
                if getattr(branch, name) is not None:
                    params[name] = plain_number(getattr(branch, name))
            if branch.lr is not None:
                params["backbone_lr"] = plain_number(branch.lr)
        strategy = make_strategy(
            params.get("strategy", "head"),
            trainable_blocks=params.get("trainable_blocks", 1),
            lora_rank=params.get("lora_rank", 8),
            lora_alpha=params.get("lora_alpha"),
            contrastive_iterations=params.get("contrastive_iterations", 20),
            backbone_lr=params.get("backbone_lr"),
        )
        return cls(
            backbone=params["backbone"],
            strategy=strategy,
            pretrained=bool(params.get("pretrained", True)),
            layers=params.get("layers"),
            augment=params.get("augment"),
            image_size=params.get("image_size"),
            max_length=params.get("max_length"),
            pooling=params.get("pooling", "auto"),
            long_text=params.get("long_text", "truncate"),
            chunk_pooling=params.get("chunk_pooling", "mean"),
            lr=params.get("lr", 1e-3),
            backbone_lr=params.get("backbone_lr"),
            layer_decay=params.get("layer_decay"),
            zero_head=params.get("init") is not None,
        )

    def adapter_params(self) -> dict:
        """The input adapter's parameters."""
        return {
            "augment": self.augment,
            "image_size": self.image_size,
            "max_length": self.max_length,
            "pooling": self.pooling,
            "long_text": self.long_text,
            "chunk_pooling": self.chunk_pooling,
        }

    def for_modality(self, modality: str) -> "BranchSettings":
        """A fused branch's settings: the estimator's settings that mean nothing for this
        branch's modality (pooling, long_text, a named augmentation) reset to their defaults."""
        cls = adapter_class(modality)
        changes = {}
        if not cls.pooling_applies:
            changes["pooling"] = "auto"
        if not cls.long_text_applies:
            changes["long_text"] = "truncate"
        changes["augment"] = modality_default(self.augment, modality)
        return dataclasses.replace(self, **changes)
