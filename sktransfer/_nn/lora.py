"""``strategy="lora"``: low-rank adapters (peft's LoRA) on the modules a backbone's spec names.

The adapters are injected in place with :func:`peft.inject_adapter_in_model` (the
backbone keeps its class and its forward; no ``PeftModel`` wrapper), into the fit's
own copy of the backbone, never into a shared pretrained one.  Only the adapters
(parameters named ``lora_*``) and the head train.

Which modules get adapters is the backbone spec's ``lora_targets``.  Two rules serve
the built-in specs and can serve plugins:

* :func:`lora_targets_linear_and_conv`: every ``nn.Linear`` and every ungrouped convolution
  that peft can adapt (image backbones; the default for a user's ``nn.Module``);
* :func:`lora_targets_attention`: the ``nn.Linear`` projections inside attention blocks
  (Hugging Face text encoders: ``query``, ``key``, ``value`` and the attention's
  output ``dense`` of BERT-like models).
"""

from __future__ import annotations

import re
import sys

import torch.nn as nn

ADAPTER_NAME = "default"
_INSTALL_HINT = "strategy='lora' needs peft: pip install 'sktransfer[lora]' (or pip install peft)."


def _peft():
    try:
        import peft
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc
    return peft


def is_lora_name(name: str) -> bool:
    """Whether a parameter or state-dict key belongs to a LoRA adapter (``...lora_A.default.weight``)."""
    return any(part.startswith("lora_") for part in name.split("."))


def base_name(name: str) -> str:
    """The key a wrapped layer's base weight had before the adapters came (drops ``base_layer.``)."""
    return re.sub(r"(^|\.)base_layer\.", r"\1", name)


def base_state(module: nn.Module) -> dict:
    """``module``'s state without its adapters, under the keys it had before injection."""
    return {base_name(k): v for k, v in module.state_dict().items() if not is_lora_name(k)}


def has_adapters(module: nn.Module) -> bool:
    if "peft" not in sys.modules:
        return False
    from peft.tuners.tuners_utils import BaseTunerLayer

    return any(isinstance(m, BaseTunerLayer) for m in module.modules())


def tracer_leaf_modules() -> list[type]:
    """Module classes that torch.fx must not trace into (peft's layers branch on tensor dtypes)."""
    if "peft" not in sys.modules:
        return []
    from peft.tuners.tuners_utils import BaseTunerLayer

    return [BaseTunerLayer]


# ------------------------------------------------------------------ target rules
def _inside_multihead_attention(module: nn.Module) -> set[str]:
    # nn.MultiheadAttention reads its out_proj's weight directly, never calling its
    # forward: an adapter there would be silently ignored.
    return {
        f"{name}.{child}" if name else child
        for name, m in module.named_modules()
        if isinstance(m, nn.MultiheadAttention)
        for child, _ in m.named_children()
    }


def _adaptable_conv(m: nn.Module) -> bool:
    # peft's LoRA for convolutions builds lora_A with the layer's kernel, stride and
    # padding only: grouped (depthwise) convolutions need the rank divisible by the
    # groups, and dilation, non-zero padding modes and subclasses that pad in their
    # forward (timm's Conv2dSame) would give lora_A another output size. 1x1
    # convolutions with stride 1 are safe whatever their class.
    if not isinstance(m, nn.Conv2d) or m.groups != 1:
        return False
    pointwise = tuple(m.kernel_size) == (1, 1) and tuple(m.stride) == (1, 1)
    plain = type(m) is nn.Conv2d and m.padding_mode == "zeros" and set(m.dilation) == {1}
    return pointwise or (plain and not isinstance(m.padding, str))


def lora_targets_linear_and_conv(module: nn.Module) -> list[str]:
    """Every ``nn.Linear`` and every ungrouped ``nn.Conv2d`` peft's LoRA can adapt.

    Depthwise and other grouped convolutions are left out (peft supports them only when
    the rank is divisible by the groups), so EfficientNet and MobileNet get their
    pointwise 1x1 convolutions (and the stem), ResNets every convolution, ViT and
    ConvNeXt their linear layers; linear layers inside ``nn.MultiheadAttention`` are
    left out too (its forward never calls them).
    """
    skip = _inside_multihead_attention(module)
    return [
        name
        for name, m in module.named_modules()
        if name and name not in skip and ((isinstance(m, nn.Linear) and type(m) is not nn.LazyLinear)
                                          or _adaptable_conv(m))
    ]


_ATTENTION = re.compile(r"(^|\.)(attention|attn|self_attn|self_attention)(\.|$)")


def lora_targets_attention(module: nn.Module) -> list[str]:
    """The ``nn.Linear`` layers inside attention blocks (transformers' module names).

    For BERT-like encoders (BERT, MiniLM, RoBERTa...) these are each layer's
    ``attention.self.query``, ``.key``, ``.value`` and ``attention.output.dense``;
    DistilBERT's ``attention.q_lin`` ... ``out_lin``; ``self_attn.q_proj`` ...
    ``out_proj`` elsewhere.
    """
    return [
        name
        for name, m in module.named_modules()
        if isinstance(m, nn.Linear) and _ATTENTION.search(name.rsplit(".", 1)[0] if "." in name else "")
    ]


# ------------------------------------------------------------------ injection
def resolve_targets(spec, backbone: nn.Module) -> list[str]:
    """Dotted names of ``backbone``'s modules that get adapters, from ``spec.lora_targets``.

    A tuple names modules as peft's ``target_modules`` list does: a module matches when
    its dotted name equals an entry or ends with ``"." + entry``.
    """
    declared = spec.lora_targets
    names = {name for name, _ in backbone.named_modules() if name}
    if callable(declared):
        targets = list(declared(backbone))
        unknown = [t for t in targets if t not in names]
        if unknown:
            raise ValueError(
                f"Backbone {spec.name!r} (plugin {spec.plugin or '?'}): lora_targets returned {unknown[:3]}, which "
                "are not modules of the built backbone. Fix the plugin's BackboneSpec.lora_targets."
            )
    else:
        targets = [n for n, _ in backbone.named_modules() if n and any(n == t or n.endswith("." + t) for t in declared)]
    if not targets:
        raise ValueError(no_targets_message(spec))
    return targets


def no_targets_message(spec) -> str:
    return (
        f"strategy='lora' needs the modules to adapt, but backbone {spec.name!r} (plugin {spec.plugin or '?'}) "
        "declares no lora_targets. Use strategy='head', 'partial' or 'full', or declare them in the plugin: "
        "BackboneSpec(lora_targets=('query', 'value')) or lora_targets=sktransfer.lora_targets_linear_and_conv."
    )


def lora_alpha(rank: int, alpha) -> float:
    """``alpha``, or ``2 * rank`` when it is None (the adapters' scale ``alpha / rank`` is then 2)."""
    return 2 * rank if alpha is None else alpha


def lora_config(rank: int, alpha, targets: list[str]):
    """peft's ``LoraConfig`` for exactly the modules ``targets`` (an anchored regular expression)."""
    peft = _peft()
    pattern = "^(?:" + "|".join(re.escape(t) for t in targets) + ")$"
    return peft.LoraConfig(
        r=int(rank), lora_alpha=lora_alpha(rank, alpha), target_modules=pattern, lora_dropout=0.0, bias="none"
    )


def add_adapters(backbone: nn.Module, spec, rank: int, alpha) -> list[str]:
    """Inject LoRA adapters into ``backbone`` in place; return the adapted modules' names.

    The adapters start as peft initialises them (``lora_B`` at zero), so the backbone's
    output is unchanged until they train.
    """
    peft = _peft()
    if has_adapters(backbone):
        raise ValueError(
            f"Backbone {spec.name!r} already holds LoRA adapters; merge them first (sktransfer merges a fitted "
            "source's adapters when it is reused as backbone=)."
        )
    targets = resolve_targets(spec, backbone)
    peft.inject_adapter_in_model(lora_config(rank, alpha, targets), backbone, adapter_name=ADAPTER_NAME)
    return targets


def merge_adapters(module: nn.Module) -> nn.Module:
    """Fold every LoRA adapter of ``module`` into its base layer and put the base layer back."""
    if not has_adapters(module):
        return module
    from peft.tuners.tuners_utils import BaseTunerLayer

    for name, layer in [(n, m) for n, m in module.named_modules() if isinstance(m, BaseTunerLayer)]:
        layer.merge()
        parent, _, child = name.rpartition(".")
        setattr(module.get_submodule(parent) if parent else module, child, layer.get_base_layer())
    module.__dict__.pop("peft_config", None)  # set by inject_adapter_in_model
    return module
