"""sktransfer.testing: the checks plugin authors run on their specs."""

import dataclasses
import functools

import pytest
import torch.nn as nn

import sktransfer.backbones.tabular
from sktransfer import BackboneSpec, ImagePreprocessing, get_spec
from sktransfer.testing import check_backbone_spec, check_plugin


def build_small_cnn(width=8, pretrained=False):
    return nn.Sequential(
        nn.Conv2d(3, width, 3), nn.BatchNorm2d(width), nn.ReLU(), nn.Conv2d(width, width, 3),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    )


class StagesWithoutBatch:
    """A broken ``stage_outputs``: it averages the batch away."""

    def __init__(self, backbone, names):
        self.backbone, self.names = backbone, list(names)

    def __call__(self, x):
        return [self.backbone[: int(n) + 1](x).mean(0) for n in self.names]


class OneStageTooFew:
    """A broken ``stage_outputs``: it drops the last requested stage."""

    def __init__(self, backbone, names):
        self.backbone, self.names = backbone, list(names)

    def __call__(self, x):
        return [self.backbone[: int(n) + 1](x) for n in self.names[:-1]]


def _good_spec(**changes):
    spec = BackboneSpec(
        name="small_cnn",
        modality="image",
        build=functools.partial(build_small_cnn, 8),
        feature_dim=8,
        preprocessing=ImagePreprocessing(input_size=16, resize_size=18),
        blocks=("0", "1", "3"),
        stages=("2", "3"),
        plugin="tests",
    )
    return dataclasses.replace(spec, **changes)


def test_passes_on_a_good_spec():
    assert check_backbone_spec(_good_spec()).name == "small_cnn"
    check_backbone_spec(_good_spec(), trainable_blocks=2)


@pytest.mark.slow
def test_passes_on_efficientnet_lite0_with_its_weights():
    check_backbone_spec("efficientnet_lite0", pretrained=True, image_size=64)


@pytest.mark.parametrize("name", ["mlp", "resnet18", "mobilenet_v3_small", "all-MiniLM-L6-v2"])
def test_passes_on_builtin_specs(name):
    check_backbone_spec(name, pretrained=False, image_size=64)


def test_pretrained_if_available_builds_without_missing_weights():
    spec = get_spec("resnet18")
    check_backbone_spec(spec, pretrained="if_available", image_size=32)


def test_check_plugin_on_a_builtin_plugin():
    assert [s.name for s in check_plugin(sktransfer.backbones.tabular)] == ["mlp", "passthrough"]


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"feature_dim": 16}, r"small_cnn.*feature_dim=16"),
        ({"feature_dim": lambda: 16}, "does not pickle"),
        ({"build": lambda pretrained=False: build_small_cnn()}, "does not pickle"),
        ({"preprocessing": ImagePreprocessing(input_size=16, std=(0.2, 0.0, 0.2))}, "std must be positive"),
        ({"preprocessing": ImagePreprocessing(input_size=16, mean=(0.5, 0.5))}, "mean must be 3"),
        ({"preprocessing": ImagePreprocessing(input_size=0)}, "input_size must be a positive int"),
        ({"blocks": ()}, "declares no blocks"),
        ({"blocks": ("0", "nope")}, "'nope' is not a submodule"),
        ({"blocks": ("0", "2")}, "trains no parameter"),  # the last block is a ReLU
        ({"stages": ("2", "nope")}, "stage_outputs failed for stage 'nope'"),
        ({"stages": ("2", "3", "2")}, r"lists stage\(s\) \['2'\] twice"),
        ({"stage_outputs": StagesWithoutBatch}, r"stage '2' has shape \(8, 14, 14\) for a batch of 2"),
        ({"stage_outputs": OneStageTooFew}, "returned 0 tensors for 1 stage '2'"),
    ],
)
def test_fails_on_a_wrong_spec(changes, match):
    with pytest.raises(AssertionError, match=match) as info:
        check_backbone_spec(_good_spec(**changes))
    assert "BackboneSpec 'small_cnn' (plugin tests)" in str(info.value)


class DropoutNet(nn.Module):
    """Functional dropout tied to ``self.training``: fx bakes the mode in at tracing time."""

    def __init__(self, width=8):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3)
        self.out = nn.Conv2d(width, width, 1)

    def forward(self, x):
        x = nn.functional.dropout(self.conv(x), 0.5, self.training)
        return self.out(x).mean(dim=(2, 3))


def build_dropout_net(pretrained=False):
    return DropoutNet()


class FrozenModeStages:
    """A broken ``stage_outputs``: it keeps the mode the backbone had when it was made."""

    def __init__(self, backbone, names):
        self.backbone, self.names, self.training = backbone, list(names), backbone.training

    def __call__(self, x):
        h = nn.functional.dropout(self.backbone.conv(x), 0.5, self.training)
        return [h]


SEEN_STAGES = []


class RecordingStages(StagesWithoutBatch):
    def __call__(self, x):
        SEEN_STAGES.append(tuple(self.names))
        return [self.backbone[: int(n) + 1](x) for n in self.names]


def test_stage_check_runs_the_declared_stages():
    SEEN_STAGES.clear()
    check_backbone_spec(_good_spec(stage_outputs=RecordingStages))
    assert SEEN_STAGES == [("2",), ("3",), ("2", "3"), ("2", "3")]  # all together: twice, in eval mode
    check_backbone_spec(_good_spec(stages=()))  # no stages: nothing to check


def test_stage_outputs_must_follow_eval_mode():
    spec = _good_spec(build=build_dropout_net, blocks=("conv", "out"), stages=("conv",), stage_outputs=FrozenModeStages)
    with pytest.raises(AssertionError, match="stage 'conv' changes between two calls in eval mode"):
        check_backbone_spec(spec)


def test_default_fx_stage_outputs_follow_eval_mode():
    # torchvision keeps a train and an eval graph; the reader switches graphs with the backbone's mode.
    check_backbone_spec(_good_spec(build=build_dropout_net, blocks=("conv", "out"), stages=("conv", "out")))


def test_fails_when_freezing_does_not_hold(monkeypatch):
    from sktransfer._nn.module import TransferModule

    def leaky_freeze(self, n):
        self.backbone.requires_grad_(True)  # freezes nothing
        self.frozen_modules = []

    monkeypatch.setattr(TransferModule, "train_last_blocks", leaky_freeze)
    with pytest.raises(AssertionError, match="left .* trainable"):
        check_backbone_spec(_good_spec())


def test_check_plugin_rejects_bad_plugins():
    class NoHook:
        pass

    with pytest.raises(AssertionError, match="no register_backbones"):
        check_plugin(NoHook())

    class Undecorated:
        @staticmethod
        def register_backbones():
            return []

    with pytest.raises(AssertionError, match="hookimpl"):
        check_plugin(Undecorated())

    class Twice:
        @staticmethod
        @sktransfer.hookimpl
        def register_backbones():
            return [_good_spec(), _good_spec()]

    with pytest.raises(AssertionError, match="twice"):
        check_plugin(Twice())
