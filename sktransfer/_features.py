"""Frozen-backbone features: one backbone pass, then the head trains on the features."""

from __future__ import annotations

import numpy as np
import torch
from skorch.utils import to_device
from torch.utils.data import DataLoader, Dataset, default_collate



class FeatureDataset(Dataset):
    """Precomputed features and their targets, fetched a whole batch at a time.

    ``__getitems__`` lets the DataLoader slice tensors per batch instead of
    collating row by row: training a head on features is then dominated by the
    head's own arithmetic, not by Python overhead.
    """

    def __init__(self, features: torch.Tensor, targets: dict | None):
        self.features = features
        self.targets = None if targets is None else {k: torch.as_tensor(v) for k, v in targets.items()}

    def __len__(self):
        return len(self.features)

    def _batch(self, index):
        # The module's forward(features=...) skips the backbone.
        X = {"features": self.features[index]}
        if self.targets is None:
            return X, torch.zeros(len(X["features"]) if X["features"].dim() > 1 else 1)
        return X, {k: v[index] for k, v in self.targets.items()}

    def __getitem__(self, i):
        return self._batch(i)

    def __getitems__(self, indices):
        return _PreCollated(self._batch(torch.as_tensor(indices)))


class _PreCollated(tuple):
    """A batch that ``FeatureDataset.__getitems__`` already collated."""


def extract_features(module, dataset, collate_fn, batch_size: int, device, fast=None) -> torch.Tensor:
    """Run ``module.features`` over ``dataset`` once, in eval mode, batch by batch."""
    import contextlib

    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        collate_fn=collate_fn,
        num_workers=fast.num_workers if fast else 0,
        pin_memory=fast.pin_memory if fast else False,
    )
    autocast = (
        torch.autocast(device_type=torch.device(device).type, dtype=fast.amp_dtype)
        if fast is not None and fast.amp_dtype is not None
        else contextlib.nullcontext()
    )
    was_training = module.training
    module.eval()
    chunks = []
    try:
        # fork_rng: iterating a DataLoader draws a seed from the global RNG; features
        # that come from the cache must leave training with the same random stream.
        with torch.random.fork_rng(devices=[]), torch.inference_mode(), autocast:
            for X, _ in loader:
                X = to_device(X, device)
                out = module.features(**X) if isinstance(X, dict) else module.features(X)
                chunks.append(out.float().cpu())
    finally:
        module.train(was_training)
    return torch.cat(chunks)


def cached_features(module, adapter, samples, batch_size: int, device, store, fingerprint: bytes, fast=None):
    """Features for ``samples``: rows in ``store`` are reused, only new rows run the backbone."""
    from torch.utils.data import Subset

    from ._feature_cache import sample_keys

    keys = sample_keys(fingerprint, samples, adapter.modality)
    found = store.get_many(keys)
    missing = [i for i, key in enumerate(keys) if key not in found]
    if missing:
        dataset = adapter.dataset(samples)
        subset = dataset if len(missing) == len(keys) else Subset(dataset, missing)
        computed = extract_features(module, subset, adapter.collate_fn, batch_size, device, fast).numpy()
        new_rows = {keys[i]: row for i, row in zip(missing, computed)}
        store.put_many(new_rows)
        found.update(new_rows)
    return torch.from_numpy(np.stack([found[key] for key in keys]).astype(np.float32, copy=False))


class FeatureAwareCollate:
    """Collate precomputed-feature samples by stacking, anything else with ``collate_fn``.

    The frozen path trains on features but predicts from raw inputs with the same net.
    """

    def __init__(self, collate_fn):
        self.collate_fn = collate_fn

    def __call__(self, batch):
        if isinstance(batch, _PreCollated):
            return tuple(batch)
        first = batch[0][0]
        if isinstance(first, dict) and "features" in first:
            return default_collate(batch)
        return self.collate_fn(batch)


def feature_dataset(features: torch.Tensor, targets: dict | None) -> FeatureDataset:
    """A dataset whose batches feed ``TransferModule.forward(features=...)``."""
    return FeatureDataset(features, targets)
