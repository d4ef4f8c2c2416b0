"""Backbone specs and the name-based registry built from the plugins.

A :class:`BackboneSpec` is plain data: it says how to build a backbone and how to
feed it, but builds nothing until :meth:`BackboneSpec.build` is called.  Specs must
pickle (so estimators and search jobs can be shipped to workers): give ``build``,
``blocks`` and ``feature_dim`` module-level functions or :func:`functools.partial`
objects, never lambdas.
"""

from __future__ import annotations

import dataclasses
import difflib
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from .exceptions import BackboneConflictError, UnknownBackboneError

__all__ = [
    "BackboneSpec",
    "ImagePreprocessing",
    "TextPreprocessing",
    "Weights",
    "get_spec",
    "list_backbones",
]

MODALITIES = ("image", "text", "tabular")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ImagePreprocessing:
    """How images are resized and normalised for a backbone (its pretrained config).

    Evaluation resizes the shorter side to ``resize_size`` and center-crops
    ``input_size``; both are in pixels.
    """

    input_size: int = 224
    resize_size: int | None = None
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: Literal["bilinear", "bicubic", "nearest"] = "bilinear"
    # Some models (ViT with learned position embeddings) only accept their pretrained size.
    fixed_size: bool = False

    def with_input_size(self, size: int) -> "ImagePreprocessing":
        """Return a copy for another input size, keeping the resize/crop ratio."""
        ratio = (self.resize_size or self.input_size) / self.input_size
        return dataclasses.replace(self, input_size=int(size), resize_size=int(round(size * ratio)))


@dataclass(frozen=True)
class TextPreprocessing:
    """Where the tokenizer comes from (a name or a directory) and the default truncation."""

    tokenizer: str
    max_length: int = 256


@dataclass(frozen=True)
class Weights:
    """Where a backbone's pretrained weights come from.

    Parameters
    ----------
    source : str
        Human-readable origin, shown in listings and errors.
    check : callable, optional
        ``check() -> bool`` tells whether the weights are on this machine now,
        without any network access.
    advice : str
        What to do when they are missing.
    """

    source: str
    check: Callable[[], bool] | None = None
    advice: str = ""

    def available_offline(self) -> bool:
        return True if self.check is None else bool(self.check())


@dataclass(frozen=True)
class BackboneSpec:
    """Everything an estimator needs to know about a backbone.

    Parameters
    ----------
    name : str
        Unique name, e.g. ``"resnet18"``.
    modality : {"image", "text", "tabular"}
    build : callable
        ``build(pretrained: bool) -> torch.nn.Module``.  Image and tabular backbones
        return pooled features of shape ``(N, feature_dim)``; text backbones take the
        tokenizer's output as keyword arguments and return token states
        ``(N, T, feature_dim)``, pooled by the estimator.
    feature_dim : int or callable
        Size of the pooled features, or a zero-argument callable returning it
        (for plugins that only know it once asked).
    preprocessing : ImagePreprocessing, TextPreprocessing or None
    blocks : tuple of str or callable
        Dotted names of the backbone's blocks from input to output, used by
        ``strategy="partial"``; or ``blocks(module) -> list[str]``.
    stages : tuple of str or callable
        Names of the stages whose outputs can feed the head (``layers=``), from input
        to output; or a zero-argument callable returning them (listing must not build
        a model).  Empty: the backbone offers only its final features.
    stage_outputs : callable or None
        ``stage_outputs(backbone, names) -> f`` where ``f(*args, **kwargs)`` takes the
        backbone's inputs and returns one tensor per name, in that order: feature maps
        ``(N, C, H, W)``, token states ``(N, T, D)`` or vectors ``(N, D)``.  ``None``
        uses torchvision's ``create_feature_extractor`` with the stage names as graph
        nodes (module paths of the backbone).
    weights : Weights or None
        ``None`` means the backbone has no pretrained weights (trained from scratch).
    description : str
    plugin, distribution : str
        Filled in by the registry: which plugin and distribution declared it.
    """

    name: str
    modality: Literal["image", "text", "tabular"]
    build: Callable[..., Any]
    feature_dim: int | Callable[[], int]
    preprocessing: ImagePreprocessing | TextPreprocessing | None = None
    blocks: tuple[str, ...] | Callable[[Any], list[str]] = ()
    weights: Weights | None = None
    description: str = ""
    stages: tuple[str, ...] | Callable[[], list[str]] = ()
    stage_outputs: Callable[[Any, list[str]], Callable[..., Any]] | None = None
    plugin: str = field(default="", compare=False)
    distribution: str = field(default="", compare=False)

    def __post_init__(self):
        if self.modality not in MODALITIES:
            raise ValueError(
                f"BackboneSpec {self.name!r}: modality must be one of {MODALITIES}, got {self.modality!r}."
            )
        if not callable(self.build):
            raise TypeError(f"BackboneSpec {self.name!r}: build must be callable, got {self.build!r}.")

    def get_feature_dim(self) -> int:
        return int(self.feature_dim() if callable(self.feature_dim) else self.feature_dim)

    def get_blocks(self, module) -> list[str]:
        return list(self.blocks(module) if callable(self.blocks) else self.blocks)

    def get_stages(self) -> list[str]:
        return list(self.stages() if callable(self.stages) else self.stages)

    def available_offline(self) -> bool:
        return self.weights is None or self.weights.available_offline()


# Names that a plugin we know of provides, so that a missing plugin gets a useful hint.
_PROVIDER_HINTS = {
    "timm/": ("sktransfer-timm", "pip install -e plugins/sktransfer-timm"),
    "efficientnet_lite0": ("sktransfer-timm", "pip install -e plugins/sktransfer-timm"),
}

_cache: dict[str, Any] = {"key": None, "specs": None}


def _collect_specs(pm) -> dict[str, BackboneSpec]:
    """Call every plugin's ``register_backbones`` and index the specs by name."""
    distributions = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    specs: dict[str, BackboneSpec] = {}
    # Hook implementations are called one by one (not through pm.hook) so that each
    # spec can be attributed to its plugin, and one failing plugin can be skipped.
    for impl in reversed(pm.hook.register_backbones.get_hookimpls()):
        dist = distributions.get(id(impl.plugin))
        dist_name = dist.metadata["name"] if dist is not None else "sktransfer"
        try:
            returned = impl.function()
            returned = list(returned or [])
            for spec in returned:
                if not isinstance(spec, BackboneSpec):
                    raise TypeError(f"register_backbones returned {type(spec).__name__}, not BackboneSpec")
        except Exception as exc:  # a broken plugin must not break the others
            warnings.warn(
                f"sktransfer plugin {impl.plugin_name!r} ({dist_name}) failed in register_backbones "
                f"and is skipped: {exc!r}",
                RuntimeWarning,
                stacklevel=3,
            )
            continue
        for spec in returned:
            spec = dataclasses.replace(spec, plugin=impl.plugin_name, distribution=dist_name)
            if spec.name in specs:
                other = specs[spec.name]
                raise BackboneConflictError(
                    f"Backbone name {spec.name!r} is registered twice: by plugin {other.plugin!r} "
                    f"({other.distribution}) and by plugin {spec.plugin!r} ({spec.distribution}). "
                    "Uninstall one of them, or block one with "
                    "sktransfer.plugins.get_plugin_manager().set_blocked(name)."
                )
            specs[spec.name] = spec
    return specs


def _all_specs() -> dict[str, BackboneSpec]:
    from .plugins import get_plugin_manager

    pm = get_plugin_manager()
    key = tuple(id(p) for p in pm.get_plugins())
    if _cache["key"] != key:
        _cache["specs"] = _collect_specs(pm)
        _cache["key"] = key
    return _cache["specs"]


def list_backbones(modality: str | None = None) -> list[str]:
    """Return the sorted names of every registered backbone.

    Parameters
    ----------
    modality : {"image", "text", "tabular"}, optional
        Only list backbones of this modality.
    """
    if modality is not None and modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES} or None, got {modality!r}.")
    return sorted(n for n, s in _all_specs().items() if modality is None or s.modality == modality)


def get_spec(name: str) -> BackboneSpec:
    """Return the spec registered under ``name``.

    A Hugging Face model directory (one holding ``config.json``) or a hub id of the
    form ``"hf:org/model"`` resolves to a text encoder even when not registered.

    Raises
    ------
    UnknownBackboneError
        With the closest registered names, and the plugin to install when we know it.
    """
    if not isinstance(name, str):
        raise TypeError(f"A backbone name must be a str, got {type(name).__name__}.")
    specs = _all_specs()
    if name in specs:
        return specs[name]
    from .backbones.huggingface import spec_for_path_or_hub_id

    spec = spec_for_path_or_hub_id(name)
    if spec is not None:
        return spec
    message = f"Unknown backbone {name!r}."
    for prefix, (dist, command) in _PROVIDER_HINTS.items():
        if name == prefix or (prefix.endswith("/") and name.startswith(prefix)):
            message += f" It is provided by the plugin {dist}, which is not installed: {command}."
            break
    close = difflib.get_close_matches(name, list(specs), n=5, cutoff=0.6)
    if close:
        message += f" Did you mean: {', '.join(close)}?"
    message += " See sktransfer.list_backbones() or `python -m sktransfer backbones` for every name."
    raise UnknownBackboneError(message)
