"""Backbone specs and the name-based registry built from the plugins.

A :class:`BackboneSpec` is plain data: it says how to build a backbone and how to
feed it, but builds nothing until :meth:`BackboneSpec.build` is called.  Specs must
pickle (so estimators and search jobs can be shipped to workers): give ``build``,
``blocks``, ``feature_dim``, ``stages``, ``stage_outputs`` and ``lora_targets`` module-level functions,
classes or :func:`functools.partial` objects, never lambdas.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from sktransfer import _caches
from sktransfer import plugins as _plugins
from sktransfer.exceptions import BackboneConflictError, UnknownBackboneError

__all__ = [
    "BackboneSpec",
    "ImagePreprocessing",
    "TextPreprocessing",
    "Weights",
    "get_spec",
    "list_backbones",
    "list_stages",
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
    """How texts are tokenised for a backbone, and the default truncation.

    Parameters
    ----------
    tokenizer : str
        Where the tokenizer comes from (a name or a directory), shown in listings and errors.
    max_length : int
        Tokens kept per text unless the estimator's ``max_length`` says otherwise.
    load_tokenizer : callable or None
        ``load_tokenizer() -> tokenizer``, called each time an estimator is set up for
        this backbone (and by :mod:`sktransfer.testing`); the tokenizer is used as is,
        for as long as the fitted estimator lives, and pickled with it. It must behave
        like a transformers tokenizer: ``tokenizer(texts, padding="longest",
        truncation=True, max_length=..., return_tensors="pt")`` gives the backbone's
        keyword arguments, with ``num_special_tokens_to_add``, ``model_max_length`` and
        ``name_or_path``; ``long_text="chunk"`` needs a fast (Rust) one.  Read local
        files only and raise when they are missing.  ``None``: the backbone can't be
        used (a clear error says its plugin gives no tokenizer).
    model_config : callable or None
        ``model_config() -> config``, the model's configuration read without building
        it; its ``max_position_embeddings`` (less the padding offset, from
        ``pad_token_id``, of RoBERTa-like ``model_type`` values) bounds ``max_length``.  It may raise
        or return ``None`` when there is none; ``None`` (or a config without positions)
        leaves the bound to the tokenizer's ``model_max_length``.

    Both must pickle, like the spec's other callables: module-level functions or
    :func:`functools.partial` objects, never lambdas.
    """

    tokenizer: str
    max_length: int = 256
    # Added after specs were first pickled: pickles without them get these class-level
    # defaults (a dataclass's defaults are class attributes; unpickling fills __dict__).
    load_tokenizer: Callable[[], Any] | None = None
    model_config: Callable[[], Any] | None = None


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
    hub_id : str, optional
        The weights' Hugging Face Hub id (``"owner/name"``), where they come from the
        Hub; model cards name it as ``base_model``.
    license : str, optional
        The weights' license as a Hub license id (``"apache-2.0"``), where known.
    """

    source: str
    check: Callable[[], bool] | None = None
    advice: str = ""
    hub_id: str | None = None
    license: str | None = None

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
        (for plugins that only know it once asked). ``0``: the size follows the
        input and is read from the data (``passthrough``).
    preprocessing : ImagePreprocessing, TextPreprocessing or None
    blocks : tuple of str or callable
        Dotted names of the backbone's blocks from input to output, used by
        ``strategy="partial"``; or ``blocks(module) -> list[str]``.
    stages : tuple of str or callable
        Names of the stages whose outputs can feed the head (``layers=``), from input
        to output, each listed once; or a zero-argument callable returning them.
        :meth:`get_stages` must answer without building a model (read a config, or
        build on the ``meta`` device and cache).  Empty: the backbone offers only its
        final features.
    stage_outputs : callable or None
        ``stage_outputs(backbone, names) -> f``, where ``backbone`` is the module that
        ``build(pretrained=...)`` returned and ``names`` a subset of the stages.
        ``f(*args, **kwargs)`` takes exactly what the backbone's forward takes (an
        image batch; the tokenizer's dict as keyword arguments for text) and returns
        a list with one tensor per name, in the order of ``names``: feature maps
        ``(N, C, H, W)``, token states ``(N, T, D)`` or vectors ``(N, D)``, pooled by
        the estimator.  ``f`` must read the backbone's current weights (never a copy)
        and follow its train/eval mode, and must pickle (a module-level class, not a
        closure).  ``None`` uses torchvision's ``create_feature_extractor`` with the
        stage names as graph nodes (module paths of the backbone),
        :func:`sktransfer._nn.stage_outputs.fx_stage_outputs`.  ``layers=`` may add
        ``"final"`` (:data:`sktransfer.FINAL_FEATURES`), the backbone's own output: it
        takes a second pass through the backbone's forward, unless the function has
        ``reads_final_features = True`` and then returns it for that name itself.
    weights : Weights or None
        ``None`` means the backbone has no pretrained weights (trained from scratch).
    lora_targets : tuple of str or callable
        The modules that ``strategy="lora"`` gives low-rank adapters (peft's LoRA):
        names as peft's ``target_modules`` list takes them (a module matches when its
        dotted name in the built backbone equals an entry or ends with ``"." + entry``,
        e.g. ``("query", "value")``), or ``lora_targets(module) -> list[str]`` returning
        the dotted names of ``module``'s submodules (the module ``build`` returned).
        Targets must be layers peft's LoRA supports (``nn.Linear``, ``nn.Conv2d``
        without groups, ``nn.Embedding``...).  Ready-made rules:
        :func:`sktransfer.lora_targets_linear_and_conv` (image backbones) and
        :func:`sktransfer.lora_targets_attention` (transformers encoders).  Empty: the
        backbone does not support ``strategy="lora"`` (a clear error says so).
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
    lora_targets: tuple[str, ...] | Callable[[Any], list[str]] = ()
    plugin: str = field(default="", compare=False)
    distribution: str = field(default="", compare=False)

    def __post_init__(self):
        if self.modality not in MODALITIES:
            raise ValueError(
                f"BackboneSpec {self.name!r}: modality must be one of {MODALITIES}, got {self.modality!r}."
            )
        if not callable(self.build):
            raise TypeError(f"BackboneSpec {self.name!r}: build must be callable, got {self.build!r}.")
        if isinstance(self.lora_targets, (list, str)):  # specs are hashed: a tuple, never a list
            targets = (self.lora_targets,) if isinstance(self.lora_targets, str) else tuple(self.lora_targets)
            object.__setattr__(self, "lora_targets", targets)

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

_cache: dict[str, Any] = {"key": None, "specs": None, "listed": None}


def _clear_cache() -> None:
    """Forget the specs and names the plugins gave; the next lookup asks them again."""
    _cache.update(key=None, specs=None, listed=None)


def _describe_cache() -> str:
    specs, listed = _cache["specs"], _cache["listed"]
    if specs is None:
        return "the plugins' backbone specs and names (not collected)"
    return f"{len(specs)} registered backbone spec(s)" + ("" if listed is None else f" and {len(listed)} listed name(s)")


_caches.register("registry", _clear_cache, _describe_cache)


def _distributions(pm) -> dict[int, str]:
    """Distribution name of each plugin object (built-ins belong to sktransfer)."""
    return {id(plugin): dist.metadata["name"] for plugin, dist in pm.list_plugin_distinfo()}


def _impls(hook):
    """A hook's implementations in the order pluggy calls them."""
    return list(reversed(hook.get_hookimpls()))


def _warn_skipped(impl, dist_name: str, hook: str, exc: BaseException) -> None:
    warnings.warn(
        f"sktransfer plugin {impl.plugin_name!r} ({dist_name}) failed in {hook} and is skipped: {exc!r}",
        RuntimeWarning,
        stacklevel=4,
    )


def _conflict(name: str, first: tuple[str, str], second: tuple[str, str]) -> BackboneConflictError:
    return BackboneConflictError(
        f"Backbone name {name!r} is registered twice: by plugin {first[0]!r} ({first[1]}) and by plugin "
        f"{second[0]!r} ({second[1]}). Uninstall one of them, or block one with "
        "sktransfer.plugins.get_plugin_manager().set_blocked(name)."
    )


def _collect_specs(pm) -> dict[str, BackboneSpec]:
    """Call every plugin's ``register_backbones`` and index the specs by name."""
    distributions = _distributions(pm)
    specs: dict[str, BackboneSpec] = {}
    # Hook implementations are called one by one (not through pm.hook) so that each
    # spec can be attributed to its plugin, and one failing plugin can be skipped.
    for impl in _impls(pm.hook.register_backbones):
        dist_name = distributions.get(id(impl.plugin), "sktransfer")
        try:
            returned = impl.function()
            returned = list(returned or [])
            for spec in returned:
                if not isinstance(spec, BackboneSpec):
                    raise TypeError(f"register_backbones returned {type(spec).__name__}, not BackboneSpec")
        except Exception as exc:  # a broken plugin must not break the others
            _warn_skipped(impl, dist_name, "register_backbones", exc)
            continue
        for spec in returned:
            spec = dataclasses.replace(spec, plugin=impl.plugin_name, distribution=dist_name)
            if spec.name in specs:
                other = specs[spec.name]
                raise _conflict(spec.name, (other.plugin, other.distribution), (spec.plugin, spec.distribution))
            specs[spec.name] = spec
    return specs


def _collect_listed(pm, specs: dict[str, BackboneSpec]) -> dict[str, tuple[str, str, str]]:
    """Call every plugin's ``list_backbone_names``: ``name -> (modality, plugin, distribution)``.

    A listed name that is also registered, or listed by two plugins, is a clash.
    """
    distributions = _distributions(pm)
    listed: dict[str, tuple[str, str, str]] = {}
    for impl in _impls(pm.hook.list_backbone_names):
        dist_name = distributions.get(id(impl.plugin), "sktransfer")
        try:
            pairs = [tuple(pair) for pair in (impl.function() or [])]
            for pair in pairs:
                if len(pair) != 2 or not isinstance(pair[0], str) or pair[1] not in MODALITIES:
                    raise TypeError(
                        f"list_backbone_names must return (name, modality) pairs with a modality in "
                        f"{MODALITIES}, got {pair!r}"
                    )
        except Exception as exc:
            _warn_skipped(impl, dist_name, "list_backbone_names", exc)
            continue
        mine: set[str] = set()
        for name, modality in pairs:
            if name in mine:
                continue  # a plugin may list a name twice; it is still one backbone
            mine.add(name)
            if name in specs:
                other = specs[name]
                raise _conflict(name, (other.plugin, other.distribution), (impl.plugin_name, dist_name))
            if name in listed:
                raise _conflict(name, listed[name][1:], (impl.plugin_name, dist_name))
            listed[name] = (modality, impl.plugin_name, dist_name)
    return listed


def _state(pm) -> dict[str, Any]:
    key = tuple(id(p) for p in pm.get_plugins())
    if _cache["key"] != key:
        _cache.update(key=key, specs=None, listed=None)
    return _cache


def _all_specs() -> dict[str, BackboneSpec]:
    """Specs of ``register_backbones``, by name (names resolved on demand are not here)."""
    pm = _plugins.get_plugin_manager()
    state = _state(pm)
    if state["specs"] is None:
        state["specs"] = _collect_specs(pm)
    return state["specs"]


def _listed_names() -> dict[str, tuple[str, str, str]]:
    """Names of ``list_backbone_names``: ``name -> (modality, plugin, distribution)``."""
    pm = _plugins.get_plugin_manager()
    specs = _all_specs()
    state = _state(pm)
    if state["listed"] is None:
        state["listed"] = _collect_listed(pm, specs)
    return state["listed"]


def _all_names() -> dict[str, str]:
    """Every listable name and its modality."""
    names = {name: spec.modality for name, spec in _all_specs().items()}
    names.update((name, modality) for name, (modality, _, _) in _listed_names().items())
    return names


def list_backbones(modality: str | None = None, pattern: str | None = None) -> list[str]:
    """Return the sorted names of every backbone the installed plugins offer.

    No spec is built for names that plugins resolve on demand (``timm/...``).
    Hugging Face directories and ``"hf:<hub id>"`` names are open-ended and not listed.

    Parameters
    ----------
    modality : {"image", "text", "tabular"}, optional
        Only list backbones of this modality.
    pattern : str, optional
        Shell-style filter on the names (``*``, ``?``, ``[seq]``), case-sensitive,
        like ``timm.list_models("resnet*")``: ``"timm/resnet*"``, ``"*mobilenet*"``.
    """
    if modality is not None and modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES} or None, got {modality!r}.")
    if pattern is not None:
        if not isinstance(pattern, str):
            raise TypeError(f"pattern must be a str such as 'timm/resnet*', or None; got {type(pattern).__name__}.")
        if not pattern:
            raise ValueError("pattern is empty; give a shell-style filter such as 'timm/resnet*', or None.")
    names = (n for n, m in _all_names().items() if modality is None or m == modality)
    if pattern is not None:
        names = (n for n in names if fnmatch.fnmatchcase(n, pattern))
    return sorted(names)


def _resolve(name: str) -> BackboneSpec | None:
    """Ask every ``resolve_backbone`` implementation; two answers for one name are a clash."""
    pm = _plugins.get_plugin_manager()
    distributions = _distributions(pm)
    found: BackboneSpec | None = None
    for impl in _impls(pm.hook.resolve_backbone):
        dist_name = distributions.get(id(impl.plugin), "sktransfer")
        try:
            spec = impl.function(name=name)
            if spec is not None and not isinstance(spec, BackboneSpec):
                raise TypeError(f"resolve_backbone returned {type(spec).__name__}, not BackboneSpec or None")
            if spec is not None and spec.name != name:
                raise ValueError(f"resolve_backbone({name!r}) returned a spec named {spec.name!r}")
        except Exception as exc:  # a broken plugin must not break the others
            _warn_skipped(impl, dist_name, "resolve_backbone", exc)
            continue
        if spec is None:
            continue
        spec = dataclasses.replace(spec, plugin=impl.plugin_name, distribution=dist_name)
        if found is not None:
            raise _conflict(name, (found.plugin, found.distribution), (spec.plugin, spec.distribution))
        found = spec
    return found


def get_spec(name: str) -> BackboneSpec:
    """Return the spec of the backbone ``name``.

    Names registered by ``register_backbones`` come first; then the plugins'
    ``resolve_backbone`` hooks are asked (a Hugging Face model directory, one holding
    ``config.json``, or ``"hf:org/model"`` resolves to a text encoder; ``timm/<name>``
    when sktransfer-timm is installed).

    Raises
    ------
    UnknownBackboneError
        With the closest names, and the plugin to install when we know it.
    BackboneConflictError
        Two plugins resolve ``name``.
    """
    if not isinstance(name, str):
        raise TypeError(f"A backbone name must be a str, got {type(name).__name__}.")
    specs = _all_specs()
    if name in specs:
        return specs[name]
    spec = _resolve(name)
    if spec is not None:
        return spec
    message = f"Unknown backbone {name!r}."
    installed = {dist.metadata["name"] for _, dist in _plugins.get_plugin_manager().list_plugin_distinfo()}
    for prefix, (dist, command) in _PROVIDER_HINTS.items():
        if dist in installed:
            continue
        if name == prefix or (prefix.endswith("/") and name.startswith(prefix)):
            message += f" It is provided by the plugin {dist}, which is not installed: {command}."
            break
    try:
        known = list(_all_names())
    except Exception:  # a clash among listed names must not hide the unknown name
        known = list(specs)
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
    if close:
        message += f" Did you mean: {', '.join(close)}?"
    message += " See sktransfer.list_backbones() or `python -m sktransfer backbones` for every name."
    raise UnknownBackboneError(message)


def list_stages(name: str) -> list[str]:
    """Names of the stages of backbone ``name`` that ``layers=`` can select, input to output.

    Builds no model.  An empty list means the backbone offers only its final features.

    Examples
    --------
    >>> list_stages("resnet18")
    ['layer1', 'layer2', 'layer3', 'layer4']
    """
    return get_spec(name).get_stages()
