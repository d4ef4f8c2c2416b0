"""Checks that run in ``fit`` (and ``predict``) before any backbone pass or training.

Each function checks one thing and raises an error that names the problem and the
fix, instead of letting torch, the tokenizer or scikit-learn fail later (often mid
training) with a message about their own internals.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch

from .exceptions import InputModalityError, InvalidInputError

DEVICE_FORMS = "'auto', 'cpu', 'cuda', 'cuda:0' (or another GPU index), 'mps'"
# Suffixes of files people pass instead of their content.
DATA_FILE_SUFFIXES = (
    ".csv", ".tsv", ".txt", ".json", ".jsonl", ".parquet", ".feather", ".xlsx", ".xls", ".npy", ".npz",
    ".pkl", ".pickle", ".h5", ".hdf5", ".arrow", ".zip", ".tar", ".gz",
    ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp",
)
# Hugging Face models whose position ids start after the padding index (RoBERTa's
# create_position_ids_from_input_ids): pad_token_id + 1 of their position table is
# never usable, so 514 positions hold 512 tokens.
POSITION_OFFSET_MODEL_TYPES = frozenset(
    {"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "longformer", "data2vec-text", "ibert", "luke",
     "markuplm", "mpnet", "esm", "roberta-prelayernorm"}
)
# Tokenizers without a known limit report this huge sentinel (transformers' VERY_LARGE_INTEGER).
_NO_TOKENIZER_LIMIT = 10**9


# ------------------------------------------------------------------ device
def check_device(device) -> None:
    """Raise a ValueError for a device torch doesn't know or this machine doesn't have."""
    if isinstance(device, str) and device == "auto":
        return
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(
            f"device={device!r} is not a device torch knows. Use one of {DEVICE_FORMS}; 'auto' picks CUDA "
            "when available, else the CPU."
        ) from None
    if parsed.type == "cpu":
        return
    if parsed.type == "meta":
        raise ValueError("device='meta' holds no data and can't train. Use device='auto' or 'cpu'.")
    if parsed.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(
                f"device={device!r} but MPS (Apple GPU) is not available on this machine "
                "(torch.backends.mps.is_available() is False). Use device='auto' or 'cpu'."
            )
        return
    _check_indexed_backend(device, parsed)


def _check_indexed_backend(device, parsed: torch.device) -> None:
    """CUDA, XPU and the like: the backend must be available and the index present."""
    backend = getattr(torch, parsed.type, None)
    is_available = getattr(backend, "is_available", None)
    if is_available is None:  # a type without a torch submodule to ask (xla, hpu...): left to its plugin
        return
    name = parsed.type.upper()
    if not is_available():
        hint = " (this torch build has no CUDA support)" if parsed.type == "cuda" and torch.version.cuda is None else ""
        raise ValueError(
            f"device={device!r} but {name} is not available on this machine{hint}: "
            f"torch.{parsed.type}.is_available() is False. Use device='auto' (CUDA when available, else the CPU) "
            "or device='cpu'."
        )
    count = backend.device_count()
    if parsed.index is not None and parsed.index >= count:
        raise ValueError(
            f"device={device!r} but this machine has {count} {name} device(s), numbered 0 to {count - 1}. "
            f"Use device='{parsed.type}' or '{parsed.type}:<index>' with an index below {count}."
        )


# ------------------------------------------------------------------ X
def check_samples(X) -> None:
    """Raise for ``X=None`` or a single file/directory name where samples were expected."""
    if X is None:
        raise InvalidInputError("X is None: pass the samples (an array, or a list of texts or images).")
    if isinstance(X, os.PathLike) or (isinstance(X, (str, bytes)) and _looks_like_path(X)):
        path = os.fsdecode(X)
        if os.path.isdir(path):
            raise InputModalityError(
                f"X is a single path {path!r}, a directory; pass a sequence of samples, e.g. the list of image "
                f"files in it: sorted(glob.glob(os.path.join({path!r}, '*.jpg')))."
            )
        raise InputModalityError(
            f"X is a single path {path!r}; pass a sequence of samples: load the file first (e.g. "
            f"pandas.read_csv({path!r})['text'] or numpy.load(...)), or pass a list of image paths."
        )


def _looks_like_path(X) -> bool:
    """An existing file or directory, or a name ending in a data file's suffix."""
    text = os.fsdecode(X)
    if len(text) > 4096 or "\n" in text:
        return False
    try:
        if os.path.exists(text):
            return True
    except (OSError, ValueError):  # embedded NUL, a name too long
        return False
    return " " not in text and text.lower().endswith(DATA_FILE_SUFFIXES)


def check_texts_encodable(texts) -> None:
    """Raise for texts that UTF-8 can't encode (lone surrogates), which tokenizers reject."""
    for i, text in enumerate(texts):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidInputError(
                f"X[{i}] holds a character that can't be encoded as UTF-8 ({text[exc.start:exc.end]!r} at "
                f"position {exc.start}, a lone surrogate, often from bad decoding): the tokenizer can't read it. "
                "Replace such characters, e.g. text.encode('utf-8', 'replace').decode('utf-8'), or remove them."
            ) from None


# ------------------------------------------------------------------ text models
def text_model_limit(tokenizer, config=None) -> tuple[int | None, str]:
    """The most tokens the model takes, and where that number comes from."""
    positions = getattr(config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        offset = 0
        if getattr(config, "model_type", None) in POSITION_OFFSET_MODEL_TYPES:
            offset = (getattr(config, "pad_token_id", None) or 0) + 1
        source = "max_position_embeddings" + (f" - {offset} (padding offset)" if offset else "")
        return positions - offset, source
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < _NO_TOKENIZER_LIMIT:
        return limit, "the tokenizer's model_max_length"
    return None, ""


def model_config(source):
    """The Hugging Face config of a text backbone's ``source``, or None where it doesn't load."""
    from .backbones.huggingface import _config

    try:
        return _config(source)
    except Exception:  # a plugin's tokenizer source need not be a model directory
        return None


def check_max_length(max_length: int, name: str, tokenizer, config=None, from_param: bool = True) -> None:
    """Raise when ``max_length`` exceeds the positions the text model has."""
    limit, source = text_model_limit(tokenizer, config)
    if limit is None or max_length <= limit:
        return
    what = f"max_length={max_length}" if from_param else f"The backbone's default max_length ({max_length})"
    raise ValueError(
        f"{what} is more than text backbone {name!r} takes: {limit} tokens ({source}). Longer inputs would "
        f"index past its position table. Use max_length={limit} or less."
    )


# ------------------------------------------------------------------ y
def _is_missing(value) -> bool:
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return True
    return isinstance(value, (float, np.floating)) and math.isnan(value)


def check_class_labels(y) -> None:
    """Raise when classification labels hold None or NaN (before numpy compares None and str)."""
    if y is None:
        return
    # Lists and tuples as objects: numpy would turn ['a', None] into strings or [1, None] into an error.
    values = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y if isinstance(y, np.ndarray) else
                        np.asarray(y, dtype=object))
    if values.ndim != 1:
        return  # shapes are checked with the targets
    if values.dtype.kind == "f":
        missing = np.isnan(values)
    elif values.dtype == object:
        missing = np.fromiter((_is_missing(v) for v in values), dtype=bool, count=len(values))
    else:
        return
    n_missing = int(missing.sum())
    if n_missing:
        first = int(np.flatnonzero(missing)[0])
        raise ValueError(
            f"y holds {n_missing} missing label(s) (None or NaN) out of {len(values)}, the first at index {first}; "
            "a classifier needs a label for every sample. Drop those samples (e.g. keep = y.notna(); "
            "X, y = X[keep], y[keep]) or fill them with a label of their own (e.g. y.fillna('unknown'))."
        )
