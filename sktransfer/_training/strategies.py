"""Fine-tuning strategies: one small class each, looked up once from the user's string.

A strategy says which parameters of a :class:`~sktransfer._nn.module.TransferModule`
train and how (freezing, BatchNorm in eval mode where frozen, LoRA adapters, gradual
unfreezing), whether training can run on cached features, what it refuses, and what a
model file must store. Nothing else in the package compares strategy names: adding a
strategy is adding a class here and its name to :data:`STRATEGIES`.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch.nn as nn


@dataclasses.dataclass(frozen=True)
class Strategy:
    """The interface; the defaults are those of a strategy that trains the backbone."""

    name: ClassVar[str]
    #: Only the head trains: the backbone's features don't change during the fit.
    frozen_backbone: ClassVar[bool] = False
    #: Builds on the process's shared, read-only pretrained copy instead of a copy of its own.
    shares_pretrained_backbone: ClassVar[bool] = False
    #: A pretrained backbone's weights are referenced by fingerprint in model files and
    #: pickles, not stored (the strategy's own trained tensors, if any, are stored).
    references_pretrained_weights: ClassVar[bool] = False
    #: ``head_epochs`` trains the head on frozen features before this strategy runs.
    warm_starts_head: ClassVar[bool] = True
    #: The backbone's pretrained weights get a smaller learning rate (text encoders).
    protects_pretrained_weights: ClassVar[bool] = True

    def trains_on_cached_features(self, augment) -> bool:
        """Whether training runs on features computed once (a frozen backbone, unaugmented input)."""
        return self.frozen_backbone and augment is None

    def stores_backbone_weights(self, pretrained: bool) -> bool:
        """Whether a model file holds the backbone's weights (all but referenced pretrained ones)."""
        return not (pretrained and self.references_pretrained_weights)

    def check(self, spec) -> None:
        """Refuse a backbone this strategy can't train, before anything is built."""

    def check_fused(self) -> None:
        """Refuse to train a branch of a fused model this way."""

    def check_accelerator(self) -> None:
        """Refuse to train this way under Accelerate's DistributedDataParallel."""

    def prepare(self, module, spec) -> None:
        """Change the module's backbone before its weights are loaded (LoRA adapters)."""

    def freeze(self, module, blocks: list[str], spec_name: str) -> None:
        """Set which parameters of ``module`` train; ``blocks`` are the backbone's, input to output."""
        module.blocks = list(blocks)
        module.train_everything()

    def trained_batchnorms(self, module, max_epochs: int) -> list[str]:
        """Names of the backbone's BatchNorm layers that run in train mode at some epoch."""
        frozen = set(module.frozen_modules)
        return [name for name in _batchnorms(module) if name not in frozen]

    def callbacks(self, module) -> list:
        """``(name, callback)`` pairs this strategy adds to the skorch net."""
        return []

    def tune_body(self, module, adapter, X_checked, targets, *, device, fast, seed) -> bool:
        """Tune the backbone before the head trains; whether it changed."""
        return False


def _batchnorms(module) -> list[str]:
    return [name for name, m in module.backbone.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@dataclasses.dataclass(frozen=True)
class Full(Strategy):
    """Train every parameter."""

    name: ClassVar[str] = "full"


@dataclasses.dataclass(frozen=True)
class Head(Strategy):
    """Freeze the backbone, BatchNorm statistics included; only the head trains."""

    name: ClassVar[str] = "head"
    frozen_backbone: ClassVar[bool] = True
    shares_pretrained_backbone: ClassVar[bool] = True
    references_pretrained_weights: ClassVar[bool] = True
    warm_starts_head: ClassVar[bool] = False  # the fit itself trains the head on frozen features

    def freeze(self, module, blocks, spec_name) -> None:
        module.blocks = list(blocks)
        module.train_last_blocks(0)

    def trained_batchnorms(self, module, max_epochs) -> list[str]:
        return []


@dataclasses.dataclass(frozen=True)
class Partial(Strategy):
    """Train the last ``trainable_blocks`` blocks of the backbone and the head."""

    name: ClassVar[str] = "partial"
    trainable_blocks: int = 1

    def freeze(self, module, blocks, spec_name) -> None:
        if self.trainable_blocks > len(blocks):
            raise ValueError(
                f"trainable_blocks={self.trainable_blocks} but backbone {spec_name!r} has {len(blocks)} blocks "
                f"({', '.join(blocks)}). Use at most {len(blocks)}, or strategy='full'."
            )
        _need_blocks(self.name, blocks, spec_name)
        module.blocks = list(blocks)
        module.train_last_blocks(self.trainable_blocks)


@dataclasses.dataclass(frozen=True)
class Gradual(Strategy):
    """Train the head in the first epoch, then unfreeze one more block from the top each epoch."""

    name: ClassVar[str] = "gradual"

    def check_fused(self) -> None:
        raise ValueError(
            "strategy='gradual' is not supported for fused models yet; use 'partial' or 'full' per branch "
            "(branch__<name>__strategy)."
        )

    def check_accelerator(self) -> None:
        raise ValueError(
            "strategy='gradual' with accelerator=: DistributedDataParallel only synchronises the parameters "
            "that were trainable when it wrapped the model, so blocks unfrozen later would drift apart between "
            "processes. Use strategy='partial' or 'full', or head_epochs= to train the head first."
        )

    def freeze(self, module, blocks, spec_name) -> None:
        _need_blocks(self.name, blocks, spec_name)
        module.blocks = list(blocks)
        module.train_last_blocks(0)  # GradualUnfreezing opens the blocks epoch by epoch

    def trained_batchnorms(self, module, max_epochs) -> list[str]:
        # GradualUnfreezing trains the head in epoch 0, then one more block per epoch from the top.
        trained = module.blocks[len(module.blocks) - min(len(module.blocks), max_epochs - 1):]
        return [name for name in _batchnorms(module) if any(name == t or name.startswith(t + ".") for t in trained)]

    def callbacks(self, module) -> list:
        from sktransfer._training.callbacks import GradualUnfreezing

        return [("gradual_unfreezing", GradualUnfreezing(module.blocks))]


@dataclasses.dataclass(frozen=True)
class LoRA(Strategy):
    """Freeze the backbone and train low-rank adapters injected into it, with the head."""

    name: ClassVar[str] = "lora"
    references_pretrained_weights: ClassVar[bool] = True  # the adapters are stored, their base referenced
    protects_pretrained_weights: ClassVar[bool] = False  # adapters start at zero: nothing to protect
    rank: int = 8
    alpha: float | None = None

    def check(self, spec) -> None:
        from sktransfer._nn.lora import no_targets_message

        if not spec.lora_targets:
            raise ValueError(no_targets_message(spec))

    def prepare(self, module, spec) -> None:
        from sktransfer._nn.lora import add_adapters

        add_adapters(module.backbone, spec, self.rank, self.alpha)

    def freeze(self, module, blocks, spec_name) -> None:
        module.blocks = list(blocks)
        module.train_only_adapters()

    def trained_batchnorms(self, module, max_epochs) -> list[str]:
        return []  # BatchNorm layers are part of the frozen pretrained weights


@dataclasses.dataclass(frozen=True)
class Contrastive(Strategy):
    """SetFit's recipe: tune the body on pairs drawn from the labels (same class: cosine 1,
    different: 0), then solve the head on the tuned body's frozen features."""

    name: ClassVar[str] = "contrastive"
    frozen_backbone: ClassVar[bool] = True  # while the head trains
    warm_starts_head: ClassVar[bool] = False
    iterations: int = 20
    lr: float = 2e-5  # SetFit's body learning rate
    batch_size: int = 16

    def check_fused(self) -> None:
        raise ValueError(
            "strategy='contrastive' is not supported for fused models yet; use it on one backbone, or 'head', "
            "'partial' or 'full' per branch (branch__<name>__strategy)."
        )

    def check_accelerator(self) -> None:
        raise ValueError(
            "strategy='contrastive' with accelerator=: the contrastive tuning runs in one process. Fit without "
            "accelerator=, or use strategy='full'."
        )

    def freeze(self, module, blocks, spec_name) -> None:
        module.blocks = list(blocks)
        module.train_last_blocks(0)  # contrastive_tune trains the body on its own, then the head trains alone

    def trained_batchnorms(self, module, max_epochs) -> list[str]:
        return []

    def tune_body(self, module, adapter, X_checked, targets, *, device, fast, seed) -> bool:
        from sktransfer._training.contrastive import contrastive_tune

        contrastive_tune(module, adapter, X_checked, targets, iterations=self.iterations, lr=self.lr,
                         batch_size=self.batch_size, device=device, seed=0 if seed is None else seed, fast=fast)
        module.train_last_blocks(0)  # frozen again for the head
        return True


def _need_blocks(name: str, blocks: list[str], spec_name: str) -> None:
    if not blocks:
        raise ValueError(
            f"strategy={name!r} needs the backbone's blocks, but {spec_name!r} declares none. "
            "Use strategy='full' or 'head'."
        )


#: The user's strategy names, in the order the documentation lists them.
STRATEGIES: dict[str, type[Strategy]] = {cls.name: cls for cls in (Full, Partial, Gradual, Head, LoRA, Contrastive)}


def make_strategy(name: str, *, trainable_blocks: int = 1, lora_rank: int = 8, lora_alpha=None,
                  contrastive_iterations: int = 20, backbone_lr=None) -> Strategy:
    """The strategy object for the user's ``strategy`` string and its own parameters."""
    cls = STRATEGIES[name]
    if cls is Contrastive:
        return Contrastive(iterations=int(contrastive_iterations),
                           lr=Contrastive.lr if backbone_lr is None else float(backbone_lr))
    if cls is Partial:
        return Partial(trainable_blocks=int(trainable_blocks))
    if cls is LoRA:
        return LoRA(rank=int(lora_rank), alpha=lora_alpha)
    return cls()
