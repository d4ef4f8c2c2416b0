"""How a collated batch is passed to a backbone."""

from __future__ import annotations


class _PreCollated(tuple):
    """A batch that ``FeatureDataset.__getitems__`` already collated."""


def call_args(X) -> tuple[tuple, dict]:
    """A collated batch as the backbone's ``(args, kwargs)``: tokenizer dicts are keywords."""
    return ((), X) if isinstance(X, dict) else ((X,), {})
