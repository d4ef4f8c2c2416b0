"""The plugin module named by the entry point: one ``@hookimpl`` returning specs."""

from __future__ import annotations

import functools

import sktransfer
from sktransfer import BackboneSpec, ImagePreprocessing

WIDTH = 32


def build_tiny_cnn(width: int = WIDTH, pretrained: bool = False):
    """Three conv blocks and global average pooling: ``(N, 3, H, W) -> (N, width)``.

    There are no pretrained weights; ``pretrained`` is accepted and ignored (the
    spec says ``weights=None``, so sktransfer never asks for them).
    """
    import torch.nn as nn

    def block(c_in, c_out):
        return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2))

    return nn.Sequential(
        block(3, width // 2),
        block(width // 2, width),
        block(width, width),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )


@sktransfer.hookimpl
def register_backbones():
    return [
        BackboneSpec(
            name="example_tinycnn",
            modality="image",
            # Module-level function or functools.partial (never a lambda): specs must pickle.
            build=functools.partial(build_tiny_cnn, WIDTH),
            feature_dim=WIDTH,
            preprocessing=ImagePreprocessing(input_size=32, resize_size=36, mean=(0.5,) * 3, std=(0.5,) * 3),
            blocks=("0", "1", "2"),  # for strategy="partial": names of submodules, input to output
            # For layers=: outputs that can feed the head, input to output. With the default
            # stage_outputs=None they are graph nodes for torchvision's create_feature_extractor.
            stages=("0", "1", "2"),
            weights=None,  # trained from scratch
            # For strategy="lora": the modules that get low-rank adapters, as peft's target_modules
            # (dotted names or their tails), or a function of the built module such as this rule.
            lora_targets=sktransfer.lora_targets_linear_and_conv,
            description="Tiny 3-layer CNN, 32 features, no pretrained weights (example plugin)",
        )
    ]
