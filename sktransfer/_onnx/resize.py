"""torchvision's antialiased resize of uint8 images, in numpy (no torch).

``v2.Resize(size, antialias=True)`` on a uint8 tensor runs torch's native uint8
kernels on the CPU (bicubic always; bilinear on AVX2/AVX512 and ARM CPUs): Pillow's
resampling filters (support scaled with the downscale factor, weights normalised per
output pixel) in fixed point, with int16 weights at the largest precision the axis's
largest weight allows; width first, then height, through a uint8 image. This module
follows ``_compute_index_ranges_int16_weights`` and ``basic_loop_aa_horizontal<uint8_t>``
of ATen's ``UpSampleKernel.cpp`` step by step, so that the predictor's pixels are the
training pixels, not Pillow's (which round differently and move some pixels by a grey
level: enough to move a large network's probabilities by 1e-2).
"""

from __future__ import annotations

import math

import numpy as np


def _triangle(x: float) -> float:
    x = abs(x)
    return 1.0 - x if x < 1.0 else 0.0


def _keys_cubic(x: float) -> float:
    """The cubic convolution kernel with a = -0.5 (Pillow's and torch's antialiased bicubic)."""
    a, x = -0.5, abs(x)
    if x < 1.0:
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    if x < 2.0:
        return ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
    return 0.0


# filter and its support (interp_size / 2) at scale 1
FILTERS = {"bilinear": (_triangle, 1.0), "bicubic": (_keys_cubic, 2.0)}


def axis_weights(in_size: int, out_size: int, interpolation: str) -> tuple[np.ndarray, np.ndarray, int]:
    """``(first, weights, precision)`` of one axis: each output pixel's first input pixel,
    its int16 weights ``(out_size, taps)`` (zero past its own taps), and their precision in bits."""
    kernel, half = FILTERS[interpolation]
    scale = in_size / out_size
    support = half * scale if scale >= 1.0 else half
    taps = math.ceil(support) * 2 + 1
    invscale = 1.0 / scale if scale >= 1.0 else 1.0
    first = np.zeros(out_size, dtype=np.int64)
    real = np.zeros((out_size, taps), dtype=np.float64)
    largest = 0.0
    for i in range(out_size):
        center = scale * (i + 0.5)
        xmin = max(int(center - support + 0.5), 0)  # int() truncates towards zero, as C++ casts do
        xsize = min(max(min(int(center + support + 0.5), in_size) - xmin, 0), taps)
        weights = [kernel((j + xmin - center + 0.5) * invscale) for j in range(xsize)]
        total = 0.0
        for w in weights:  # summed in order, as the C++ loop does
            total += w
        if total != 0.0:
            weights = [w / total for w in weights]
            largest = max([largest, *weights])
        first[i] = xmin
        real[i, :xsize] = weights
    precision = 0
    while precision < 22 and int(0.5 + largest * (1 << (precision + 1))) < (1 << 15):
        precision += 1
    scaled = real * (1 << precision)
    fixed = np.where(scaled < 0, np.trunc(scaled - 0.5), np.trunc(scaled + 0.5)).astype(np.int32)
    return first, fixed, precision


def _resample(image: np.ndarray, axis: int, out_size: int, interpolation: str) -> np.ndarray:
    first, weights, precision = axis_weights(image.shape[axis], out_size, interpolation)
    pixels = np.moveaxis(image, axis, 0).astype(np.int32)  # (in, other, C)
    acc = np.full((out_size, *pixels.shape[1:]), 1 << (precision - 1), dtype=np.int32)
    last = pixels.shape[0] - 1
    for k in range(weights.shape[1]):
        taps = pixels[np.minimum(first + k, last)]  # past an output pixel's own taps its weight is 0
        acc += taps * weights[:, k, None, None]
    out = np.clip(acc >> precision, 0, 255).astype(np.uint8)
    return np.moveaxis(out, 0, axis)


def resize_uint8(rgb: np.ndarray, height: int, width: int, interpolation: str) -> np.ndarray:
    """``rgb`` (H, W, C) uint8 resized to ``(height, width)``, antialiased, as torch's uint8 kernels do."""
    if width != rgb.shape[1]:
        rgb = _resample(rgb, 1, width, interpolation)
    if height != rgb.shape[0]:
        rgb = _resample(rgb, 0, height, interpolation)
    return rgb
