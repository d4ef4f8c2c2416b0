"""Raw samples to the graph's input tensors, one class per modality (numpy, Pillow, tokenizers).

Each reproduces what the estimator's input adapter and collate do before the network:
:class:`TextInputs` tokenises as the Hugging Face fast tokenizer did in training
(truncation, or overlapping windows), :class:`ImageInputs` resizes, crops and
normalises as torchvision's transforms did, :class:`TabularInputs` standardises
with the training statistics.
"""

from __future__ import annotations

import os

import numpy as np

from sktransfer._onnx import pixels
from sktransfer._onnx.resize import resize_uint8
from sktransfer.exceptions import InputModalityError, InvalidInputError


def _column(X):
    """A pandas Series or one-column DataFrame as a list; anything else unchanged."""
    if hasattr(X, "iloc") and hasattr(X, "columns"):
        if X.shape[1] != 1:
            raise InvalidInputError(f"X is a DataFrame with {X.shape[1]} columns; this model takes one column.")
        return X.iloc[:, 0].tolist()
    return X.tolist() if hasattr(X, "iloc") else X


def take(items, rows):
    """``items`` at the positions ``rows``: an array's rows, or a list's items."""
    return items[rows] if isinstance(items, np.ndarray) else [items[i] for i in rows]


class Inputs:
    """Validates raw samples and turns a batch of them into the graph's named inputs.

    The predictor calls :meth:`check` on the whole ``X``, then, slice by slice,
    :meth:`encode`, :meth:`order` and :meth:`batch` per batch of rows in that order.
    """

    def __init__(self, config: dict, directory: str):
        self.config = config

    def check(self, X) -> list:
        """``X`` as a sequence of samples; raises TypeError/ValueError naming the problem."""
        raise NotImplementedError

    def encode(self, samples):
        """``samples`` (a slice of :meth:`check`'s) as the items :meth:`batch` takes."""
        return samples

    def lengths(self, items) -> np.ndarray | None:
        """Each item's tokens, where batches pad to their longest item (None: no padding)."""
        return None

    def order(self, items) -> np.ndarray | None:
        """The order to run ``items`` in, None: as they are. Longest first, as the estimators
        run texts: each batch then pads to lengths alike, and far fewer padding tokens run
        through the graph."""
        lengths = self.lengths(items)
        if lengths is None or len(lengths) < 2:
            return None
        return np.argsort(-lengths, kind="stable")

    def batch(self, items, rows, offset: int = 0) -> dict[str, np.ndarray]:
        """The graph's inputs for ``items`` at ``rows``, which are ``X[offset + rows]``."""
        raise NotImplementedError


class TextInputs(Inputs):
    def __init__(self, config, directory):
        from tokenizers import Tokenizer

        super().__init__(config, directory)
        self.tokenizer = Tokenizer.from_file(os.path.join(directory, config["tokenizer"]))
        self.tokenizer.no_padding()  # padded here, to the batch's longest window
        # As transformers' fast tokenizer is called in training: truncation=True, max_length, and
        # for windows stride (the tokens neighbouring windows share) with the overflowing windows.
        self.tokenizer.enable_truncation(config["max_length"], stride=config["stride"], strategy="longest_first",
                                         direction=config["truncation_side"])
        self.windowed = config["long_text"] == "chunk"

    def check(self, X):
        X = _column(X)
        if isinstance(X, str):
            raise InputModalityError("X is a single string; pass a sequence of texts, e.g. [text].")
        if isinstance(X, np.ndarray) and X.dtype != object and X.dtype.kind != "U":
            raise InputModalityError(f"X is a numeric array of shape {X.shape}, but this model takes texts.")
        if not isinstance(X, (list, tuple, np.ndarray)):
            raise TypeError(f"X of type {type(X).__name__} is not a sequence of texts; pass a list of str.")
        X = list(np.asarray(X, dtype=object).ravel()) if isinstance(X, np.ndarray) else list(X)
        for i, text in enumerate(X):
            if text is None or (isinstance(text, float) and np.isnan(text)):
                raise InvalidInputError(f"X[{i}] is missing ({text!r}); fill missing texts, e.g. with ''.")
            if not isinstance(text, str):
                raise InputModalityError(f"X[{i}] is a {type(text).__name__}; every item must be a str.")
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise InvalidInputError(f"X[{i}] holds a character UTF-8 can't encode at position {exc.start}.") from None
        return X

    def encode(self, texts):
        """Each text's windows: the truncated encoding, then (``long_text="chunk"``) its
        overflowing ones, at most ``max_windows``."""
        encodings = self.tokenizer.encode_batch(list(texts))
        if not self.windowed:
            return [[encoding] for encoding in encodings]
        return [([encoding] + list(encoding.overflowing))[: self.config["max_windows"]] for encoding in encodings]

    def lengths(self, items):
        """Tokens of every window kept (as ``TextCollate.token_counts`` counts them)."""
        return np.array([sum(len(window.ids) for window in windows) for windows in items], dtype=np.int64)

    def batch(self, items, rows, offset=0):
        texts = take(items, rows)
        if not self.windowed:
            return self._pad([windows[0] for windows in texts])
        windows, owners = [], []
        for own in texts:
            windows += own
            owners.append(list(range(len(windows) - len(own), len(windows))))
        width = max(len(own) for own in owners)
        index = np.zeros((len(texts), width), dtype=np.int64)
        mask = np.zeros((len(texts), width), dtype=bool)
        for i, own in enumerate(owners):
            index[i, : len(own)] = own
            mask[i, : len(own)] = True
        return {**self._pad(windows), "window_index": index, "window_mask": mask}

    def _pad(self, encodings) -> dict[str, np.ndarray]:
        """Ids, masks and type ids padded to the longest encoding, as the tokenizer's ``padding="longest"``."""
        config = self.config
        length = max(len(e.ids) for e in encodings)
        fields = {"input_ids": ("ids", config["pad_token_id"]), "attention_mask": ("attention_mask", 0),
                  "token_type_ids": ("type_ids", config["pad_token_type_id"])}
        out = {}
        for name in config["input_names"]:
            attribute, pad = fields[name]
            arr = np.full((len(encodings), length), pad, dtype=np.int64)
            for row, encoding in enumerate(encodings):
                values = getattr(encoding, attribute)
                if config["padding_side"] == "left":
                    arr[row, length - len(values):] = values
                else:
                    arr[row, : len(values)] = values
            out[name] = arr
        return out


class ImageInputs(Inputs):
    def __init__(self, config, directory):
        super().__init__(config, directory)
        prep = config["preprocessing"]
        self.size, self.resize = prep["input_size"], prep["resize_size"] or prep["input_size"]
        self.interpolation = prep["interpolation"]
        self.mean = np.asarray(prep["mean"], dtype=np.float32).reshape(3, 1, 1)
        self.std = np.asarray(prep["std"], dtype=np.float32).reshape(3, 1, 1)

    def check(self, X):
        from PIL import Image

        X = _column(X)
        if isinstance(X, (str, bytes)):
            raise InputModalityError("X is a single string; pass a sequence of images (file paths, PIL images or arrays).")
        if isinstance(X, Image.Image):
            raise TypeError("X is a single PIL image; pass a sequence of them: [X].")
        if isinstance(X, np.ndarray) and X.dtype != object:
            if len(X) == 0:
                raise InvalidInputError("X holds no images.")
            return pixels.array_images(X)
        if isinstance(X, np.ndarray):
            X = X.tolist()
        if not isinstance(X, (list, tuple)):
            raise TypeError(
                f"X of type {type(X).__name__} is not a supported image input; pass a numpy array (N, H, W[, C]) or "
                "a list of PIL images, arrays or file paths."
            )
        kinds = {"path" if isinstance(x, (str, os.PathLike)) else "pil" if isinstance(x, Image.Image) else
                 "array" if isinstance(x, np.ndarray) else type(x).__name__ for x in X}
        if len(kinds) > 1 or not kinds <= {"path", "pil", "array"}:
            raise TypeError(
                f"X mixes or holds unsupported items ({', '.join(sorted(kinds))}); pass a list of only PIL images, "
                "only image arrays, or only file paths."
            )
        missing = [os.fspath(x) for x in X if isinstance(x, (str, os.PathLike)) and not os.path.isfile(x)]
        if missing:
            raise InvalidInputError(f"{len(missing)} image file(s) not found, e.g. {missing[0]!r}.")
        return list(X)  # decoded batch by batch: files are read when their batch runs

    def batch(self, items, rows, offset=0):
        return {"pixel_values": np.stack([self._pixels(pixels.item_to_rgb(items[i], f"X[{offset + i}]"))
                                          for i in rows])}

    def _pixels(self, rgb: np.ndarray) -> np.ndarray:
        resized = resize_shorter_edge(rgb, self.resize, self.interpolation)
        h, w = resized.shape[:2]
        top, left = round((h - self.size) / 2.0), round((w - self.size) / 2.0)  # torchvision's CenterCrop
        crop = resized[top: top + self.size, left: left + self.size]
        chw = np.moveaxis(crop, -1, 0).astype(np.float32) / np.float32(255.0)
        return (chw - self.mean) / self.std


def resize_shorter_edge(rgb: np.ndarray, size: int, interpolation: str) -> np.ndarray:
    """torchvision's ``Resize(size, antialias=True)`` of a uint8 image: the shorter edge to ``size``.

    Bilinear and bicubic follow torch's native uint8 kernels (:mod:`.resize`), nearest
    :func:`_nearest`.
    """
    h, w = rgb.shape[:2]
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    if (new_h, new_w) == (h, w):
        return rgb
    if interpolation == "nearest":
        return rgb[_nearest(h, new_h)][:, _nearest(w, new_w)]
    return resize_uint8(rgb, new_h, new_w, interpolation)


def _nearest(in_size: int, out_size: int) -> np.ndarray:
    """torch's nearest source indices: ``floor(i * (in / out))`` in float32 arithmetic, as ATen computes them."""
    scale = np.float32(in_size) / np.float32(out_size)
    index = np.floor(np.arange(out_size, dtype=np.float32) * scale).astype(np.int64)
    return np.minimum(index, in_size - 1)


class TabularInputs(Inputs):
    def __init__(self, config, directory):
        super().__init__(config, directory)
        self.mean = np.asarray(config["mean"], dtype=np.float64)
        self.scale = np.asarray(config["scale"], dtype=np.float64)
        self.exponent = None if config["exponent"] is None else np.asarray(config["exponent"], dtype=np.int32)
        self.names = config["feature_names"]

    def check(self, X):
        if hasattr(X, "columns"):
            columns = [str(c) for c in X.columns]
            if self.names is not None and columns != self.names:
                raise ValueError(
                    f"X's columns {columns[:8]} differ from the ones the model was fitted on {self.names[:8]} (names "
                    "and order must match)."
                )
            X = X.to_numpy()
        if isinstance(X, (list, tuple)) and X and isinstance(X[0], str):
            raise InputModalityError("X holds strings, but this model takes a numeric feature matrix.")
        try:
            X = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"X must be a 2-D numeric array: {exc}") from None
        if X.ndim != 2:
            raise ValueError(f"Expected a 2-D array of shape (n_samples, {len(self.mean)}), got shape {X.shape}.")
        if X.shape[1] != len(self.mean):
            raise ValueError(f"X has {X.shape[1]} features, but the model was fitted on {len(self.mean)}.")
        if not np.isfinite(X).all():
            raise ValueError("X holds NaN or infinite values; the model needs finite features.")
        return X

    def batch(self, items, rows, offset=0):
        values = items[rows] if self.exponent is None else np.ldexp(items[rows], -self.exponent)
        with np.errstate(over="ignore"):
            out = ((values - self.mean) / self.scale).astype(np.float32)  # StandardScaler.transform, then float32
        if not np.isfinite(out).all():
            raise ValueError("X holds values too far from the training data for float32 once standardised.")
        return {"features": out}


INPUTS = {"text": TextInputs, "image": ImageInputs, "tabular": TabularInputs}
