"""Pretrained backbones built once per process, copied for each fit.

A grid search over head settings fits the same pretrained backbone dozens of times;
reading its weights from disk and hashing them (for the feature cache) every time
would cost more than training the heads.  Building is deterministic when weights
are pretrained, so the pristine module is kept (a few of them, least recently used
first out) and each fit gets a deep copy.  Random initialisations depend on the
seed and are always built afresh.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict

import torch

from ._feature_cache import fingerprint_module

MAX_BACKBONES = 4  # pristine and frozen-shared copies of two backbones

_lock = threading.Lock()
_built: OrderedDict = OrderedDict()


def _kept(key, make):
    with _lock:
        entry = _built.get(key)
        if entry is not None:
            _built.move_to_end(key)
            return entry
    entry = make()
    with _lock:
        _built[key] = entry
        while len(_built) > MAX_BACKBONES:
            _built.popitem(last=False)
    return entry


def build_backbone(spec, pretrained: bool, frozen_on=None):
    """``(module, weights fingerprint)`` for ``spec``.

    The module is the caller's to train, except with ``frozen_on=device``: then it is
    one module shared, read-only, by every frozen fit on that device in this process
    (a deep copy of a large backbone costs more than training a head on its features).
    """
    if not pretrained:
        return spec.build(pretrained=False), None

    def pristine():
        # Building draws from the global RNG (torchvision and timm initialise every layer
        # randomly, then load the weights), and the fit has seeded it: a fit that builds
        # the backbone (the first in a process) would otherwise start its head from other
        # numbers than one that finds it built. Pretrained weights don't need the RNG.
        with torch.random.fork_rng(devices=[]):
            module = spec.build(pretrained=True)
        return module, fingerprint_module(module)

    module, fingerprint = _kept(spec, pristine)
    if frozen_on is None:
        return copy.deepcopy(module), fingerprint
    shared, _ = _kept((spec, str(frozen_on)), lambda: (copy.deepcopy(module).requires_grad_(False).eval(), None))
    return shared, fingerprint


def clear() -> None:
    """Forget every kept backbone (frees their memory)."""
    with _lock:
        _built.clear()
