"""torchvision ImageNet classifiers as image backbones (the classifier is replaced by identity).

Pretrained weights are read only from the torch hub cache (``torch.hub.get_dir()``),
never downloaded: sktransfer must work on machines without a network.

Stages (``layers=``) are graph nodes for torchvision's ``create_feature_extractor``:
``layer1``..``layer4`` for ResNets, the ``features.i`` blocks for MobileNetV3 and
EfficientNet-B0, ``features.1/3/5/7`` for ConvNeXt, the encoder layers and
``encoder.ln`` for ViT-B/16.
"""

from __future__ import annotations

import functools
import os

from sktransfer._nn.lora import lora_targets_linear_and_conv
from sktransfer._spec.registry import BackboneSpec, ImagePreprocessing, Weights
from sktransfer.exceptions import WeightsUnavailableError
from sktransfer.hookspecs import hookimpl

_RESNET_BLOCKS = ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4")
_RESNET_STAGES = ("layer1", "layer2", "layer3", "layer4")
_VIT_LAYERS = tuple(f"encoder.layers.encoder_layer_{i}" for i in range(12))


def _features(n: int) -> tuple[str, ...]:
    return tuple(f"features.{i}" for i in range(n))


# name -> (pooled feature size, how to cut off the classifier, blocks from input to output,
#          stages from input to output: graph nodes for torchvision's create_feature_extractor)
_ARCHS = {
    "resnet18": (512, "fc", _RESNET_BLOCKS, _RESNET_STAGES),
    "resnet34": (512, "fc", _RESNET_BLOCKS, _RESNET_STAGES),
    "resnet50": (2048, "fc", _RESNET_BLOCKS, _RESNET_STAGES),
    "mobilenet_v3_small": (576, "classifier", _features(13), _features(13)),
    "mobilenet_v3_large": (960, "classifier", _features(17), _features(17)),
    "efficientnet_b0": (1280, "classifier", _features(9), _features(9)),
    # features.0/2/4/6 are the stem and the downsampling layers; 1/3/5/7 the four stages.
    "convnext_tiny": (768, "classifier.2", _features(8) + ("classifier.0",), ("features.1", "features.3", "features.5", "features.7")),
    # Token states (N, 197, 768), class token first; encoder.ln is the final normalised output.
    "vit_b_16": (768, "heads", ("conv_proj",) + _VIT_LAYERS + ("encoder.ln",), _VIT_LAYERS + ("encoder.ln",)),
}


def _default_weights(arch: str):
    import torchvision

    return torchvision.models.get_model_weights(arch).DEFAULT


def _cached_weights_path(arch: str) -> str:
    import torch

    url = _default_weights(arch).url
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(url))


def _weights_available(arch: str) -> bool:
    return os.path.isfile(_cached_weights_path(arch))


def _advice(arch: str) -> str:
    weights = _default_weights(arch)
    path = _cached_weights_path(arch)
    return (
        f"sktransfer never downloads weights. On a machine with internet, run "
        f"`python -c \"import torchvision; torchvision.models.{arch}(weights='{weights.name}')\"` "
        f"and copy {os.path.basename(path)} into {os.path.dirname(path)} here (or set TORCH_HOME), "
        "or pass pretrained=False for random initialisation."
    )


def _strip_classifier(model, attr: str):
    import torch.nn as nn

    parent_name, _, child = attr.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, nn.Identity())
    return model


def build_torchvision(arch: str, pretrained: bool = True):
    """Build torchvision's ``arch`` without its classifier; load cached ImageNet weights."""
    import torch
    import torchvision

    model = torchvision.models.get_model(arch, weights=None)
    if pretrained:
        path = _cached_weights_path(arch)
        if not os.path.isfile(path):
            raise WeightsUnavailableError(
                f"Pretrained weights for backbone {arch!r} ({_default_weights(arch)}) are not on this "
                f"machine: looked for {path}. {_advice(arch)}"
            )
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return _strip_classifier(model, _ARCHS[arch][1])


def _spec(arch: str) -> BackboneSpec:
    feature_dim, _, blocks, stages = _ARCHS[arch]
    # The preprocessing is read from torchvision's weight metadata; this downloads nothing.
    transforms = _default_weights(arch).transforms()
    preprocessing = ImagePreprocessing(
        input_size=int(transforms.crop_size[0]),
        resize_size=int(transforms.resize_size[0]),
        mean=tuple(transforms.mean),
        std=tuple(transforms.std),
        interpolation=transforms.interpolation.value,
        fixed_size=arch.startswith("vit_"),
    )
    return BackboneSpec(
        name=arch,
        modality="image",
        build=functools.partial(build_torchvision, arch),
        feature_dim=feature_dim,
        preprocessing=preprocessing,
        blocks=blocks,
        stages=stages,  # stage_outputs=None: torchvision's create_feature_extractor reads them
        # strategy="lora": linear layers and ungrouped convolutions (not the depthwise ones).
        lora_targets=lora_targets_linear_and_conv,
        weights=Weights(
            source=f"torchvision {_default_weights(arch)} from the torch hub cache",
            check=functools.partial(_weights_available, arch),
            advice=_advice(arch),
        ),
        description=f"torchvision {arch}, ImageNet-1k",
    )


@hookimpl
def register_backbones():
    return [_spec(arch) for arch in _ARCHS]
