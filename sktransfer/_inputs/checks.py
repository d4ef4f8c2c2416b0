"""Checks of the samples and of text limits, before any backbone pass, with errors that name the fix."""

from __future__ import annotations

import os

from sktransfer.exceptions import InputModalityError, InvalidInputError

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


IMAGE_FILE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def check_not_image_paths(texts, name: str) -> None:
    """Raise when every text is an image file name: a text model would "classify" the file
    names, a wrong answer that looks like an answer."""
    if not texts or not all(
        isinstance(t, str) and t.strip().lower().endswith(IMAGE_FILE_SUFFIXES) and "\n" not in t for t in texts
    ):
        return
    raise InputModalityError(
        f"X looks like image paths (e.g. {texts[0][:80]!r}), but backbone {name!r} takes text: it would read the "
        "file names as sentences. Give it the texts, or use a model fitted on an image backbone for images."
    )


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


def model_config(load):
    """The config that ``load`` (a :class:`TextPreprocessing`'s ``model_config``) returns,
    or None where there is none or it doesn't load."""
    if load is None:
        return None
    try:
        return load()
    except Exception:  # a plugin's model need not have a config this check can read
        return None


def load_tokenizer(spec):
    """The tokenizer of text backbone ``spec``, from its ``TextPreprocessing.load_tokenizer``."""
    load = getattr(spec.preprocessing, "load_tokenizer", None)
    if load is None:
        raise ValueError(
            f"Text backbone {spec.name!r} (plugin {spec.plugin or '?'}) gives no tokenizer: its "
            "TextPreprocessing has load_tokenizer=None. The plugin must set load_tokenizer to a callable that "
            "returns the tokenizer from local files, e.g. functools.partial(AutoTokenizer.from_pretrained, "
            "directory, local_files_only=True)."
        )
    return load()


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
