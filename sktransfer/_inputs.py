"""Check ``X`` against a backbone's modality, and feed it lazily, batch by batch.

Each modality has one adapter: it validates ``X`` (with errors that say what to do),
wraps it in a torch ``Dataset`` that decodes one sample at a time, and collates a
batch.  Nothing is ever held at the backbone's resolution for the whole data set.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from .exceptions import InputModalityError, InvalidInputError
from ._registry import BackboneSpec, ImagePreprocessing

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def _column(X):
    """A pandas Series or one-column DataFrame as a list; anything else unchanged."""
    if hasattr(X, "iloc") and hasattr(X, "columns"):
        if X.shape[1] != 1:
            raise InvalidInputError(
                f"X is a DataFrame with {X.shape[1]} columns; this backbone takes one column of "
                "images or texts. Select it, e.g. X['text']."
            )
        return X.iloc[:, 0].tolist()
    if hasattr(X, "iloc"):
        return X.tolist()
    return X


def _non_empty(X, what: str):
    if len(X) == 0:
        raise ValueError(f"Found array with 0 sample(s): X holds no {what}. Pass at least one sample.")


class SampleDataset(Dataset):
    """Applies ``load`` to one sample at a time and pairs it with its target."""

    def __init__(self, samples, load, targets: dict | None = None):
        self.samples = samples
        self.load = load
        self.targets = targets

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        target = 0.0 if self.targets is None else {k: v[i] for k, v in self.targets.items()}
        return self.load(self.samples[i]), target


# --------------------------------------------------------------------------- images
class ImageSource(Sequence):
    """Random access to images as uint8 tensors ``(3, H, W)``, decoded on demand."""

    def __init__(self, items, layout: str | None = None, scale: float = 1.0):
        self.items, self.layout, self.scale = items, layout, scale

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return to_uint8_chw(self.items[i], self.layout, self.scale)


def _open_image(path):
    from PIL import Image

    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except Exception as exc:
        raise InvalidInputError(f"Could not read image file {os.fspath(path)!r}: {exc}") from exc


def to_uint8_chw(item, layout: str | None = None, scale: float = 1.0) -> torch.Tensor:
    """One image (array, tensor, PIL image or path) as a 3-channel uint8 tensor."""
    from PIL import Image

    if isinstance(item, (str, os.PathLike)):
        item = _open_image(item)
    if isinstance(item, Image.Image):
        arr, layout = np.asarray(item.convert("RGB")), "hwc"
    else:
        arr = np.asarray(item)
        if layout is None:  # a single image from a list: guess its layout
            layout = "hw" if arr.ndim == 2 else ("hwc" if arr.shape[-1] in (1, 3, 4) else "chw")
        if np.issubdtype(arr.dtype, np.floating):
            arr = np.clip(np.rint(arr * scale), 0, 255)
        arr = arr.astype(np.uint8, copy=False)
    if layout == "hw":
        arr = arr[..., None]
    if layout == "chw":
        arr = np.moveaxis(arr, 0, -1)
    arr = arr[..., :3]  # drop alpha
    if arr.shape[-1] == 1:  # grayscale -> 3 channels, as pretrained models expect
        arr = np.repeat(arr, 3, axis=-1)
    arr = np.ascontiguousarray(arr)
    if not arr.flags.writeable:  # read-only inputs (memmaps, PIL buffers) are copied, never written
        arr = arr.copy()
    return torch.from_numpy(arr).permute(2, 0, 1)


def _float_scale(arr: np.ndarray) -> float:
    """Floats in [0, 1] are scaled to 0..255; floats already in 0..255 are kept."""
    if not np.isfinite(arr).all():
        raise InvalidInputError("X holds NaN or infinite pixel values; fill or drop those images.")
    return 255.0 if arr.size == 0 or float(arr.max()) <= 1.0 else 1.0


def _array_layout(arr: np.ndarray, name: str) -> str:
    if arr.ndim == 3:
        return "hw"
    if arr.ndim == 4 and arr.shape[-1] in (1, 3, 4):
        return "hwc"
    if arr.ndim == 4 and arr.shape[1] in (1, 3, 4):
        return "chw"
    hint = (
        " A 2-D array looks like a feature matrix: reshape it to (N, H, W) (e.g. X.reshape(-1, 8, 8)), "
        "or use backbone='mlp' for tabular data."
        if arr.ndim == 2
        else ""
    )
    raise InvalidInputError(
        f"Image arrays must be shaped (N, H, W), (N, H, W, C) or (N, C, H, W) with C in 1, 3 or 4; "
        f"got shape {arr.shape} for backbone {name!r}.{hint}"
    )


def image_transform(prep: ImagePreprocessing, augment=None, train: bool = False):
    """torchvision.transforms.v2 pipeline: resize + crop (or the augmentation) + normalise."""
    from torchvision.transforms import InterpolationMode, v2

    interpolation = InterpolationMode(prep.interpolation)
    if train and augment in ("default", "mixup", "cutmix"):
        geometry = [
            v2.RandomResizedCrop(prep.input_size, scale=(0.35, 1.0), interpolation=interpolation, antialias=True),
            v2.RandomHorizontalFlip(),
            # Affine ops on tensors support only nearest/bilinear, whatever the backbone resizes with.
            v2.TrivialAugmentWide(
                interpolation=InterpolationMode.NEAREST
                if interpolation == InterpolationMode.NEAREST
                else InterpolationMode.BILINEAR
            ),
        ]
    else:
        geometry = [
            v2.Resize(prep.resize_size or prep.input_size, interpolation=interpolation, antialias=True),
            v2.CenterCrop(prep.input_size),
        ]
        if train and callable(augment):
            geometry.append(augment)
    return v2.Compose([*geometry, v2.ToDtype(torch.float32, scale=True), v2.Normalize(prep.mean, prep.std)])


class _Composed:
    """Picklable ``transform(source_loader(x))``."""

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, image):
        return self.transform(image)


class ImageAdapter:
    """Images: numpy arrays, lists of PIL images or arrays, or lists of file paths."""

    modality = "image"

    def __init__(self, spec: BackboneSpec, preprocessing: ImagePreprocessing, augment=None):
        self.name = spec.name
        self.preprocessing = preprocessing
        self.augment = augment

    def check(self, X) -> ImageSource:
        X = _column(X)
        if isinstance(X, torch.Tensor):
            X = X.detach().cpu().numpy()
        if isinstance(X, (str, bytes)):
            raise InputModalityError(
                f"X is a single string; backbone {self.name!r} takes a sequence of images "
                "(an array, or a list of PIL images or file paths)."
            )
        if isinstance(X, np.ndarray) and X.dtype != object:
            if not (np.issubdtype(X.dtype, np.integer) or np.issubdtype(X.dtype, np.floating)):
                raise InputModalityError(
                    f"Image arrays must hold integers or floats, got dtype {X.dtype} for backbone {self.name!r}."
                )
            _non_empty(X, "images")
            layout = _array_layout(X, self.name)
            scale = _float_scale(X) if np.issubdtype(X.dtype, np.floating) else 1.0
            return ImageSource(X, layout, scale)
        if isinstance(X, np.ndarray):  # object arrays: ragged images or strings
            if X.ndim == 1 and len(X) and all(isinstance(x, np.ndarray) for x in X):
                shapes = sorted({x.shape for x in X}, key=str)
                raise InvalidInputError(
                    f"X is an object ndarray of {len(X)} images with different shapes ({', '.join(map(str, shapes[:3]))}"
                    f"{'...' if len(shapes) > 3 else ''}). Pass a Python list of images instead (each is "
                    "resized on its own), or resize them to one shape and stack them into an (N, H, W[, C]) array."
                )
            X = X.tolist()
        if not isinstance(X, (list, tuple)):
            raise TypeError(
                f"X of type {type(X).__name__} is not a supported image input for backbone {self.name!r}. "
                "Pass a numpy array (N, H, W[, C]) or a list of PIL images, arrays or file paths."
            )
        _non_empty(X, "images")
        return ImageSource(self._check_items(list(X)))

    def _check_items(self, items: list) -> list:
        from PIL import Image

        kinds = {
            "path" if isinstance(x, (str, os.PathLike)) else
            "pil" if isinstance(x, Image.Image) else
            "array" if isinstance(x, (np.ndarray, torch.Tensor)) else type(x).__name__
            for x in items
        }
        if len(kinds) != 1 or not kinds <= {"path", "pil", "array"}:
            raise TypeError(
                f"X mixes or holds unsupported items ({', '.join(sorted(kinds))}); backbone {self.name!r} takes "
                "a list of only PIL images, only image arrays, or only file paths."
            )
        if kinds == {"array"}:
            items = [np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x) for x in items]
            for i, x in enumerate(items):
                if x.ndim not in (2, 3) or not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
                    raise InvalidInputError(
                        f"X[{i}] has shape {x.shape} and dtype {x.dtype}; each image must be a numeric (H, W) or "
                        "(H, W, C) array."
                    )
            return [x.astype(np.float32) * _float_scale(x) if np.issubdtype(x.dtype, np.floating) else x for x in items]
        if kinds == {"path"}:
            missing = [os.fspath(x) for x in items if not os.path.isfile(x)]
            if missing and len(missing) == len(items) and not any(
                os.fspath(m).lower().endswith(IMAGE_EXTENSIONS) for m in missing
            ):
                raise InputModalityError(
                    f"X holds strings that are not image files (e.g. {missing[0][:60]!r}): it looks like text, but "
                    f"backbone {self.name!r} takes images. Use a text backbone such as 'all-MiniLM-L6-v2', or "
                    "pass image arrays, PIL images or existing file paths."
                )
            if missing:
                raise InvalidInputError(
                    f"{len(missing)} image file(s) not found, e.g. {missing[0]!r}. Check the paths (relative paths "
                    f"are read from {os.getcwd()!r})."
                )
        return items

    def dataset(self, source: ImageSource, targets=None, train: bool = False) -> SampleDataset:
        transform = image_transform(self.preprocessing, self.augment, train=train)
        return SampleDataset(source, _Composed(transform), targets)

    collate_fn = staticmethod(default_collate)


class BatchMix:
    """Training collate that applies torchvision's MixUp or CutMix to whole batches.

    Labels become class probabilities, which the loss takes as soft targets.
    """

    def __init__(self, collate, kind: str, num_classes: int):
        self.collate, self.kind, self.num_classes = collate, kind, num_classes

    def __call__(self, batch):
        from torchvision.transforms import v2

        X, target = self.collate(batch)
        mix = v2.MixUp if self.kind == "mixup" else v2.CutMix
        images, labels = mix(num_classes=self.num_classes)(X, target["target"])
        return images, {**target, "target": labels}


# --------------------------------------------------------------------------- text
def _identity(x):
    return x


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


class TextAdapter:
    """Texts: lists, tuples, arrays or pandas Series of strings."""

    modality = "text"

    def __init__(self, spec: BackboneSpec, max_length: int):
        from .backbones.huggingface import load_tokenizer

        self.name = spec.name
        self.collate_fn = TextCollate(load_tokenizer(spec.preprocessing.tokenizer), max_length)

    def check(self, X) -> list[str]:
        X = _column(X)
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
        _non_empty(X, "texts")
        for i, x in enumerate(X):
            if not isinstance(x, str):
                if x is None or (isinstance(x, float) and np.isnan(x)):
                    raise InvalidInputError(f"X[{i}] is missing ({x!r}); fill missing texts, e.g. with ''.")
                raise InputModalityError(
                    f"X[{i}] is a {type(x).__name__}, but backbone {self.name!r} takes text: every item must be a str."
                )
        return X

    def dataset(self, texts: list[str], targets=None, train: bool = False) -> SampleDataset:
        return SampleDataset(texts, _identity, targets)


# --------------------------------------------------------------------------- tabular
class TabularAdapter:
    """2-D float matrices, standardised with the training mean and scale."""

    modality = "tabular"

    def __init__(self, mean: np.ndarray, scale: np.ndarray):
        self.mean, self.scale = mean.astype(np.float32), scale.astype(np.float32)

    @classmethod
    def fit(cls, X: np.ndarray) -> "TabularAdapter":
        scale = X.std(axis=0)
        return cls(X.mean(axis=0), np.where(scale > 0, scale, 1.0))

    def dataset(self, X: np.ndarray, targets=None, train: bool = False) -> SampleDataset:
        standardised = ((np.asarray(X, dtype=np.float32) - self.mean) / self.scale).astype(np.float32)
        return SampleDataset(torch.from_numpy(standardised), _identity, targets)

    collate_fn = staticmethod(default_collate)


def make_adapter(spec: BackboneSpec, preprocessing, augment=None, max_length=None):
    """The adapter for ``spec``'s modality (tabular adapters are made from data, in fit)."""
    if spec.modality == "image":
        return ImageAdapter(spec, preprocessing, augment)
    if spec.modality == "text":
        return TextAdapter(spec, max_length or spec.preprocessing.max_length)
    raise ValueError(f"No data-independent adapter for modality {spec.modality!r}.")
