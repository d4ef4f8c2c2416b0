"""Images: numpy arrays, lists of PIL images or arrays, or lists of file paths.

Pixel rules (INPUT_RULES.md has them as a table): every image becomes a uint8
``(3, H, W)`` tensor, and a value that would not land in 0..255 is refused with an
error, never wrapped modulo 256 or clipped.

* uint8 is used as it is; bool is black and white (False/True -> 0/255, as PIL's
  mode "1" converts).
* uint16 is 16-bit: ``round(x / 257)``, so 65535 -> 255 (full range, like
  torchvision's ``ToDtype(scale=True)``); whatever its values, so that dark and
  bright images of one dataset are read alike.
* Other integers are 8-bit values and must lie in 0..255 (``np.array`` of Python
  ints is int64). Their bit depth is not guessed from the values: a 12-bit image in
  int32 would be read one way when bright and another when dark.
* Floats in [0, 1] are scaled by 255; floats in 0..255 with a maximum above 1 are
  used as they are. Anything negative or above 255 is refused (it usually means
  already-normalised pixels), and so are NaN and infinity. Rounding noise of half a
  grey level (-1e-7, 1.0000001) is tolerated: it rounds into 0..255.
* Files and PIL images in 16-bit or float modes ("I;16", "I;16B", "I", "F") are
  read through numpy and follow the same rules, instead of PIL's ``convert("RGB")``,
  which clips them. Mode "I" (PIL's 32-bit integers, also used for 16-bit PNGs by
  older Pillow) is read as 16-bit when its values fit 0..65535.

An array is judged as a whole (its [0, 1] or 0..255 reading holds for all its
images); a list is judged item by item.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Sequence

import numpy as np
import torch

from ..exceptions import InputModalityError, InvalidInputError
from ._base import InputAdapter, SampleDataset, column, non_empty

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
CHANNELS = (1, 3, 4)  # grayscale, RGB, RGBA (alpha is dropped)
_UINT16_SCALE = 1.0 / 257.0  # 65535 -> 255


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


def _open_image(path):
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()  # the pixels stay in memory once the file is closed
            return img
    except Exception as exc:
        raise InvalidInputError(f"Could not read image file {os.fspath(path)!r}: {exc}") from exc


def _is_wide_mode(mode: str) -> bool:
    """PIL modes with more than 8 bits per pixel: 16/32-bit integers and floats."""
    return mode in ("I", "F") or mode.startswith("I;")


def _wide_pil_pixels(img, where: str) -> np.ndarray:
    """A 16-bit, 32-bit or float PIL image as a numpy array that :func:`pixel_scale` reads."""
    arr = np.asarray(img)
    if np.issubdtype(arr.dtype, np.integer) and not _is_uint16(arr.dtype) and arr.size:
        # Mode "I" holds 16-bit PNGs (older Pillow) and 32-bit TIFFs; read both as 16-bit.
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 65535:
            raise InvalidInputError(
                f"{where} is a {img.mode!r} image with values {lo}..{hi}, outside the 16-bit range 0..65535. "
                "Convert it to 8- or 16-bit, or load it yourself and pass floats in [0, 1]."
            )
        arr = arr.astype(np.uint16)
    return arr


def _pil_to_uint8_chw(img, where: str) -> torch.Tensor:
    from torchvision.transforms.v2 import functional as F

    _check_not_empty(img.size[::-1], where)
    if _is_wide_mode(img.mode):  # PIL's convert("RGB") would clip these to 255
        arr = _wide_pil_pixels(img, where)
        return to_uint8_chw(arr, "hw", pixel_scale(arr, where), where=where)
    return F.pil_to_tensor(img.convert("RGB"))  # 8-bit modes; "1" becomes 0/255


def to_uint8_chw(item, layout: str | None = None, scale: float | None = None, *, where: str = "image") -> torch.Tensor:
    """One image (array, tensor, PIL image or path) as a 3-channel uint8 tensor.

    ``scale`` is the array's :func:`pixel_scale`, computed once by the adapter's
    check; None computes it here from this image alone. The tensor never shares
    memory with ``item``: a user ``augment`` may modify it in place.
    """
    from PIL import Image
    from torchvision.transforms.v2 import functional as F

    if isinstance(item, (str, os.PathLike)):
        where = f"{where} ({os.fspath(item)!r})"
        item = _open_image(item)
    if isinstance(item, Image.Image):
        return _pil_to_uint8_chw(item, where)
    if isinstance(item, torch.Tensor):
        item = item.detach().cpu()
    source = np.asarray(item)
    if layout is None:  # a single image from a list: guess its layout
        layout = _item_layout(source, where)
    _check_not_empty(_height_width(source.shape, layout), where)
    if scale is None:
        scale = pixel_scale(source, where)
    arr = source
    if arr.dtype != np.uint8:
        # The check made sure these land in 0..255: the cast neither wraps nor clips.
        exact = np.issubdtype(arr.dtype, np.integer) and scale == 1.0
        arr = (arr if exact else np.rint(arr * scale)).astype(np.uint8)
    if layout == "hw":
        arr = arr[..., None]
    if layout == "chw":
        arr = np.moveaxis(arr, 0, -1)
    arr = np.ascontiguousarray(arr[..., :3])  # drop alpha
    if not arr.flags.writeable:  # read-only inputs (memmaps, PIL buffers) are copied, never written
        arr = arr.copy()
    image = F.to_image(arr)  # (C, H, W); copies today, but torchvision does not promise it
    if image.shape[0] == 1:  # grayscale -> 3 channels, as pretrained models expect
        image = F.grayscale_to_rgb(image)
    image = image.as_subclass(torch.Tensor)
    if np.may_share_memory(image.numpy(), source):  # augment callables write in place
        image = image.clone()
    return image


def pixel_scale(arr: np.ndarray, where: str = "X") -> float:
    """The factor that takes ``arr``'s pixels to 0..255 after rounding, by the module's rules.

    Raises InvalidInputError for values that would not land in 0..255, and
    InputModalityError for dtypes that are not pixels.
    """
    if arr.dtype == np.bool_:
        return 255.0
    if arr.dtype == np.uint8 or arr.size == 0:
        return 1.0
    if _is_uint16(arr.dtype):
        return _UINT16_SCALE
    if np.issubdtype(arr.dtype, np.integer):
        _check_integer_range(arr, where)
        return 1.0
    if np.issubdtype(arr.dtype, np.floating):
        return _float_scale(arr, where)
    raise InputModalityError(
        f"{where} has dtype {arr.dtype}; image pixels must be integers, floats or bools."
    )


def _is_uint16(dtype) -> bool:
    return dtype.kind == "u" and dtype.itemsize == 2  # either byte order (16-bit TIFFs are big-endian)


def _check_integer_range(arr: np.ndarray, where: str) -> None:
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0:
        raise InvalidInputError(
            f"{where} holds negative pixel values ({arr.dtype}, min {lo}). Integer pixels must be 0..255 "
            "(or uint16, read as 0..65535): rescale them to uint8 0..255 or to floats in [0, 1]."
        )
    if hi > 255:
        raise InvalidInputError(
            f"{where} holds {arr.dtype} pixel values up to {hi}; integer pixels other than uint16 must be 0..255. "
            "Rescale them to uint8 0..255 or to floats in [0, 1] (e.g. X / X.max()); if they are full-range "
            "16-bit values, pass X.astype(np.uint16) (read as 0..65535)."
        )


def _float_scale(arr: np.ndarray, where: str = "X") -> float:
    """Floats in [0, 1] are scaled to 0..255; floats already in 0..255 are kept."""
    if not np.isfinite(arr).all():
        raise InvalidInputError(f"{where} holds NaN or infinite pixel values; fill or drop those images.")
    lo, hi = arr.min(), arr.max()

    def rounded(value, scale):  # the arithmetic to_uint8_chw does, so the check is exact
        return float(np.rint(value * scale))

    scale = 255.0 if rounded(hi, 255.0) <= 255 else 1.0
    if rounded(lo, scale) < 0:
        raise InvalidInputError(
            f"{where} holds negative pixel values (min {float(lo):.4g}, max {float(hi):.4g}): it looks already "
            "normalised (e.g. with ImageNet mean/std). Pass unnormalised pixels, floats in [0, 1] or 0..255 "
            "(or uint8); sktransfer normalises them for the backbone."
        )
    if rounded(hi, scale) > 255:
        raise InvalidInputError(
            f"{where} holds float pixel values up to {float(hi):.4g}; floats must be in [0, 1] or 0..255. "
            "Rescale them (e.g. X / X.max()), or pass uint8 or uint16 integers."
        )
    return scale


def _dark_16_bit_warning(arrays) -> None:
    """uint16 is read over its full range, so 12-bit data in it comes out nearly black: say so."""
    for where, arr in arrays:
        if _is_uint16(arr.dtype) and arr.size and int(arr.max()) < 4096:
            warnings.warn(
                f"{where} is uint16 with values only up to {int(arr.max())}; uint16 is read as 16-bit "
                f"(0..65535 -> 0..255), so it comes out nearly black. If these are 12-bit (or narrower) "
                "pixels, rescale them first, e.g. to floats X / 4095.",
                UserWarning,
                stacklevel=_caller_stacklevel(),
            )
            return


def _caller_stacklevel() -> int:
    """The warnings stacklevel of the first frame outside sktransfer: the user's fit or predict call
    (the adapter is reached through a varying number of estimator frames)."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def _single_image_hint(arr: np.ndarray) -> str | None:
    """An (H, W, C) array passed as X would be read as H grayscale images of W x C pixels.

    (N, H, W) batches whose images are 1, 3 or 4 pixels wide look the same; they
    are taken for a single image only when N and H both exceed 4, and can be
    passed as X[..., None].
    """
    if arr.ndim == 3 and arr.shape[-1] in CHANNELS and arr.shape[0] > 4 and arr.shape[1] > 4:
        return (
            f"X looks like a single image of shape {arr.shape}; add a batch axis (X[None]) or pass a list of "
            f"images. (If it really is {arr.shape[0]} grayscale images {arr.shape[2]} pixels wide, pass "
            "X[..., None].)"
        )
    return None


def _array_layout(arr: np.ndarray, name: str) -> str:
    hint = _single_image_hint(arr)
    if hint:
        raise InvalidInputError(hint)
    layout = _layout_of(arr.shape[1:]) if arr.ndim in (3, 4) else None
    if layout:
        return layout
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


def _layout_of(shape: tuple) -> str | None:
    """The layout of one image's shape: (H, W), (H, W, C) or (C, H, W); HWC wins a tie."""
    if len(shape) == 2:
        return "hw"
    if len(shape) == 3 and shape[-1] in CHANNELS:
        return "hwc"
    if len(shape) == 3 and shape[0] in CHANNELS:
        return "chw"
    return None


def _item_layout(arr: np.ndarray, where: str) -> str:
    """The layout of one image of a list."""
    layout = _layout_of(arr.shape)
    if layout:
        return layout
    raise InvalidInputError(
        f"{where} has shape {arr.shape}; each image must be an (H, W), (H, W, C) or (C, H, W) array with "
        "C in 1, 3 or 4."
    )


def _height_width(shape: tuple, layout: str) -> tuple:
    return shape[-3:-1] if layout == "hwc" else shape[-2:]


def _check_not_empty(hw: tuple, where: str) -> None:
    if 0 in hw:
        raise InvalidInputError(
            f"{where} is an empty image ({hw[0]}x{hw[1]} pixels); every image needs a height and width of at "
            "least 1. Drop it from X (and its label from y)."
        )


def image_transform(prep, augment=None, train: bool = False):
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
    """Picklable ``transform(image)``."""

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, image):
        return self.transform(image)


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


class ImageAdapter(InputAdapter):
    """Images: numpy arrays, lists of PIL images or arrays, or lists of file paths."""

    modality = "image"
    pixel_batches = True

    def __init__(self, name: str, preprocessing, augment=None):
        self.name = name
        self.preprocessing = preprocessing
        self.augment = augment

    @classmethod
    def check_params(cls, spec, params: dict) -> None:
        if params.get("pooling", "auto") != "auto":
            raise ValueError(f"pooling={params['pooling']!r} applies to text backbones; {spec.name!r} takes images.")
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
        from .._registry import ImagePreprocessing

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
        layout = _array_layout(X, self.name)
        hw = _height_width(X.shape, layout)
        if 0 in hw:
            raise InvalidInputError(
                f"X has shape {X.shape}: all its images are empty ({hw[0]}x{hw[1]} pixels). Every image needs a "
                "height and width of at least 1."
            )
        scale = pixel_scale(X)
        _dark_16_bit_warning([("X", X)])
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
                _check_not_empty(img.size[::-1], f"X[{i}] (a PIL image)")
        if kinds == {"path"}:
            self._check_paths(items)
        return [None] * len(items)  # files and PIL images: their mode decides, when decoded

    def _check_array_items(self, items: list) -> list:
        for i, x in enumerate(items):
            items[i] = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x)
        scales = []
        for i, x in enumerate(items):
            where = f"X[{i}]"
            _check_not_empty(_height_width(x.shape, _item_layout(x, where)), where)
            scales.append(pixel_scale(x, where))
        _dark_16_bit_warning((f"X[{i}]", x) for i, x in enumerate(items))
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

    def dataset(self, source: ImageSource, targets=None, train: bool = False) -> SampleDataset:
        transform = image_transform(self.preprocessing, self.augment, train=train)
        return SampleDataset(source, _Composed(transform), targets)

    def sample_content(self, source: ImageSource) -> tuple[bytes, list[bytes]]:
        from PIL import Image

        from .._feature_cache import file_digest

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
        from .._registry import ImagePreprocessing

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
