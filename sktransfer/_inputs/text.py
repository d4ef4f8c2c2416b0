"""Texts: lists, tuples, arrays or pandas Series of strings, tokenised batch by batch."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import default_collate

from sktransfer._inputs.base import (
    InputAdapter,
    SampleDataset,
    column,
    identity,
    non_empty,
)
from sktransfer._inputs.checks import (
    check_max_length,
    check_not_image_paths,
    check_texts_encodable,
    load_tokenizer,
    model_config,
)
from sktransfer._inputs.text_augment import TEXT_AUGMENTS, text_augmentation
from sktransfer._nn.pooling import WINDOW_MASK
from sktransfer.exceptions import InputModalityError, InvalidInputError

_TEXTS = ("A short sentence.", "Another, slightly longer sentence to pad against.")
LONG_TEXT = ("truncate", "chunk")
CHUNK_POOLING = ("mean", "max")
#: Windows kept per text with ``long_text="chunk"``: tokens past them are dropped, as
#: truncation drops them past the first window. Each window costs one backbone pass.
MAX_WINDOWS = 16
#: Texts tokenised at once to find their lengths (the inference order).
COUNT_SLICE = 4096


def window_stride(tokenizer, max_length: int) -> int:
    """Tokens two neighbouring windows share: a quarter of the window (transformers' ``stride``).

    Raises when ``max_length`` leaves no room for two text tokens besides the special ones.
    """
    room = max_length - tokenizer.num_special_tokens_to_add(pair=False)
    if room < 2:
        raise ValueError(
            f"long_text='chunk' needs windows of at least {max_length - room + 2} tokens (the special tokens plus "
            f"two of text), but max_length={max_length}. Raise max_length, or use long_text='truncate'."
        )
    return min(max_length // 4, room - 1)


def windows_batch(encoded, n_texts: int, max_windows: int = MAX_WINDOWS) -> dict:
    """Windows from ``return_overflowing_tokens=True`` as ``(n_texts, W, T)`` tensors.

    Window ``j`` of text ``i`` sits at ``[i, j]``; ``window_mask`` ``(n_texts, W)`` marks
    the real windows (the rest is padding the module never runs). Every text keeps at
    most ``max_windows`` windows. The batch's first dimension stays one row per text.
    """
    encoded = dict(encoded)
    owner = encoded.pop("overflow_to_sample_mapping", None)
    if owner is None:
        raise ValueError(
            "long_text='chunk' needs a fast (Rust) tokenizer, which reports each window's text "
            "(overflow_to_sample_mapping). Save the model with its fast tokenizer, or use long_text='truncate'."
        )
    owner = owner.long()
    counts = torch.bincount(owner, minlength=n_texts)
    slot = torch.arange(len(owner)) - (torch.cumsum(counts, 0) - counts)[owner]  # window index within its text
    keep = slot < max_windows
    owner, slot = owner[keep], slot[keep]
    n_slots = int(slot.max()) + 1
    mask = torch.zeros(n_texts, n_slots, dtype=torch.bool)
    mask[owner, slot] = True
    batch = {}
    for key, value in encoded.items():
        padded = value.new_zeros(n_texts, n_slots, value.shape[1])
        padded[owner, slot] = value[keep]
        batch[key] = padded
    batch[WINDOW_MASK] = mask
    return batch


class TextCollate:
    """Tokenise a batch, padded to its longest text (not to a fixed length).

    ``long_text="truncate"`` keeps each text's first ``max_length`` tokens;
    ``"chunk"`` splits longer texts into overlapping windows (see :func:`windows_batch`).
    """

    def __init__(self, tokenizer, max_length: int, long_text: str = "truncate"):
        self.tokenizer, self.max_length, self.long_text = tokenizer, max_length, long_text

    @property
    def truncates(self) -> bool:
        return getattr(self, "long_text", "truncate") == "truncate"  # collates pickled before long_text: truncate

    def tokenize(self, texts: list[str], return_tensors: str):
        """The one tokenizer call of this collate. A fast tokenizer keeps its padding and
        truncation settings as state shared by every call: :meth:`token_counts` makes this same
        call, so threads predicting at once never change those settings under each other."""
        if self.truncates:
            return self.tokenizer(texts, padding="longest", truncation=True, max_length=self.max_length,
                                  return_tensors=return_tensors)
        return self.tokenizer(
            texts, padding="longest", truncation=True, max_length=self.max_length,
            stride=window_stride(self.tokenizer, self.max_length), return_overflowing_tokens=True,
            return_tensors=return_tensors,
        )

    def encode(self, texts: list[str]) -> dict:
        encoded = self.tokenize(texts, "pt")
        return dict(encoded) if self.truncates else windows_batch(encoded, len(texts))

    def token_counts(self, texts: list[str]) -> np.ndarray:
        """Tokens each text gives the backbone, special ones included: its first ``max_length``
        with ``long_text="truncate"``; with ``"chunk"``, those of every window it keeps."""
        # Slices: each is padded to its longest text, which bounds the memory of a long X.
        slices = [self._token_counts(texts[i : i + COUNT_SLICE]) for i in range(0, len(texts), COUNT_SLICE)]
        return np.concatenate(slices) if slices else np.zeros(0, dtype=np.int64)

    def _token_counts(self, texts: list[str]) -> np.ndarray:
        encoded = self.tokenize(texts, "np")
        if "attention_mask" in encoded:
            lengths = np.asarray(encoded["attention_mask"]).sum(axis=1)
        else:  # a tokenizer that gives no mask: its padding is the pad token
            lengths = (np.asarray(encoded["input_ids"]) != self.tokenizer.pad_token_id).sum(axis=1)
        if self.truncates:
            return lengths.astype(np.int64)
        owner = encoded.get("overflow_to_sample_mapping")
        if owner is None:  # a slow tokenizer: no order to gain, and encode() says what to do
            return np.zeros(len(texts), dtype=np.int64)
        owner = np.asarray(owner, dtype=np.int64)
        counts = np.bincount(owner, minlength=len(texts))
        slot = np.arange(len(owner)) - (np.cumsum(counts) - counts)[owner]  # as windows_batch keeps them
        keep = slot < MAX_WINDOWS
        return np.bincount(owner[keep], weights=lengths[keep], minlength=len(texts)).astype(np.int64)

    def __call__(self, batch):
        texts, targets = zip(*batch)
        return self.encode(list(texts)), default_collate(list(targets))


class TextAdapter(InputAdapter):
    """Texts: lists, tuples, arrays or pandas Series of strings."""

    modality = "text"
    pooling_applies = True
    long_text_applies = True
    # Pretrained transformers get a 10x smaller backbone step: larger ones forget what they learned.
    pretrained_backbone_lr_factor = 0.1


    def get_state(self) -> dict:
        """The tokenisation and pooling settings, as JSON data (model files)."""
        return {
            "kind": "text",
            "max_length": int(self.collate_fn.max_length),
            "pooling": self.pooling,
            "long_text": self.long_text,
            "chunk_pooling": self.chunk_pooling,
            "tokenizer": str(getattr(self.collate_fn.tokenizer, "name_or_path", "")),
        }

    def set_state(self, state: dict) -> "TextAdapter":
        self._check_kind(state)
        max_length = state["max_length"]
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            raise ValueError(f"adapter.max_length is {max_length!r}, not a positive number of tokens")
        for field, options in (("long_text", LONG_TEXT), ("chunk_pooling", CHUNK_POOLING)):
            if state.get(field, options[0]) not in options:
                raise ValueError(f"adapter.{field} is {state[field]!r}, not one of {options}")
        self.collate_fn.max_length = max_length
        self.pooling = state["pooling"]
        # Files written before long_text existed truncated.
        self.collate_fn.long_text = state.get("long_text", "truncate")
        self.chunk_pooling = state.get("chunk_pooling", "mean")
        return self

    def __init__(self, name: str, tokenizer, max_length: int, pooling: str = "mean", long_text: str = "truncate",
                 chunk_pooling: str = "mean", augment=None, model_config=None):
        if long_text not in LONG_TEXT:
            raise ValueError(f"long_text must be one of {LONG_TEXT}, got {long_text!r}.")
        if chunk_pooling not in CHUNK_POOLING:
            raise ValueError(f"chunk_pooling must be one of {CHUNK_POOLING}, got {chunk_pooling!r}.")
        if long_text == "chunk":
            window_stride(tokenizer, max_length)  # a window too small for two text tokens fails here, not in fit
        self.name = name
        self.pooling = pooling
        self.chunk_pooling = chunk_pooling
        self.augment = augment
        # The spec's TextPreprocessing.model_config, for the max_length check of estimators
        # that reuse this adapter (init=, a fitted source): they see no spec.
        self.model_config = model_config
        self.collate_fn = TextCollate(tokenizer, max_length, long_text)

    @property
    def long_text(self) -> str:
        return getattr(self.collate_fn, "long_text", "truncate")

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
        pooling = params.get("pooling", "auto")
        tokenizer = load_tokenizer(spec)
        max_length = params.get("max_length") or spec.preprocessing.max_length
        load_config = getattr(spec.preprocessing, "model_config", None)
        config = model_config(load_config)
        check_max_length(max_length, spec.name, tokenizer, config, from_param=bool(params.get("max_length")))
        return cls(spec.name, tokenizer, max_length, "mean" if pooling == "auto" else pooling,
                   params.get("long_text", "truncate"), params.get("chunk_pooling", "mean"),
                   params.get("augment"), load_config)

    def inherit(self, params: dict) -> "TextAdapter":
        # long_text and chunk_pooling are the new estimator's own (their defaults truncate).
        pooling = params.get("pooling", "auto")
        load_config = self._model_config_loader()
        if params.get("max_length"):
            check_max_length(params["max_length"], self.name, self.collate_fn.tokenizer, model_config(load_config))
        return type(self)(
            self.name,
            self.collate_fn.tokenizer,
            params.get("max_length") or self.collate_fn.max_length,
            self.pooling if pooling == "auto" else pooling,
            params.get("long_text", "truncate"),
            params.get("chunk_pooling", "mean"),
            params.get("augment"),
            load_config,
        )

    def _model_config_loader(self):
        """The spec's ``model_config``; adapters pickled before it was kept look it up by name."""
        if "model_config" in self.__dict__:
            return self.model_config
        from sktransfer._spec.registry import get_spec

        try:
            return getattr(get_spec(self.name).preprocessing, "model_config", None)
        except Exception:  # a backbone no installed plugin gives any more: no config to check against
            return None

    @classmethod
    def update_tags(cls, tags):
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags

    def fingerprint_parts(self) -> tuple:
        parts = (self.pooling, self.collate_fn.max_length)
        if self.long_text == "truncate":
            return parts  # as before long_text existed: truncated features keep their cache keys
        stride = window_stride(self.collate_fn.tokenizer, self.collate_fn.max_length)
        return (*parts, "chunk", self.chunk_pooling, stride, MAX_WINDOWS)

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
                if x is None or type(x).__name__ == "NAType" or (isinstance(x, float) and np.isnan(x)):
                    raise InvalidInputError(f"X[{i}] is missing ({x!r}); fill missing texts, e.g. with ''.")
                raise InputModalityError(
                    f"X[{i}] is a {type(x).__name__}, but backbone {self.name!r} takes text: every item must be a str."
                )
        check_texts_encodable(X)
        check_not_image_paths(X, self.name)
        return X

    def dataset(self, texts: list[str], targets=None, train: bool = False) -> SampleDataset:
        augmentation = text_augmentation(self.augment) if train else None
        return SampleDataset(texts, augmentation or identity, targets)

    def inference_order(self, texts: list[str], indices) -> np.ndarray:
        """Longest texts first, by tokens: each batch then pads to lengths alike, as
        sentence-transformers' ``encode`` does. Far fewer padding tokens run through the
        backbone; the longest batch comes first, so running out of memory shows at once."""
        counts = self.collate_fn.token_counts([texts[i] for i in indices])
        return np.argsort(-counts, kind="stable")

    def sample_content(self, texts: list[str]) -> tuple[bytes, list[bytes]]:
        return b"", [text.encode("utf-8", "surrogatepass") for text in texts]

    @classmethod
    def preprocessing_problem(cls, spec) -> str | None:
        from sktransfer._spec.registry import TextPreprocessing

        prep = spec.preprocessing
        if not isinstance(prep, TextPreprocessing):
            return f"a text backbone needs a TextPreprocessing, got {prep!r}."
        if not isinstance(prep.max_length, int) or prep.max_length <= 0:
            return f"preprocessing.max_length must be a positive int, got {prep.max_length!r}."
        if prep.load_tokenizer is None:
            return "its TextPreprocessing has load_tokenizer=None: give a callable that returns the tokenizer."
        try:
            load_tokenizer(spec)
        except Exception as exc:
            return f"its tokenizer {prep.tokenizer!r} does not load offline: {exc!r}"
        return None

    @classmethod
    def sample_batch(cls, spec, batch_size: int, image_size=None, n_features: int = 8):
        tokenizer = load_tokenizer(spec)
        texts = [_TEXTS[i % len(_TEXTS)] for i in range(batch_size)]
        encoded = tokenizer(
            texts, padding="longest", truncation=True, max_length=spec.preprocessing.max_length, return_tensors="pt"
        )
        return (), dict(encoded)
