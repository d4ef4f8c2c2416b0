"""Images to uint8 RGB arrays ``(H, W, 3)`` with numpy and Pillow only (the predictor's side).

The rules are the estimators' (:mod:`sktransfer._inputs.pixels`, which needs torch):
uint8 as it is; bool as 0/255; uint16 as 16-bit (``round(x / 257)``); other integers
must be 0..255; floats in [0, 1] are scaled by 255, floats in 0..255 kept; negative,
too large, NaN and infinite values are refused. An (N, ...) array is judged as a
whole, a list item by item; grayscale becomes RGB and alpha is dropped; 16-bit and
float PIL images are read through numpy (``convert("RGB")`` would clip them).
The ONNX parity tests hold the two implementations to the same pixels.
"""

from __future__ import annotations

import os

import numpy as np

from sktransfer.exceptions import InputModalityError, InvalidInputError

CHANNELS = (1, 3, 4)


def layout_of(shape: tuple) -> str | None:
    """``"hw"``, ``"hwc"`` or ``"chw"`` for one image's shape; HWC wins a tie; None if none fits."""
    if len(shape) == 2:
        return "hw"
    if len(shape) == 3 and shape[-1] in CHANNELS:
        return "hwc"
    if len(shape) == 3 and shape[0] in CHANNELS:
        return "chw"
    return None


def pixel_scale(arr: np.ndarray, where: str) -> float:
    """The factor that takes ``arr``'s pixels to 0..255; raises for values that don't land there."""
    if arr.dtype == np.bool_:
        return 255.0
    if arr.dtype == np.uint8 or arr.size == 0:
        return 1.0
    if arr.dtype.kind == "u" and arr.dtype.itemsize == 2:
        return 1.0 / 257.0
    if np.issubdtype(arr.dtype, np.integer):
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 255:
            raise InvalidInputError(
                f"{where} holds {arr.dtype} pixel values {lo}..{hi}; integer pixels other than uint16 must be "
                "0..255. Rescale them to uint8 or to floats in [0, 1]."
            )
        return 1.0
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise InvalidInputError(f"{where} holds NaN or infinite pixel values; fill or drop those images.")
        lo, hi = arr.min(), arr.max()
        scale = 255.0 if float(np.rint(hi * 255.0)) <= 255 else 1.0
        if float(np.rint(lo * scale)) < 0 or float(np.rint(hi * scale)) > 255:
            raise InvalidInputError(
                f"{where} holds float pixel values {float(lo):.4g}..{float(hi):.4g}; floats must be in [0, 1] or "
                "0..255 (not already normalised)."
            )
        return scale
    raise InputModalityError(f"{where} has dtype {arr.dtype}; image pixels must be integers, floats or bools.")


def to_rgb(arr: np.ndarray, layout: str, scale: float) -> np.ndarray:
    """One image array as uint8 ``(H, W, 3)``, by the rules above."""
    if arr.dtype != np.uint8:
        exact = np.issubdtype(arr.dtype, np.integer) and scale == 1.0
        arr = (arr if exact else np.rint(arr * scale)).astype(np.uint8)
    if layout == "hw":
        arr = arr[..., None]
    elif layout == "chw":
        arr = np.moveaxis(arr, 0, -1)
    arr = arr[..., :3]  # drop alpha
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    if 0 in arr.shape[:2]:
        raise InvalidInputError(f"an image is empty ({arr.shape[0]}x{arr.shape[1]} pixels).")
    return np.ascontiguousarray(arr)


def _wide_pil(img, where: str) -> np.ndarray:
    arr = np.asarray(img)
    if np.issubdtype(arr.dtype, np.integer) and not (arr.dtype.kind == "u" and arr.dtype.itemsize == 2) and arr.size:
        # Mode "I" holds 16-bit PNGs (older Pillow) and 32-bit TIFFs; read both as 16-bit.
        if int(arr.min()) < 0 or int(arr.max()) > 65535:
            raise InvalidInputError(f"{where} is a {img.mode!r} image with values outside 0..65535.")
        arr = arr.astype(np.uint16)
    return arr


def pil_to_rgb(img, where: str) -> np.ndarray:
    if img.mode in ("I", "F") or img.mode.startswith("I;"):
        arr = _wide_pil(img, where)
        return to_rgb(arr, "hw", pixel_scale(arr, where))
    return to_rgb(np.asarray(img.convert("RGB")), "hwc", 1.0)


def item_to_rgb(item, where: str) -> np.ndarray:
    """A file path, PIL image or array (one image of a list) as uint8 ``(H, W, 3)``."""
    from PIL import Image

    if isinstance(item, (str, os.PathLike)):
        where = f"{where} ({os.fspath(item)!r})"
        if not os.path.isfile(item):
            raise InvalidInputError(f"{where}: image file not found.")
        try:
            with Image.open(item) as img:
                img.load()
                return pil_to_rgb(img, where)
        except InvalidInputError:
            raise
        except Exception as exc:
            raise InvalidInputError(f"Could not read image file {where}: {exc}") from exc
    if isinstance(item, Image.Image):
        return pil_to_rgb(item, where)
    if not isinstance(item, np.ndarray):
        raise TypeError(f"{where} is a {type(item).__name__}; images are file paths, PIL images or numpy arrays.")
    layout = layout_of(item.shape)
    if layout is None:
        raise InvalidInputError(
            f"{where} has shape {item.shape}; each image must be (H, W), (H, W, C) or (C, H, W) with C in 1, 3 or 4."
        )
    return to_rgb(item, layout, pixel_scale(item, where))


def array_images(X: np.ndarray) -> list[np.ndarray]:
    """An (N, H, W[, C]) or (N, C, H, W) array as RGB images, judged as a whole (one pixel scale)."""
    if X.ndim == 3 and X.shape[-1] in CHANNELS and X.shape[0] > 4 and X.shape[1] > 4:
        raise InvalidInputError(
            f"X looks like a single image of shape {X.shape}; add a batch axis (X[None]) or pass a list of images. "
            f"(If it really is {X.shape[0]} grayscale images {X.shape[2]} pixels wide, pass X[..., None].)"
        )
    layout = layout_of(X.shape[1:]) if X.ndim in (3, 4) else None
    if layout is None:
        raise InvalidInputError(
            f"Image arrays must be shaped (N, H, W), (N, H, W, C) or (N, C, H, W) with C in 1, 3 or 4; got shape "
            f"{X.shape}."
        )
    scale = pixel_scale(X, "X")
    return [to_rgb(image, layout, scale) for image in X]
