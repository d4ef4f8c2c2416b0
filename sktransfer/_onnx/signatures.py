"""What the exported graph takes, per modality: input names, example tensors with their
dynamic axes, and the JSON the predictor needs to make those tensors from raw samples.

One class per modality, looked up once from the adapter's modality (as the estimators
look up their input adapters).
"""

from __future__ import annotations

import os

import numpy as np
import torch

from sktransfer._inputs.text import MAX_WINDOWS, window_stride
from sktransfer._onnx.graph import WINDOW_INDEX, WINDOW_MASK

# Texts that tokenise to different lengths, for the example batches of text graphs.
_TEXTS = ("A short sentence.", "Another, slightly longer sentence to pad against the first.", "Third one here")


class Signature:
    """The graph's inputs for one modality."""

    #: Whether the backbone takes its inputs as keywords (a tokenizer's dict).
    keywords = False
    #: How windows are pooled per text (windowed texts only).
    chunk_pooling: str | None = None

    def __init__(self, adapter, estimator, key: str | None = None):
        self.adapter = adapter
        self.estimator = estimator
        self.key = key

    @property
    def input_names(self) -> list[str]:
        """The inputs' names as the backbone's module takes them."""
        raise NotImplementedError

    @property
    def graph_names(self) -> list[str]:
        """The inputs' names in the graph: a fused model's branch adds its key, ``"b0.input_ids"``."""
        return [name if self.key is None else f"{self.key}.{name}" for name in self.input_names]

    def dim(self, name: str):
        """A dynamic axis of this branch's own (the batch axis is every branch's)."""
        return torch.export.Dim(name if self.key is None else f"{self.key}_{name}")

    def example(self, n: int) -> tuple[torch.Tensor, ...]:
        """Example inputs for ``n`` samples, in the order of :attr:`input_names`."""
        raise NotImplementedError

    def dynamic_shapes(self) -> tuple[dict, ...]:
        """Each input's dynamic axes, as ``torch.export.Dim`` objects."""
        raise NotImplementedError

    def config(self, directory, subdirectory: str = "") -> dict:
        """The predictor's preprocessing as JSON data; writes any files it names into
        ``directory/subdirectory`` and names them relative to ``directory``."""
        raise NotImplementedError


BATCH = torch.export.Dim("batch")


class ImageSignature(Signature):
    """Normalised pixels ``(N, 3, S, S)``; the predictor resizes, crops and normalises."""

    input_names = ("pixel_values",)

    def example(self, n):
        size = self.adapter.preprocessing.input_size
        return (torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(n)),)

    def dynamic_shapes(self):
        return ({0: BATCH},)

    def config(self, directory, subdirectory=""):
        return self.adapter.get_state()  # kind "image": input_size, resize_size, mean, std, interpolation


class TabularSignature(Signature):
    """Standardised features ``(N, F)``; the predictor standardises with the training statistics."""

    input_names = ("features",)

    def example(self, n):
        n_features = int(self.adapter.scaler_.n_features_in_)
        return (torch.randn(n, n_features, generator=torch.Generator().manual_seed(n)),)

    def dynamic_shapes(self):
        return ({0: BATCH},)

    def config(self, directory, subdirectory=""):
        state = self.adapter.get_state()  # kind "tabular": the scaler's mean, scale and the exponents
        names = getattr(self.estimator, "feature_names_in_", None)
        return {
            "kind": "tabular",
            "mean": state["mean"],
            "scale": state["scale"],
            "exponent": state["exponent"],
            "n_features": state["n_features_in"],
            "feature_names": None if names is None else [str(name) for name in names],
        }


class TextSignature(Signature):
    """Token ids, masks and type ids ``(N, T)``; windowed texts ``(n_windows, T)`` plus the
    windows' index and mask ``(N, W)``."""

    keywords = True

    def __init__(self, adapter, estimator, key=None):
        super().__init__(adapter, estimator, key)
        self.tokenizer = adapter.collate_fn.tokenizer
        if not getattr(self.tokenizer, "is_fast", False):
            raise ValueError(
                f"The model's tokenizer ({type(self.tokenizer).__name__}) is not a fast (Rust) tokenizer; the ONNX "
                "predictor tokenises with the `tokenizers` library and needs its tokenizer.json. Use a backbone "
                "whose tokenizer has a fast version."
            )
        self.windowed = adapter.long_text == "chunk"
        self.chunk_pooling = adapter.chunk_pooling if self.windowed else None

    @property
    def input_names(self):
        names = list(self._encode(_TEXTS[:2]))
        return names + [WINDOW_INDEX, WINDOW_MASK] if self.windowed else names

    def _encode(self, texts) -> dict:
        return dict(self.tokenizer(list(texts), padding="longest", truncation=True,
                                   max_length=self.adapter.collate_fn.max_length, return_tensors="pt"))

    def example(self, n):
        texts = [_TEXTS[i % len(_TEXTS)] * (1 + i // len(_TEXTS)) for i in range(n)]
        if not self.windowed:
            return tuple(self._encode(texts).values())
        # n texts of 1 or 2 windows each (window rows are any rows of tokens here).
        windows = self._encode(texts + texts[1::2])
        index = torch.zeros(n, 2, dtype=torch.int64)
        index[:, 0] = torch.arange(n)
        index[1::2, 1] = n + torch.arange(len(texts[1::2]))
        mask = torch.zeros(n, 2, dtype=torch.bool)
        mask[:, 0] = True
        mask[1::2, 1] = True
        return (*windows.values(), index, mask)

    def dynamic_shapes(self):
        rows = self.dim("windows") if self.windowed else BATCH
        tokens = [{0: rows, 1: self.dim("tokens")}] * len(self._encode(_TEXTS[:2]))
        if not self.windowed:
            return tuple(tokens)
        per_text = {0: BATCH, 1: self.dim("windows_per_text")}
        return (*tokens, per_text, per_text)

    def config(self, directory, subdirectory=""):
        tokenizer, max_length = self.tokenizer, int(self.adapter.collate_fn.max_length)
        tokenizer.save_pretrained(os.path.join(directory, subdirectory))
        file = os.path.join(subdirectory, "tokenizer.json") if subdirectory else "tokenizer.json"
        if not os.path.isfile(os.path.join(directory, file)):
            raise ValueError("The tokenizer wrote no tokenizer.json; the ONNX predictor needs one.")
        names = [name for name in self.input_names if name not in (WINDOW_INDEX, WINDOW_MASK)]
        return {
            "kind": "text",
            "tokenizer": file.replace(os.sep, "/"),
            "input_names": names,
            "max_length": max_length,
            "pad_token": tokenizer.pad_token,
            "pad_token_id": int(tokenizer.pad_token_id),
            "pad_token_type_id": int(getattr(tokenizer, "pad_token_type_id", 0) or 0),
            "padding_side": tokenizer.padding_side,
            "truncation_side": tokenizer.truncation_side,
            "long_text": self.adapter.long_text,
            "stride": window_stride(tokenizer, max_length) if self.windowed else 0,
            "max_windows": MAX_WINDOWS,
            "chunk_pooling": self.chunk_pooling,
            "pooling": self.adapter.pooling,
        }


SIGNATURES = {"image": ImageSignature, "text": TextSignature, "tabular": TabularSignature}


def signature_for(adapter, estimator, key: str | None = None) -> Signature:
    """The signature of ``adapter``'s modality; ``key`` names a fused model's branch."""
    return SIGNATURES[adapter.modality](adapter, estimator, key)


def as_numpy(tensors) -> list[np.ndarray]:
    return [t.numpy() for t in tensors]
