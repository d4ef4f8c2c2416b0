"""Checks that run in ``fit`` (and ``predict``) before any backbone pass or training.

Each function checks one thing and raises an error that names the problem and the
fix, instead of letting torch, the tokenizer or scikit-learn fail later (often mid
training) with a message about their own internals.
"""

from __future__ import annotations

import math
import os
import warnings
from numbers import Number

import numpy as np
import torch
import torch.nn as nn

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
def resolve_device(device) -> str:
    """``"auto"`` means CUDA when available, else the CPU.

    ``"cuda"`` without an index is torch's *current* CUDA device, among those
    ``CUDA_VISIBLE_DEVICES`` shows this process: a worker that
    ``dask_cuda.LocalCUDACluster`` started sees its own GPU first (index 0, current
    by default), and a thread that called ``torch.cuda.set_device`` gets that one. No
    index is pinned on purpose: a fitted estimator keeps ``device_ == "cuda"`` and,
    unpickled in another process, lands on that process's current GPU, which
    ``"cuda:3"`` would not do on a machine with fewer GPUs.
    """
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


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


def check_indicator_targets(y: np.ndarray) -> None:
    """Raise when a 2-D ``y`` is not a 0/1 indicator matrix (one column per label)."""
    if y.shape[1] == 0:
        raise ValueError(f"y has shape {y.shape}: no label columns. A multi-label y needs one 0/1 column per label.")
    values = np.unique(y) if y.dtype.kind in "biuf" else None
    if values is not None and np.isin(values, (0, 1)).all():
        return
    from sklearn.utils.multiclass import type_of_target

    try:
        kind = f"type_of_target(y) is {type_of_target(y)!r}"
    except ValueError as exc:  # NaN, or values it can't type
        kind = str(exc).rstrip(".")
    shown = "" if values is None else f" (values {values[:5].tolist()}{' ...' if len(values) > 5 else ''})"
    raise ValueError(
        f"y is 2-D, shape {y.shape}, but not a binary indicator matrix{shown}: {kind}. A 2-D y is taken as "
        "multi-label targets, one column per label holding 0/1 (or False/True). For lists of labels per sample "
        "use sklearn.preprocessing.MultiLabelBinarizer().fit_transform(y); for several multi-class outputs fit "
        "one classifier per column with sklearn.multioutput.MultiOutputClassifier."
    )


def warn_constant_labels(y: np.ndarray) -> None:
    """Warn about label columns that are 0 (or 1) for every sample: nothing to learn there.

    A warning, not an error: a rare label can be absent from one cross-validation
    fold's training rows, and the model can still predict it as always absent.
    """
    n_positive = np.asarray(y, dtype=np.float64).sum(axis=0)
    for count, what in ((0, "0 (never present)"), (len(y), "1 (always present)")):
        columns = np.flatnonzero(n_positive == count)
        if len(columns):
            warnings.warn(
                f"y's label column(s) {columns[:10].tolist()}{' ...' if len(columns) > 10 else ''} are {what} for "
                f"every one of the {len(y)} training samples: the model can only learn to predict that constant. "
                "Drop those columns, or add samples where they differ.",
                UserWarning,
                stacklevel=5,
            )


# ------------------------------------------------------------------ validation split
def _label_kind(value) -> str | None:
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes):
        return "bytes"
    if isinstance(value, Number):
        return "number"
    return None


def check_uniform_labels(y) -> None:
    """Refuse labels that mix strings, bytes and numbers: numpy would silently turn
    ``[1, "a"]`` into ``["1", "a"]`` (and ``b"x"`` into ``"x"``), and predictions would come
    back as labels the user never gave."""
    if isinstance(y, np.ndarray) and y.dtype != object:
        return
    values = y.tolist() if hasattr(y, "tolist") else y
    if not isinstance(values, (list, tuple)):
        return
    examples = {}
    for value in values:
        examples.setdefault(_label_kind(value), value)
    examples.pop(None, None)
    if len(examples) > 1:
        mixed = ", ".join(f"{kind}s (e.g. {example!r})" for kind, example in sorted(examples.items()))
        raise TypeError(
            f"y mixes {mixed}; numpy would convert them to one type and predictions would come back as labels you "
            "never gave. Give every label one type, e.g. y = [str(label) for label in y]."
        )


def n_validation(fraction: float, n: int) -> int:
    """Rows skorch's ``ValidSplit(fraction)`` holds out: sklearn's ``ceil(fraction * n)``."""
    # ValidSplit with a float builds a (Stratified)ShuffleSplit(test_size=fraction), whose
    # _validate_shuffle_split takes n_test = ceil(test_size * n) and trains on the rest.
    return math.ceil(fraction * n)


def _fraction_origin(fraction: float, patience, validation_fraction) -> str:
    if validation_fraction is None:
        return f"patience={patience} holds out validation_fraction={fraction} for early stopping"
    return f"validation_fraction={fraction}"


def check_validation_split(estimator, n: int, labels=None, classes=None) -> None:
    """Raise when the validation split leaves a part empty, or a class without rows on either side.

    ``labels`` are the encoded classes (classifiers: skorch's split is then stratified).
    """
    fraction = estimator._validation_fraction()
    if fraction is None or "train_split" in (estimator.net_params or {}):
        return  # no split, or the user's own
    n_valid = n_validation(fraction, n)
    n_train = n - n_valid
    origin = _fraction_origin(fraction, estimator.patience, estimator.validation_fraction)
    no_split = "or validation_fraction=None and patience=None (no validation split, no early stopping)"
    if n_train < 1:
        raise ValueError(
            f"{origin}: of {n} sample(s), {n_valid} go to validation and none are left to train on. Pass more data, a smaller validation_fraction, {no_split}."
        )
    if labels is None:
        return
    # StratifiedShuffleSplit needs every class twice, and as many rows as classes on each side.
    counts = np.bincount(np.asarray(labels), minlength=len(classes))
    names = [str(c) for c in classes]
    summary = ", ".join(f"{name!r}: {count}" for name, count in zip(names, counts))
    if counts.min() < 2:
        rare = [repr(name) for name, count in zip(names, counts) if count < 2]
        raise ValueError(
            f"{origin}, a split stratified by class, but class(es) {', '.join(rare)} have a single sample "
            f"(class counts: {summary}); each class needs at least 2, one to train on and one to validate. Pass more samples "
            f"of those classes, {no_split}."
        )
    if min(n_valid, n_train) < len(counts):
        part, size = ("validation", n_valid) if n_valid < len(counts) else ("training", n_train)
        fraction_fix = "larger" if part == "validation" else "smaller"
        raise ValueError(
            f"{origin}: the {part} part gets {size} of {n} samples, fewer than the {len(counts)} classes, but the "
            f"split is stratified by class and needs one sample of each class on each side (class counts: "
            f"{summary}). Pass more data, a {fraction_fix} validation_fraction, {no_split}."
        )


# ------------------------------------------------------------------ BatchNorm and the last batch
def trained_batchnorms(module, strategy: str, max_epochs: int) -> list[str]:
    """Names of the backbone's BatchNorm layers that run in train mode at some epoch."""
    if strategy in ("head", "lora"):
        return []  # the frozen backbone (LoRA: its BatchNorm layers) stays in eval mode
    norms = [
        name for name, m in module.backbone.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
    ]
    if strategy == "full":
        return norms
    if strategy == "gradual":
        # GradualUnfreezing trains the head in epoch 0, then one more block per epoch from the top.
        trained = module.blocks[len(module.blocks) - min(len(module.blocks), max_epochs - 1):]
    else:  # "partial": frozen leaves are listed by name and kept in eval mode
        frozen = set(module.frozen_modules)
        return [name for name in norms if name not in frozen]
    return [name for name in norms if any(name == t or name.startswith(t + ".") for t in trained)]


def batchnorm_drop_last(estimator, module, n: int) -> dict:
    """skorch settings that keep a trained BatchNorm from seeing a training batch of one sample.

    A BatchNorm in train mode normalises by the batch's own statistics: with one sample
    torch raises 'Expected more than 1 value per channel when training' (feature maps
    don't raise, but the running statistics absorb a one-sample estimate). When the
    training rows leave a last batch of one, that sample is dropped
    (``iterator_train__drop_last=True``) rather than erroring: it is one sample, and
    shuffling drops a different one each epoch. The LR schedule reads its length from
    this iterator, so it stays in sync. ``iterator_train__drop_last`` in ``net_params``
    wins; with a ``train_split`` of their own the training size is unknown: left alone.
    """
    net_params = estimator.net_params or {}
    n_train = planned_n_train(n, estimator._validation_fraction(), net_params)
    batch_size = effective_batch_size(estimator.batch_size, net_params)
    if n_train is None or "iterator_train__drop_last" in net_params or n_train % batch_size != 1:
        return {}
    norms = trained_batchnorms(module, estimator.strategy, estimator.max_epochs)
    if not norms:
        return {}
    if n_train == 1:
        raise ValueError(
            f"One training sample, but the backbone's BatchNorm layer(s) ({', '.join(norms[:3])}"
            f"{'...' if len(norms) > 3 else ''}) train, and BatchNorm can't normalise a batch of one. Pass more "
            "samples (validation_fraction and patience hold some out), or use strategy='head'."
        )
    return {"iterator_train__drop_last": True}


def planned_n_train(n: int, fraction, net_params: dict | None) -> int | None:
    """Rows the net will train on, or None where ``net_params`` sets its own ``train_split``."""
    if "train_split" in (net_params or {}):
        return None
    return n if fraction is None else n - n_validation(fraction, n)


def effective_batch_size(batch_size: int, net_params: dict | None) -> int:
    """The training iterator's batch size: ``net_params`` can override the estimator's."""
    net_params = net_params or {}
    return int(net_params.get("iterator_train__batch_size", net_params.get("batch_size", batch_size)))
