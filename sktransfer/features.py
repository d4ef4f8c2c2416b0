"""Frozen-backbone features: one backbone pass, then the head trains on the features."""

from __future__ import annotations

import torch
from skorch.utils import to_device
from torch.utils.data import DataLoader, default_collate

from .inputs import SampleDataset


def _as_features(row: torch.Tensor) -> dict:
    # The module's forward(features=...) skips the backbone.
    return {"features": row}


def extract_features(module, dataset, collate_fn, batch_size: int, device) -> torch.Tensor:
    """Run ``module.features`` over ``dataset`` once, in eval mode, batch by batch."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_fn)
    was_training = module.training
    module.eval()
    chunks = []
    try:
        with torch.inference_mode():
            for X, _ in loader:
                X = to_device(X, device)
                out = module.features(**X) if isinstance(X, dict) else module.features(X)
                chunks.append(out.float().cpu())
    finally:
        module.train(was_training)
    return torch.cat(chunks)


class FeatureAwareCollate:
    """Collate precomputed-feature samples by stacking, anything else with ``collate_fn``.

    The frozen path trains on features but predicts from raw inputs with the same net.
    """

    def __init__(self, collate_fn):
        self.collate_fn = collate_fn

    def __call__(self, batch):
        first = batch[0][0]
        if isinstance(first, dict) and "features" in first:
            return default_collate(batch)
        return self.collate_fn(batch)


def feature_dataset(features: torch.Tensor, targets: dict | None) -> SampleDataset:
    """A dataset whose samples feed ``TransferModule.forward(features=...)``."""
    return SampleDataset(features, _as_features, targets)
