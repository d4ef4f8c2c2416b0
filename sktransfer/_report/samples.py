"""Rows of ``X`` read back as the estimator reads them: decoded images, texts, or a short repr."""

from __future__ import annotations

import numpy as np


def _modality(estimator) -> str | None:
    spec = getattr(estimator, "spec_", None)
    return getattr(spec, "modality", None)


def _images(estimator, X, rows) -> list:
    """The chosen rows of X as HxWx3 uint8 arrays, decoded as the estimator reads them."""
    source = estimator.adapter_.check(X, estimator=estimator, reset=False)
    return [source[int(i)].permute(1, 2, 0).numpy() for i in rows]


def _samples_as_text(estimator, X, rows) -> list[str]:
    """The chosen rows of X, as text (texts as they are; other inputs as a short repr)."""
    if _modality(estimator) == "text":
        texts = estimator.adapter_.check(X, estimator=estimator, reset=False)
        return [texts[int(i)] for i in rows]
    if hasattr(X, "iloc"):
        return [repr(X.iloc[int(i)].to_dict())[:200] for i in rows]
    return [np.array2string(np.asarray(X[int(i)]), threshold=8, max_line_width=200)[:200] for i in rows]
