"""FusionModule: several branches' features, fused, and one linear head."""

from __future__ import annotations

import torch
import torch.nn as nn

from sktransfer._nn.calls import call_args


class FusionModule(nn.Module):
    """Branches (TransferModules without their heads) -> fusion -> one linear head.

    Each branch's features are first layer-normalised: backbones differ in scale by
    an order of magnitude (EfficientNet-Lite0's pooled features have norms around 47,
    MiniLM's around 4), and without it the head and the gates read mostly the
    loudest branch. A branch of one feature (a passthrough column) is already
    standardised and is left as it is. ``fusion="concat"`` then concatenates the
    features; ``"gated"`` first scales each branch's by a learned gate in (0, 1)
    computed from them, so the model can turn a branch down per sample.
    """

    def __init__(self, branches: dict, dims: list[int], n_outputs: int, fusion: str = "concat",
                 zero_head: bool = False):
        super().__init__()
        self.branches = nn.ModuleDict(branches)
        self.dims = list(dims)
        self.norms = nn.ModuleList([nn.LayerNorm(d) if d > 1 else nn.Identity() for d in dims])
        self.gates = nn.ModuleList([nn.Linear(d, 1) for d in dims]) if fusion == "gated" else None
        self.head = nn.Linear(sum(dims), n_outputs)
        if zero_head:
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)
        # Branches fed precomputed features (frozen, cached): they never run here.
        self.frozen_keys: set[str] = set()
        self.stages = None  # the fused model's stages live in its branches

    def fix_norms(self) -> None:
        """Keep the layer norms at their initial identity scale and zero shift.

        For a head solved by L-BFGS on frozen features: the head is then
        ``LogisticRegression`` on the normalised features. Trained, the norms' scales are
        unpenalised per-feature weights that undo the head's L2 penalty (measured: 4
        points below LogisticRegression with 16 training rows).
        """
        for parameter in self.norms.parameters():
            parameter.requires_grad_(False)

    def precomputed(self, key: str) -> bool:
        return key in self.frozen_keys

    def fuse(self, features: list[torch.Tensor]) -> torch.Tensor:
        features = [norm(f) for f, norm in zip(features, self.norms)]
        if self.gates is not None:
            features = [f * torch.sigmoid(gate(f)) for f, gate in zip(features, self.gates)]
        return torch.cat(features, dim=1)

    def forward(self, features: torch.Tensor | None = None, **inputs) -> torch.Tensor:
        if features is not None:  # every branch frozen: the concatenated cached features
            parts = list(torch.split(features, self.dims, dim=1))
        else:
            parts = []
            for key, branch in self.branches.items():
                if self.precomputed(key):
                    parts.append(inputs[key])
                else:
                    args, kwargs = call_args(inputs[key])
                    parts.append(branch.features(*args, **kwargs))
        return self.head(self.fuse(parts))
