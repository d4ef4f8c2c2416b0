"""Images: numpy arrays, lists of PIL images or arrays, or lists of file paths.

The adapter validates ``X`` and feeds it lazily; how each image becomes pixels, and the
rules per dtype, live in :mod:`.pixels`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
import torch

from sktransfer._inputs.augment import BATCH_MIXES, IMAGE_AUGMENTS
from sktransfer._inputs.base import InputAdapter, SampleDataset, column, non_empty
from sktransfer._inputs.pixels import (
    IMAGE_EXTENSIONS,
    array_layout,
    check_not_empty,
    dark_16_bit_warning,
    height_width,
    item_layout,
    pixel_scale,
    to_uint8_chw,
)
from sktransfer.exceptions import InputModalityError, InvalidInputError


class ImageSource(Sequence):
    """Random access to images as uint8 tensors ``(3, H, W)``, decoded on demand.

    ``scale`` takes the pixels to 0..255 (see :func:`pixel_scale`): one number for
    an array, or one per item for a list (None for files and PIL images, whose
    mode decides when they are decoded).
    """

    def __init__(self, items, layout: str | None = None, scale=1.0):
        self.items, self.layout, self.scale = items, layout, scale

    def __len__(self):
        return len(self.items)

    def scale_of(self, i):
        return self.scale[i] if isinstance(self.scale, (list, tuple)) else self.scale

    def __getitem__(self, i):
        return to_uint8_chw(self.items[i], self.layout, self.scale_of(i), where=f"X[{i}]")


def image_transform(prep, augment=None, train: bool = False):
    """torchvision.transforms.v2 pipeline: resize + crop (or the augmentation) + normalise."""
    from torchvision.transforms import InterpolationMode, v2

    interpolation = InterpolationMode(prep.interpolation)
    if train and augment in IMAGE_AUGMENTS:
        geometry = [
            *_crop_and_flip(prep, interpolation),
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


def _crop_and_flip(prep, interpolation) -> list:
    """A random crop of 35-100 % of the area at the input size, then a random horizontal flip."""
    from torchvision.transforms import v2

    return [v2.RandomResizedCrop(prep.input_size, scale=(0.35, 1.0), interpolation=interpolation, antialias=True),
            v2.RandomHorizontalFlip()]


def _hwc(image: torch.Tensor) -> np.ndarray:
    """A uint8 (3, H, W) tensor as an (H, W, 3) array: the layout a list of arrays is read in."""
    return image.permute(1, 2, 0).contiguous().numpy()


class _Composed:
    """Picklable ``transform(image)``."""

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, image):
        return self.transform(image)


class BatchMix:
    """Training collate that applies torchvision's MixUp or CutMix to whole batches.

    Labels become class probabilities, which the loss takes as soft targets. With
    ``multilabel``, targets are 0/1 indicator rows, mixed in the same proportions as
    the images (a label present in a quarter of the pixels gets the target 0.25).
    """

    def __init__(self, collate, kind: str, num_classes: int, multilabel: bool = False):
        self.collate, self.kind, self.num_classes = collate, kind, num_classes
        self.multilabel = multilabel

    def __call__(self, batch):
        from torchvision.transforms import v2

        X, target = self.collate(batch)
        mix = getattr(v2, BATCH_MIXES[self.kind])
        if not self.multilabel:
            images, labels = mix(num_classes=self.num_classes)(X, target["target"])
            return images, {**target, "target": labels}
        # torchvision mixes class indices only. Giving each sample its own "class" makes
        # the soft labels it returns the mixing matrix (row i: how much of each sample
        # image i holds), which mixes the indicator rows exactly as the images were.
        n = len(X)
        images, mixing = mix(num_classes=n)(X, torch.arange(n))
        return images, {**target, "target": mixing @ target["target"].float()}


#: The largest image side a model file may ask predict to resize to.
MAX_SAVED_SIDE = 16384


def _check_preprocessing_state(prep: dict) -> None:
    """Saved preprocessing that predict can use: sizes in 1..MAX_SAVED_SIDE, three finite
    means and three standard deviations > 0."""
    for field in ("input_size", "resize_size"):
        value = prep.get(field)
        if value is None and field == "resize_size":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SAVED_SIDE:
            raise ValueError(f"adapter.preprocessing.{field} is {value!r}, not a size in 1..{MAX_SAVED_SIDE}")
    for field in ("mean", "std"):
        values = prep.get(field)
        if (not isinstance(values, list) or len(values) != 3
                or not all(isinstance(v, (int, float)) and np.isfinite(v) for v in values)
                or (field == "std" and not all(v > 0 for v in values))):
            raise ValueError(f"adapter.preprocessing.{field} is {values!r}, not three finite numbers"
                             + (" > 0" if field == "std" else ""))


class ImageAdapter(InputAdapter):
    """Images: numpy arrays, lists of PIL images or arrays, or lists of file paths."""

    modality = "image"
    pixel_batches = True
    # Measured on flowers12 with EfficientNet-Lite0 (benchmarks/README.md, "Images on small data"):
    # with 1-8 photos a species, fine-tuning lost to LogisticRegression on the frozen features,
    # and a head solved on 8 random crops and flips of each photo beat it at 1 photo a species.
    small_data_views = 8


    def get_state(self) -> dict:
        """The preprocessing, as JSON data (model files)."""
        prep = self.preprocessing
        return {
            "kind": "image",
            "preprocessing": {
                "input_size": int(prep.input_size),
                "resize_size": None if prep.resize_size is None else int(prep.resize_size),
                "mean": [float(v) for v in prep.mean],
                "std": [float(v) for v in prep.std],
                "interpolation": prep.interpolation,
                "fixed_size": bool(prep.fixed_size),
            },
        }

    def set_state(self, state: dict) -> "ImageAdapter":
        from sktransfer._spec.registry import ImagePreprocessing

        self._check_kind(state)
        prep = dict(state["preprocessing"])
        _check_preprocessing_state(prep)
        prep["mean"], prep["std"] = tuple(prep["mean"]), tuple(prep["std"])
        self.preprocessing = ImagePreprocessing(**prep)
        return self

    def __init__(self, name: str, preprocessing, augment=None):
        self.name = name
        self.preprocessing = preprocessing
        self.augment = augment

    @classmethod
    def check_params(cls, spec, params: dict) -> None:
        augment = params.get("augment")
        if isinstance(augment, str) and augment not in IMAGE_AUGMENTS:
            raise ValueError(
                f"augment={augment!r} is for text backbones; backbone {spec.name!r} takes images. Use 'default', "
                "'mixup', 'cutmix', a callable on uint8 image tensors, or None."
            )
        if params.get("pooling", "auto") != "auto":
            raise ValueError(f"pooling={params['pooling']!r} applies to text backbones; {spec.name!r} takes images.")
        if params.get("long_text", "truncate") != "truncate":
            raise ValueError(
                f"long_text={params['long_text']!r} applies to text backbones; {spec.name!r} takes images. "
                "Use long_text='truncate' (the default)."
            )
        image_size = params.get("image_size")
        prep = spec.preprocessing
        if image_size is not None and prep.fixed_size and image_size != prep.input_size:
            raise ValueError(
                f"Backbone {spec.name!r} only accepts {prep.input_size}px inputs; "
                f"got image_size={image_size}. Use image_size=None."
            )

    @classmethod
    def from_params(cls, spec, params: dict) -> "ImageAdapter":
        prep = spec.preprocessing
        if params.get("image_size") is not None:
            prep = prep.with_input_size(params["image_size"])
        return cls(spec.name, prep, params.get("augment"))

    @classmethod
    def default_preprocessing(cls):
        from sktransfer._spec.registry import ImagePreprocessing

        return ImagePreprocessing()

    def inherit(self, params: dict) -> "ImageAdapter":
        prep = self.preprocessing
        if params.get("image_size") is not None:
            prep = prep.with_input_size(params["image_size"])
        return type(self)(self.name, prep, params.get("augment"))

    @classmethod
    def update_tags(cls, tags):
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags

    def fingerprint_parts(self) -> tuple:
        return (self.preprocessing,)

    def check(self, X, *, estimator=None, reset: bool = False) -> ImageSource:
        from PIL import Image

        X = column(X)
        if isinstance(X, torch.Tensor):
            X = X.detach().cpu().numpy()  # shares memory with X: to_uint8_chw copies before any transform
        if isinstance(X, (str, bytes)):
            raise InputModalityError(
                f"X is a single string; backbone {self.name!r} takes a sequence of images "
                "(an array, or a list of PIL images or file paths)."
            )
        if isinstance(X, Image.Image):
            raise TypeError(f"X is a single PIL image; backbone {self.name!r} takes a sequence of them: pass [X].")
        if isinstance(X, np.ndarray) and X.dtype != object:
            return self._check_array(X)
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
        non_empty(X, "images")
        items = list(X)
        return ImageSource(items, None, self._check_items(items))

    def _check_array(self, X: np.ndarray) -> ImageSource:
        """An (N, ...) array is judged as a whole: one layout and one pixel scale for all its images."""
        if not (X.dtype == np.bool_ or np.issubdtype(X.dtype, np.integer) or np.issubdtype(X.dtype, np.floating)):
            raise InputModalityError(
                f"Image arrays must hold integers, floats or bools, got dtype {X.dtype} for backbone {self.name!r}."
            )
        non_empty(X, "images")
        layout = array_layout(X, self.name)
        hw = height_width(X.shape, layout)
        if 0 in hw:
            raise InvalidInputError(
                f"X has shape {X.shape}: all its images are empty ({hw[0]}x{hw[1]} pixels). Every image needs a "
                "height and width of at least 1."
            )
        scale = pixel_scale(X)
        dark_16_bit_warning([("X", X)])
        return ImageSource(X, layout, scale)

    def _check_items(self, items: list) -> list:
        """Validate a list of images item by item (in place: tensors become numpy views); their scales."""
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
            return self._check_array_items(items)
        if kinds == {"pil"}:
            for i, img in enumerate(items):
                check_not_empty(img.size[::-1], f"X[{i}] (a PIL image)")
        if kinds == {"path"}:
            self._check_paths(items)
        return [None] * len(items)  # files and PIL images: their mode decides, when decoded

    def _check_array_items(self, items: list) -> list:
        for i, x in enumerate(items):
            items[i] = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x)
        scales = []
        for i, x in enumerate(items):
            where = f"X[{i}]"
            check_not_empty(height_width(x.shape, item_layout(x, where)), where)
            scales.append(pixel_scale(x, where))
        dark_16_bit_warning((f"X[{i}]", x) for i, x in enumerate(items))
        return scales

    def _check_paths(self, items: list) -> None:
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
        for i, path in enumerate(items):
            if os.path.getsize(path) == 0:
                raise InvalidInputError(
                    f"X[{i}] ({os.fspath(path)!r}) is an empty file (0 bytes), not an image. Drop it from X "
                    "(and its label from y), or export it again."
                )

    def with_views(self, X_checked: ImageSource, n_views: int, seed: int | None) -> list:
        """Each image resized as prediction resizes it, then ``n_views`` random crops (35-100% of
        the area) and horizontal flips of each, as uint8 (H, W, 3) arrays, seeded by ``seed``."""
        from torchvision.transforms import InterpolationMode, v2

        prep = self.preprocessing
        interpolation = InterpolationMode(prep.interpolation)
        resize = v2.Resize(prep.resize_size or prep.input_size, interpolation=interpolation, antialias=True)
        crop = v2.Compose(_crop_and_flip(prep, interpolation))
        originals, views = [], [[] for _ in range(n_views)]
        with torch.random.fork_rng(devices=[]):  # the user's random stream is left as it was
            if seed is not None:
                torch.manual_seed(seed)
            for i in range(len(X_checked)):
                image = X_checked[i]  # decoded once, full size: the crops keep its detail
                originals.append(_hwc(resize(image)))
                for view in views:
                    view.append(_hwc(crop(image)))
        return originals + [image for view in views for image in view]

    def dataset(self, source: ImageSource, targets=None, train: bool = False) -> SampleDataset:
        transform = image_transform(self.preprocessing, self.augment, train=train)
        return SampleDataset(source, _Composed(transform), targets)

    def sample_content(self, source: ImageSource) -> tuple[bytes, list[bytes]]:
        from PIL import Image

        from sktransfer._hashing import file_digest

        per_item = isinstance(source.scale, (list, tuple))  # a list: each item has its own scale
        contents = []
        for i, item in enumerate(source.items):
            if isinstance(item, (str, os.PathLike)):  # an image file: its bytes, whatever its name or timestamps
                try:
                    contents.append(b"file:" + file_digest(item))
                except OSError as exc:
                    raise InvalidInputError(f"Could not read image file {os.fspath(item)!r}: {exc}") from exc
            elif isinstance(item, Image.Image):
                contents.append(repr((item.mode, item.size)).encode() + item.tobytes())
            else:
                arr = np.ascontiguousarray(item)
                scale = source.scale_of(i) if per_item else None
                contents.append(repr((arr.dtype.str, arr.shape, scale)).encode() + arr.tobytes())
        return repr((source.layout, None if per_item else source.scale)).encode(), contents

    @classmethod
    def preprocessing_problem(cls, spec) -> str | None:
        from sktransfer._spec.registry import ImagePreprocessing

        prep = spec.preprocessing
        if not isinstance(prep, ImagePreprocessing):
            return f"an image backbone needs an ImagePreprocessing, got {prep!r}."
        if not isinstance(prep.input_size, int) or isinstance(prep.input_size, bool) or prep.input_size <= 0:
            return f"preprocessing.input_size must be a positive int, got {prep.input_size!r}."
        if prep.resize_size is not None and (not isinstance(prep.resize_size, int) or prep.resize_size < prep.input_size):
            return (
                f"preprocessing.resize_size must be None or an int >= input_size ({prep.input_size}), "
                f"got {prep.resize_size!r}."
            )
        for field in ("mean", "std"):
            values = getattr(prep, field)
            if len(values) != 3 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
                return f"preprocessing.{field} must be 3 finite numbers (RGB), got {values!r}."
        if not all(v > 0 for v in prep.std):
            return f"preprocessing.std must be positive, got {prep.std!r}."
        if prep.interpolation not in ("bilinear", "bicubic", "nearest"):
            return f"preprocessing.interpolation {prep.interpolation!r} is not bilinear, bicubic or nearest."
        return None

    @classmethod
    def sample_batch(cls, spec, batch_size: int, image_size=None, n_features: int = 8):
        generator = torch.Generator().manual_seed(0)
        prep = spec.preprocessing
        size = prep.input_size if prep.fixed_size or image_size is None else int(image_size)
        pixels = torch.rand(batch_size, 3, size, size, generator=generator)
        mean = torch.tensor(prep.mean).view(1, 3, 1, 1)
        std = torch.tensor(prep.std).view(1, 3, 1, 1)
        return ((pixels - mean) / std,), {}
