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
import weakref
from collections import OrderedDict
from dataclasses import dataclass

import torch

from sktransfer import _caches
from sktransfer._hashing import fingerprint_module
from sktransfer.exceptions import WeightsUnavailableError

MAX_BACKBONES = 4  # pristine and frozen-shared copies of two backbones

_lock = threading.Lock()
_built: OrderedDict = OrderedDict()
# The shared frozen copies handed out, each with what names it in a pickle. Weak: a
# copy evicted from ``_built`` lives as long as the fitted models that use it.
_shared: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class SharedBackboneRef:
    """What a pickle holds in place of a shared frozen pretrained backbone: its spec,
    the hash of its weights and the device it was shared on (a few hundred bytes
    instead of the weights, so a fitted frozen model travels to a search worker small)."""

    spec: object
    fingerprint: bytes
    device: str

    def resolve(self, device: str | None = None):
        """This process's shared copy, built from the local install, which must hash as
        the pickled one did."""
        module, fingerprint = build_backbone(self.spec, True, device or self.device)
        if fingerprint != self.fingerprint:
            raise WeightsUnavailableError(
                f"This pickled model was fitted on the pretrained weights of {self.spec.name!r} with fingerprint "
                f"{self.fingerprint.hex()}, but the weights installed here hash to {fingerprint.hex()} (plugin "
                f"{self.spec.plugin or '?'}, distribution {self.spec.distribution or '?'}). Install the version "
                "that provides the original weights, or refit the model here."
            )
        return module


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
    with _lock:
        _shared[shared] = SharedBackboneRef(spec, fingerprint, str(frozen_on))
    return shared, fingerprint


def shared_reference(module) -> SharedBackboneRef | None:
    """The reference of ``module`` if it is a shared frozen copy from :func:`build_backbone`."""
    if module is None:
        return None
    with _lock:
        return _shared.get(module)


def clear() -> None:
    """Forget every kept backbone (frees their memory)."""
    with _lock:
        _built.clear()


def _describe() -> str:
    with _lock:
        n = len(_built)
    return f"{n} pretrained backbone(s) built once in this process (pristine and frozen-shared copies)"


# Shared copies already handed out stay valid: the fitted models that use them keep them.
_caches.register("backbones", clear, _describe)
