"""Texts: lists, tuples, arrays or pandas Series of strings, tokenised batch by batch."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import default_collate

from .._preflight import check_max_length, check_texts_encodable, model_config
from ..exceptions import InputModalityError, InvalidInputError
from ._base import InputAdapter, SampleDataset, column, identity, non_empty
from .text_augment import TEXT_AUGMENTS, text_augmentation

_TEXTS = ("A short sentence.", "Another, slightly longer sentence to pad against.")


class TextCollate:
    """Tokenise a batch, padded to its longest text (not to a fixed length)."""

    def __init__(self, tokenizer, max_length: int):
        self.tokenizer, self.max_length = tokenizer, max_length

    def __call__(self, batch):
        texts, targets = zip(*batch)
        encoded = self.tokenizer(
            list(texts), padding="longest", truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        return dict(encoded), default_collate(list(targets))


class TextAdapter(InputAdapter):
    """Texts: lists, tuples, arrays or pandas Series of strings."""

    modality = "text"
    pooling_applies = True
    # Pretrained transformers get a 10x smaller backbone step: larger ones forget what they learned.
    pretrained_backbone_lr_factor = 0.1

    def __init__(self, name: str, tokenizer, max_length: int, pooling: str = "mean", augment=None):
        self.name = name
        self.pooling = pooling
        self.augment = augment
        self.collate_fn = TextCollate(tokenizer, max_length)

    @classmethod
    def check_params(cls, spec, params: dict) -> None:
        augment = params.get("augment")
        if isinstance(augment, str) and augment not in TEXT_AUGMENTS:
            raise ValueError(
                f"augment={augment!r} is for image backbones; backbone {spec.name!r} takes text. Use one of "
                f"{sorted(TEXT_AUGMENTS)}, a callable that maps a str to a str, or None."
            )

    @classmethod
    def from_params(cls, spec, params: dict) -> "TextAdapter":
        from ..backbones.huggingface import load_tokenizer

        pooling = params.get("pooling", "auto")
        tokenizer = load_tokenizer(spec.preprocessing.tokenizer)
        max_length = params.get("max_length") or spec.preprocessing.max_length
        config = model_config(spec.preprocessing.tokenizer)
        check_max_length(max_length, spec.name, tokenizer, config, from_param=bool(params.get("max_length")))
        return cls(spec.name, tokenizer, max_length, "mean" if pooling == "auto" else pooling,
                   params.get("augment"))

    def inherit(self, params: dict) -> "TextAdapter":
        pooling = params.get("pooling", "auto")
        if params.get("max_length"):
            tokenizer = self.collate_fn.tokenizer  # loaded from the model's directory: its config is there too
            check_max_length(params["max_length"], self.name, tokenizer, model_config(tokenizer.name_or_path))
        return type(self)(
            self.name,
            self.collate_fn.tokenizer,
            params.get("max_length") or self.collate_fn.max_length,
            self.pooling if pooling == "auto" else pooling,
            params.get("augment"),
        )

    @classmethod
    def update_tags(cls, tags):
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags

    def fingerprint_parts(self) -> tuple:
        return (self.pooling, self.collate_fn.max_length)

    def check(self, X, *, estimator=None, reset: bool = False) -> list[str]:
        X = column(X)
        if isinstance(X, str):
            raise InputModalityError(
                f"X is a single string; backbone {self.name!r} takes a sequence of texts, e.g. [text]."
            )
        if isinstance(X, (np.ndarray, torch.Tensor)) and X.dtype != object and not np.issubdtype(
            np.asarray(X).dtype, np.str_
        ):
            raise InputModalityError(
                f"X is a numeric array of shape {tuple(X.shape)}, but backbone {self.name!r} takes text. "
                "Pass a list of strings, or use an image backbone (e.g. 'resnet18') or 'mlp' for numbers."
            )
        if not isinstance(X, (list, tuple, np.ndarray)):
            raise TypeError(
                f"X of type {type(X).__name__} is not a supported text input for backbone {self.name!r}. "
                "Pass a list, tuple, numpy array or pandas Series of strings."
            )
        X = list(np.asarray(X, dtype=object).ravel()) if isinstance(X, np.ndarray) else list(X)
        non_empty(X, "texts")
        for i, x in enumerate(X):
            if not isinstance(x, str):
                if x is None or (isinstance(x, float) and np.isnan(x)):
                    raise InvalidInputError(f"X[{i}] is missing ({x!r}); fill missing texts, e.g. with ''.")
                raise InputModalityError(
                    f"X[{i}] is a {type(x).__name__}, but backbone {self.name!r} takes text: every item must be a str."
                )
        check_texts_encodable(X)
        return X

    def dataset(self, texts: list[str], targets=None, train: bool = False) -> SampleDataset:
        augmentation = text_augmentation(self.augment) if train else None
        return SampleDataset(texts, augmentation or identity, targets)

    def sample_content(self, texts: list[str]) -> tuple[bytes, list[bytes]]:
        return b"", [text.encode("utf-8", "surrogatepass") for text in texts]

    @classmethod
    def preprocessing_problem(cls, spec) -> str | None:
        from .._registry import TextPreprocessing
        from ..backbones.huggingface import load_tokenizer

        prep = spec.preprocessing
        if not isinstance(prep, TextPreprocessing):
            return f"a text backbone needs a TextPreprocessing, got {prep!r}."
        if not isinstance(prep.max_length, int) or prep.max_length <= 0:
            return f"preprocessing.max_length must be a positive int, got {prep.max_length!r}."
        try:
            load_tokenizer(prep.tokenizer)
        except Exception as exc:
            return f"its tokenizer {prep.tokenizer!r} does not load offline: {exc!r}"
        return None

    @classmethod
    def sample_batch(cls, spec, batch_size: int, image_size=None, n_features: int = 8):
        from ..backbones.huggingface import load_tokenizer

        tokenizer = load_tokenizer(spec.preprocessing.tokenizer)
        texts = [_TEXTS[i % len(_TEXTS)] for i in range(batch_size)]
        encoded = tokenizer(
            texts, padding="longest", truncation=True, max_length=spec.preprocessing.max_length, return_tensors="pt"
        )
        return (), dict(encoded)
