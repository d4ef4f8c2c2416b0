"""What of a fitted estimator goes into the graph: its branches (one per backbone) with
their inputs, and how their features combine.

A single-backbone model is one branch whose features go through its head; a fused
classifier or regressor (a list of backbones, or a column mapping) has one branch per
backbone, fused by its :class:`~sktransfer._nn.fusion_module.FusionModule`; a fused
:class:`~sktransfer.TransferEmbedder` puts its branches' features side by side. The
graph takes each branch's inputs in turn, named ``"<key>.<input>"`` for fused models.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from sktransfer._inputs.fused import FusedInput
from sktransfer._nn.lora import merge_adapters
from sktransfer._onnx.config import INIT_INPUT
from sktransfer._onnx.graph import BranchFeatures, Concat, FusedHead, Head
from sktransfer._onnx.signatures import BATCH, Signature, signature_for


@dataclass
class Branch:
    """One backbone of the exported model: its signature, and where its column is."""

    name: str | None
    column: object  # a DataFrame column, or None: the whole X
    signature: Signature


class GraphInputs:
    """The graph's inputs: every branch's, in order, and the predictor's JSON for them.

    ``offsets``: for a model fitted with ``init=``, its number of outputs; the graph then
    takes the ``init=`` model's offsets last, as :data:`INIT_INPUT`.
    """

    def __init__(self, branches: list[Branch], fused: bool, mapped: bool = False, remainder: str = "error",
                 columns=None, offsets: int | None = None):
        self.branches, self.fused, self.mapped, self.remainder = branches, fused, mapped, remainder
        self.columns = None if columns is None else [str(c) for c in columns]
        self.offsets = offsets

    @property
    def names(self) -> list[str]:
        names = [name for b in self.branches for name in b.signature.graph_names]
        return names if self.offsets is None else [*names, INIT_INPUT]

    def example(self, n: int) -> tuple[torch.Tensor, ...]:
        tensors = tuple(t for b in self.branches for t in b.signature.example(n))
        if self.offsets is None:
            return tensors
        return (*tensors, torch.randn(n, self.offsets, generator=torch.Generator().manual_seed(n)))

    def dynamic_shapes(self) -> tuple[dict, ...]:
        shapes = tuple(d for b in self.branches for d in b.signature.dynamic_shapes())
        return shapes if self.offsets is None else (*shapes, {0: BATCH})

    def config(self, directory) -> dict:
        if not self.fused:
            return self.branches[0].signature.config(directory)
        return {
            "kind": "fused",
            "mapped": self.mapped,
            "remainder": self.remainder,
            "columns": self.columns,
            "branches": [
                {"name": b.name, "key": b.signature.key, "column": b.column,
                 "inputs": b.signature.config(directory, b.signature.key)}
                for b in self.branches
            ],
        }


def _for_export(module: nn.Module) -> nn.Module:
    """A CPU copy of ``module`` in eval mode, LoRA adapters folded into its weights."""
    module = copy.deepcopy(module).cpu().eval()
    for sub in module.modules():
        if hasattr(sub, "channels_last"):
            sub.channels_last = False  # a CUDA speed-up; the graph takes plain NCHW tensors
    return merge_adapters(module)


def _features(module, signature: Signature) -> BranchFeatures:
    return BranchFeatures(module, signature.input_names, signature.keywords, signature.chunk_pooling)


def exported_parts(estimator, module: nn.Module) -> tuple[list[BranchFeatures], nn.Module, GraphInputs]:
    """The branches' feature modules, their combination and the graph's inputs for a fitted
    classifier or regressor (``module``: its net's module) or embedder (``module``: ``module_``;
    None for a fused embedder)."""
    if hasattr(estimator, "branches_"):  # a fused TransferEmbedder: one fitted embedder per branch
        branches, features = [], []
        for i, (name, column, child) in enumerate(estimator.branches_):
            signature = signature_for(child.adapter_, child, key=f"b{i}")
            branches.append(Branch(name, column, signature))
            features.append(_features(_for_export(child.module_), signature))
        inputs = GraphInputs(branches, True, hasattr(estimator, "feature_names_in_"), estimator.remainder,
                             getattr(estimator, "feature_names_in_", None))
        return features, Concat(), inputs
    module = _for_export(module)
    adapter = estimator.adapter_
    if isinstance(adapter, FusedInput):
        branches = [Branch(b.name, b.column, signature_for(b.adapter, b.columns, key=b.key)) for b in adapter.branches]
        features = [_features(module.branches[b.signature.key], b.signature) for b in branches]
        inputs = GraphInputs(branches, True, adapter.mapped, adapter.remainder,
                             getattr(estimator, "feature_names_in_", None))
        return features, FusedHead(module), inputs
    signature = signature_for(adapter, estimator)
    return [_features(module, signature)], Head(module.head), GraphInputs([Branch(None, None, signature)], False)
