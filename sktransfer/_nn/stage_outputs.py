"""Reading a backbone's intermediate stages in one pass (torchvision's feature extraction)."""

from __future__ import annotations

import torch

from sktransfer._spec.stages import FINAL_FEATURES


class FxStageOutputs:
    """The default ``stage_outputs``: torchvision's ``create_feature_extractor``.

    The graph module it builds shares the backbone's submodules (no copy of the
    weights), so training the backbone trains what this reads.
    """

    def __init__(self, backbone, names: list[str]):
        from torchvision.models.feature_extraction import create_feature_extractor

        self.backbone = backbone
        self.names = list(names)
        from sktransfer._nn.lora import tracer_leaf_modules

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


class WithFinalFeatures:
    """Stages and the backbone's final features (``"final"``) for a reader that returns stages
    only: the final features take a second pass, through the backbone's own forward.

    Readers that return them from their one pass set ``reads_final_features = True`` on the
    spec's ``stage_outputs`` and are called with ``"final"`` among the names.
    """

    def __init__(self, read_stages, names: list[str], final_features):
        self.read_stages = read_stages  # None when only the final features are asked
        self.names = names
        self.final_features = final_features

    def __call__(self, *args, **kwargs) -> list[torch.Tensor]:
        stages = iter(self.read_stages(*args, **kwargs) if self.read_stages is not None else ())
        final = self.final_features(*args, **kwargs)
        return [final if name == FINAL_FEATURES else next(stages) for name in self.names]
