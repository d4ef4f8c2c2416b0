"""Every process-wide cache of sktransfer, listed and cleared in one place.

Each cache registers itself, where it is defined, with :func:`register`; users see
:func:`clear_caches` (``sktransfer.clear_caches``) and :func:`list_caches`. A cache
whose module was never imported holds nothing and is not listed.

This module is a leaf: it imports nothing from sktransfer, so any module of the
package may register with it at import time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["clear_caches", "list_caches", "register"]


@dataclass(frozen=True)
class _Cache:
    clear: Callable[[], object]
    describe: str | Callable[[], str]

    def description(self) -> str:
        return str(self.describe() if callable(self.describe) else self.describe)


_lock = threading.RLock()
_caches: dict[str, _Cache] = {}

#: The package's own caches, by the name their modules register. ``import sktransfer``
#: loads those modules only when a name needs them, so one of these may be unregistered
#: yet: it holds nothing, and clearing it by name is no error.
PACKAGE_CACHES = ("backbones", "feature_widths", "features", "plugins", "registry")


def register(name: str, clear_fn: Callable[[], object], describe: str | Callable[[], str]) -> None:
    """Register a process-wide cache under ``name``.

    Parameters
    ----------
    name : str
        Short, unique name, e.g. ``"backbones"``; what :func:`clear_caches` takes.
    clear_fn : callable
        ``clear_fn()`` empties the cache (thread-safe; its return value is ignored).
    describe : str or callable
        What the cache holds, or ``describe() -> str`` saying so with its current size.

    Registering a name again replaces the earlier entry (a reloaded module).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"A cache name must be a non-empty str, got {name!r}.")
    if not callable(clear_fn):
        raise TypeError(f"clear_fn of cache {name!r} must be callable, got {clear_fn!r}.")
    if not (isinstance(describe, str) or callable(describe)):
        raise TypeError(f"describe of cache {name!r} must be a str or a callable, got {describe!r}.")
    with _lock:
        _caches[name] = _Cache(clear_fn, describe)


def list_caches() -> dict[str, str]:
    """The registered caches: ``name -> what it holds now``, in registration order."""
    with _lock:
        caches = dict(_caches)
    return {name: cache.description() for name, cache in caches.items()}


def clear_caches(names: str | Iterable[str] | None = None) -> list[str]:
    """Empty sktransfer's process-wide caches, all of them or those named.

    What is kept per process: pretrained backbones built once (``"backbones"``), the
    ``feature_cache="memory"`` rows (``"features"``), the plugin manager
    (``"plugins"``), the backbone specs and names it gave (``"registry"``), and any
    other cache a module of the package registered. Clearing frees their memory and
    makes the next use rebuild them (plugins are discovered again); fitted
    estimators keep what they hold. On-disk feature stores are not touched.

    Parameters
    ----------
    names : str, iterable of str or None
        Caches to clear; ``None`` clears every one.

    Returns
    -------
    list of str
        The names of the caches cleared.
    """
    with _lock:
        caches = dict(_caches)
    if names is None:
        chosen = list(caches)
    else:
        chosen = [names] if isinstance(names, str) else list(names)
        unknown = [name for name in chosen if name not in caches and name not in PACKAGE_CACHES]
        if unknown:
            raise ValueError(f"Unknown cache(s) {unknown}; the caches are {sorted({*caches, *PACKAGE_CACHES})}.")
    for name in chosen:
        if name in caches:  # else its module was never imported: nothing to clear
            caches[name].clear()
    return chosen
