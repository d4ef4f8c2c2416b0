"""Frozen-backbone features: one backbone pass, then the head trains on the features."""

from __future__ import annotations

import numpy as np
import torch
from skorch.utils import to_device
from torch.utils.data import DataLoader, Dataset, Subset, default_collate

from sktransfer._features.progress import bar
from sktransfer._features.protocol import check_found_rows, check_row_widths
from sktransfer._features.stores import get_store
from sktransfer._hashing import digest
from sktransfer._nn.calls import _PreCollated, call_args
from sktransfer._spec.stages import FINAL_FEATURES


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


def extract_features(module, dataset, collate_fn, batch_size: int, device, fast=None, stages=None):
    """Run the frozen backbone over ``dataset`` once, in eval mode, batch by batch.

    Returns ``module.features`` as one tensor; with ``stages`` (a list of names), a
    dict of each stage's pooled output instead, all from the same pass.
    """
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
    progress = bar("extracting features", len(dataset))
    try:
        # fork_rng: iterating a DataLoader draws a seed from the global RNG; features
        # that come from the cache must leave training with the same random stream.
        with torch.random.fork_rng(devices=[]), torch.inference_mode(), autocast:
            for X, _ in loader:
                args, kwargs = call_args(to_device(X, device))
                if stages is None:
                    chunks.append(module.features(*args, **kwargs).float().cpu())
                else:
                    chunks.append([t.float().cpu() for t in module.pooled_stages(*args, names=stages, **kwargs)])
                progress.update(len(chunks[-1] if stages is None else chunks[-1][0]))
    finally:
        progress.close()
        module.train(was_training)
    if stages is None:
        return torch.cat(chunks)
    return {name: torch.cat([chunk[k] for chunk in chunks]) for k, name in enumerate(stages)}


def inference_subset(adapter, samples, dataset, indices=None):
    """``dataset`` at ``indices`` (all when None), in the adapter's inference order.

    Returns the dataset to run and the permutation that puts its outputs back in the
    order of ``indices``, or None when they already are in that order.
    """
    indices = range(len(samples)) if indices is None else indices
    order = adapter.inference_order(samples, indices) if len(indices) > 1 else None
    if order is None:
        return (dataset if len(indices) == len(samples) else Subset(dataset, list(indices))), None
    return Subset(dataset, [indices[j] for j in order]), np.argsort(order)


def extract_in_order(module, adapter, samples, batch_size: int, device, fast=None, stages=None, indices=None):
    """:func:`extract_features` of ``samples`` at ``indices`` (all when None), run in the
    adapter's inference order (texts by length), rows returned in the order of ``indices``."""
    dataset, restore = inference_subset(adapter, samples, adapter.dataset(samples), indices)
    features = extract_features(module, dataset, adapter.collate_fn, batch_size, device, fast, stages)
    if restore is None:
        return features
    restore = torch.from_numpy(restore)
    return features[restore] if stages is None else {name: rows[restore] for name, rows in features.items()}


def _stage_key(sample_key: bytes, stage: str | None) -> bytes:
    # The backbone's own output keeps the plain sample key, whether asked as layers=None or
    # among stages ("final"); a stage adds its name.
    return sample_key if stage in (None, FINAL_FEATURES) else digest(sample_key, stage.encode())


def cached_features(module, adapter, samples, batch_size: int, device, store, fingerprint: bytes, fast=None,
                    all_stages=None):
    """Features for ``samples``: rows in ``store`` are reused, only new rows run the backbone.

    With chosen stages (``module.stages``), rows are stored per stage, and a missing row
    is computed for every stage in ``all_stages`` in the same pass: a search over
    ``layers`` then runs the backbone about once.
    """
    wanted = [None] if module.stages is None else module.stages
    computed = [None] if module.stages is None else list(dict.fromkeys([*(all_stages or ()), *module.stages]))
    sample_keys = adapter.sample_keys(fingerprint, samples)
    keys = {stage: [_stage_key(k, stage) for k in sample_keys] for stage in wanted}
    asked = list(dict.fromkeys(k for stage in wanted for k in keys[stage]))  # each key once
    found = store.get_many(asked)
    check_found_rows(store, found, asked)  # a user's store object may return anything
    found = dict(found)  # never add to the store's own dict
    # A sample repeated in X (the same text twice) runs the backbone once.
    first = {}
    for i, key in enumerate(sample_keys):
        first.setdefault(key, i)
    missing = [i for i in first.values() if any(keys[stage][i] not in found for stage in wanted)]
    if missing:
        if module.stages is None:
            by_stage = {None: extract_in_order(module, adapter, samples, batch_size, device, fast, indices=missing)}
        else:
            by_stage = extract_in_order(module, adapter, samples, batch_size, device, fast, computed, indices=missing)
        new_rows = {
            _stage_key(sample_keys[i], stage): rows[n].numpy()
            for stage, rows in by_stage.items()
            for n, i in enumerate(missing)
        }
        store.put_many(new_rows)
        found.update(new_rows)
    head = getattr(module, "head", None)
    check_row_widths(store, {stage: [found[k] for k in keys[stage]] for stage in wanted},
                     getattr(head, "in_features", None))
    rows = [np.concatenate([found[keys[stage][i]] for stage in wanted]) for i in range(len(sample_keys))]
    return torch.from_numpy(np.stack(rows).astype(np.float32, copy=False))


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


def frozen_features(module, spec, adapter, X_checked, *, fingerprint, batch_size: int, device, fast, feature_cache):
    """A frozen backbone's features for ``X_checked``: from the shared store where the
    branch is keyed there (rows seen before are reused, new ones computed and added),
    else computed. ``module`` must already be on ``device``."""
    store = get_store(feature_cache) if fingerprint is not None else None
    if store is None:
        return extract_in_order(module, adapter, X_checked, batch_size, device, fast)
    all_stages = spec.get_stages() if module.stages is not None else None
    return cached_features(module, adapter, X_checked, batch_size, device, store, fingerprint, fast, all_stages)
