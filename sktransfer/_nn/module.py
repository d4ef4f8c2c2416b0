"""TransferModule: backbone -> chosen stages, pooled -> head, and which of its parts train."""

from __future__ import annotations

import copy

import torch
import torch.nn as nn

from sktransfer._nn.backbone_cache import shared_reference
from sktransfer._nn.lora import is_lora_name
from sktransfer._nn.pooling import pool_stage, pool_tokens, pool_windows, split_windows
from sktransfer._nn.stage_outputs import WithFinalFeatures, fx_stage_outputs
from sktransfer._spec.stages import FINAL_FEATURES


class TransferModule(nn.Module):
    """A backbone with a new linear head.

    Parameters
    ----------
    backbone : nn.Module
        Returns pooled features ``(N, D)``, or token states ``(N, T, D)`` when
        ``pooling`` is set (text).
    feature_dim : int
        Size of the features the head takes (all chosen stages together).
    n_outputs : int
    pooling : {"mean", "cls"} or None
    stages : list of str or None
        Stages whose pooled outputs, concatenated, feed the head (``layers=``);
        ``None`` uses the backbone's own output, which ``"final"`` names among stages.
    stage_outputs : callable or None
        The spec's ``stage_outputs`` (``None``: torchvision's ``create_feature_extractor``).
    zero_head : bool
        Start the head at zero: the model's output then starts at exactly what is
        added to it (``init=``, a source model's output).
    chunk_pooling : {"mean", "max"}
        How a batch of windowed texts (one with a ``window_mask``, ``long_text="chunk"``)
        pools each text's window features into one row.
    """

    def __init__(
        self,
        backbone: nn.Module,
        feature_dim: int,
        n_outputs: int,
        pooling: str | None = None,
        stages: list[str] | None = None,
        stage_outputs=None,
        zero_head: bool = False,
        chunk_pooling: str | None = "mean",
    ):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(feature_dim, n_outputs)
        if zero_head:
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)
        self.pooling = pooling
        self.chunk_pooling = chunk_pooling
        self.stages = None if stages is None else list(stages)
        self.stage_outputs = stage_outputs
        # Names of backbone submodules that don't train; they stay in eval mode so that
        # frozen BatchNorm statistics (and dropout) don't move during fit.
        self.frozen_modules: list[str] = []
        # Dotted names of the backbone's blocks, input to output (partial/gradual, layer decay).
        self.blocks: list[str] = []
        # channels_last inputs for convolutional backbones on CUDA (set by the fast path).
        self.channels_last = False

    # Readers of intermediate stages (a traced graph for torchvision) share the backbone's
    # submodules; they are rebuilt on demand, never pickled or copied with the module.
    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_stage_readers", None)
        reference = shared_reference(self._modules.get("backbone"))
        if reference is not None:
            # A frozen pretrained backbone shared by every frozen fit in this process
            # never trains: the pickle names it (spec and weights hash) and unpickling
            # takes the receiving process's shared copy, built from its own install.
            # A fitted frozen model then pickles to its head, not to the backbone's
            # weights: what a search sends to its workers and back.
            state["_modules"] = {k: v for k, v in self._modules.items() if k != "backbone"}
            state["_shared_backbone"] = reference
        return state

    def __setstate__(self, state):
        reference = state.pop("_shared_backbone", None)
        super().__setstate__(state)
        if reference is not None:
            backbone = reference.resolve(self._unpickled_device(reference.device))
            self._modules = {"backbone": backbone, **self._modules}  # the order state_dict() had

    def _unpickled_device(self, fitted_on: str) -> str:
        """Where the rest of the module landed (torch.load's map_location), so the backbone joins it."""
        tensor = next(iter(self.head.state_dict().values()), None)
        if tensor is None:  # a headless module (the embedder's): where it was, if that is here
            return fitted_on if fitted_on == "cpu" or torch.cuda.is_available() else "cpu"
        return fitted_on if tensor.device.type == torch.device(fitted_on).type else str(tensor.device)

    def __deepcopy__(self, memo):
        # A deep copy is a module of its own, backbone included (a copy to train, a
        # source's backbone reused): only pickles name the shared frozen backbone.
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        state = self.__dict__.copy()
        state.pop("_stage_readers", None)
        new.__dict__.update(copy.deepcopy(state, memo))
        return new

    def _stage_reader(self, names: tuple[str, ...]):
        readers = self.__dict__.setdefault("_stage_readers", {})
        if names not in readers:
            make = self.stage_outputs or fx_stage_outputs
            readers[names] = make(self.backbone, list(names))
        return readers[names]

    def _stages_reader(self, names: tuple[str, ...]):
        """What returns ``names``' outputs from the inputs: the spec's reader, or, where the final
        features are asked of a reader that doesn't return them, that reader and a second pass."""
        make = self.stage_outputs or fx_stage_outputs
        if FINAL_FEATURES not in names or getattr(make, "reads_final_features", False):
            return self._stage_reader(names)
        stages = tuple(n for n in names if n != FINAL_FEATURES)
        return WithFinalFeatures(self._stage_reader(stages) if stages else None, list(names), self._final_features)

    def _inputs(self, args):
        if self.channels_last and args and args[0].dim() == 4:
            args = (args[0].contiguous(memory_format=torch.channels_last), *args[1:])
        return args

    def _per_sample(self, out: torch.Tensor, windows: torch.Tensor | None) -> torch.Tensor:
        # Windowed texts: each text's windows pooled into its one row.
        return out if windows is None else pool_windows(out, windows, getattr(self, "chunk_pooling", "mean"))

    def pooled_stages(self, *args, names, **kwargs) -> list[torch.Tensor]:
        """Each of the stages ``names``, pooled to ``(N, D_stage)``, from one backbone pass."""
        kwargs, windows = split_windows(kwargs)
        outputs = self._stages_reader(tuple(names))(*self._inputs(args), **kwargs)
        mask = kwargs.get("attention_mask")
        return [self._per_sample(pool_stage(out, mask, self.pooling), windows) for out in outputs]

    def features(self, *args, **kwargs) -> torch.Tensor:
        if self.stages is not None:
            return torch.cat(self.pooled_stages(*args, names=self.stages, **kwargs), dim=1)
        kwargs, windows = split_windows(kwargs)
        return self._per_sample(self._final_features(*self._inputs(args), **kwargs), windows)

    def _final_features(self, *args, **kwargs) -> torch.Tensor:
        """The backbone's own features, pooled to ``(N, D)`` (before windows are pooled)."""
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

    # Which parameters train; a strategy (sktransfer._training.strategies) picks one of these.
    def train_everything(self) -> None:
        """Every backbone parameter trains."""
        self.backbone.requires_grad_(True)
        self.frozen_modules = []
        self.train(self.training)

    def train_last_blocks(self, n: int) -> None:
        """Only the last ``n`` of ``self.blocks`` train (none: the whole backbone is frozen);
        frozen leaves stay in eval mode, so their BatchNorm statistics don't move."""
        self.backbone.requires_grad_(False)
        if n == 0:
            self.frozen_modules = [""]
            self.train(self.training)
            return
        trainable = self.blocks[len(self.blocks) - n:]
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

    def train_only_adapters(self) -> None:
        """LoRA: only parameters named ``lora_*`` train in the backbone.

        BatchNorm layers stay in eval mode (their running statistics are part of the
        frozen pretrained weights); dropout follows the module's mode, as in the usual
        LoRA fine-tuning of transformers.
        """
        trainable = 0
        for name, parameter in self.backbone.named_parameters():
            parameter.requires_grad_(is_lora_name(name))
            trainable += is_lora_name(name)
        if not trainable:
            raise RuntimeError("strategy='lora' but the backbone holds no LoRA adapters; they are injected first.")
        self.frozen_modules = [
            name
            for name, module in self.backbone.named_modules()
            if isinstance(module, nn.modules.batchnorm._BatchNorm)
        ]
        self.train(self.training)
