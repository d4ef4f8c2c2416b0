"""Pixels: how one image (array, tensor, PIL image or file) becomes a uint8 ``(3, H, W)``
tensor, and the rules per dtype and layout.

The README's "Input rules and failures" has these rules as a table. A value that would
not land in 0..255 is refused with an error, never wrapped modulo 256 or clipped.

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

import os
import sys
import warnings

import numpy as np
import torch

from sktransfer.exceptions import InputModalityError, InvalidInputError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
CHANNELS = (1, 3, 4)  # grayscale, RGB, RGBA (alpha is dropped)
_UINT16_SCALE = 1.0 / 257.0  # 65535 -> 255


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

    check_not_empty(img.size[::-1], where)
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
        layout = item_layout(source, where)
    check_not_empty(height_width(source.shape, layout), where)
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


def dark_16_bit_warning(arrays) -> None:
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


def array_layout(arr: np.ndarray, name: str) -> str:
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


def item_layout(arr: np.ndarray, where: str) -> str:
    """The layout of one image of a list."""
    layout = _layout_of(arr.shape)
    if layout:
        return layout
    raise InvalidInputError(
        f"{where} has shape {arr.shape}; each image must be an (H, W), (H, W, C) or (C, H, W) array with "
        "C in 1, 3 or 4."
    )


def height_width(shape: tuple, layout: str) -> tuple:
    return shape[-3:-1] if layout == "hwc" else shape[-2:]


def check_not_empty(hw: tuple, where: str) -> None:
    if 0 in hw:
        raise InvalidInputError(
            f"{where} is an empty image ({hw[0]}x{hw[1]} pixels); every image needs a height and width of at "
            "least 1. Drop it from X (and its label from y)."
        )
