"""Backbones for 2-D float input: a small MLP, and ``passthrough`` (the standardised
columns themselves, for numeric columns beside images and texts in a fused model).

Neither has pretrained weights: ``pretrained`` is ignored and ``strategy="full"``
(the default) trains the MLP from scratch.  Inputs are standardised by the estimator.
"""

from __future__ import annotations

import functools

from sktransfer._spec.registry import BackboneSpec
from sktransfer.hookspecs import hookimpl

MLP_WIDTH = 128


def build_mlp(width: int = MLP_WIDTH, pretrained: bool = False):
    """Two ReLU layers; the first is lazy, so the input width is taken from the data."""
    import torch.nn as nn

    return nn.Sequential(nn.LazyLinear(width), nn.ReLU(), nn.Linear(width, width), nn.ReLU())


def build_passthrough(pretrained: bool = False):
    """The standardised input columns as they are: a linear model on them, or numeric
    columns fused with other branches (``backbone={"price": "passthrough", ...}``)."""
    import torch.nn as nn

    return nn.Identity()


@hookimpl
def register_backbones():
    return [
        BackboneSpec(
            name="mlp",
            modality="tabular",
            build=functools.partial(build_mlp, MLP_WIDTH),
            feature_dim=MLP_WIDTH,
            blocks=("0", "2"),
            # No stages: the first hidden layer is not a useful head input on its own,
            # and layers= then says the backbone offers only its final features.
            stages=(),
            weights=None,
            description=f"2-layer MLP ({MLP_WIDTH} units) for numeric feature matrices, no pretrained weights",
        ),
        BackboneSpec(
            name="passthrough",
            modality="tabular",
            build=build_passthrough,
            feature_dim=0,  # the number of columns, read from the data
            blocks=(),
            stages=(),
            weights=None,
            description="the standardised numeric columns themselves, e.g. a price beside a photo and a caption",
        ),
    ]
