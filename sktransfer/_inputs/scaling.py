"""Standardisation that can't overflow: scikit-learn's StandardScaler on any finite float64.

Squaring values above ~1e154 overflows the scaler's variance. Such columns are first
divided by a power of two, which is exact, so ordinary data standardises bit for bit as
with a plain StandardScaler, and any finite value up to 1.7e308 works.
"""

from __future__ import annotations

import numpy as np
from sklearn.preprocessing import StandardScaler


def fit_scaler(values: np.ndarray) -> tuple[StandardScaler, np.ndarray | None]:
    """A StandardScaler fitted to ``values``, and the power-of-two exponents its columns
    were divided by first (None where a plain fit didn't overflow)."""
    with np.errstate(over="ignore", invalid="ignore"):
        scaler = StandardScaler().fit(values)
        fine = np.isfinite(scaler.var_).all() and np.isfinite(scaler.transform(values)).all()
    if fine:
        return scaler, None
    _, exponent = np.frexp(np.abs(values).max(axis=0))
    return StandardScaler().fit(np.ldexp(values, -exponent)), exponent


def transform(scaler: StandardScaler, exponent: np.ndarray | None, values: np.ndarray) -> np.ndarray:
    """``values`` standardised as ``fit_scaler`` fitted them (inf where they overflow)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return scaler.transform(values if exponent is None else np.ldexp(values, -exponent))


def statistics(scaler: StandardScaler, exponent: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean, scale, constant)`` in the values' own units; ``constant`` marks the columns
    StandardScaler gives scale 1 because their variance is rounding noise."""
    constant = (scaler.scale_ == 1.0) & (scaler.var_ != 1.0)
    if exponent is None:
        return scaler.mean_, scaler.scale_, constant
    with np.errstate(over="ignore"):
        return np.ldexp(scaler.mean_, exponent), np.where(constant, 1.0, np.ldexp(scaler.scale_, exponent)), constant
