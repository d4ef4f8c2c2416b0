"""The plugin manager: built-in backbones first, then the ``sktransfer`` entry points.

Set ``SKTRANSFER_DISABLE_PLUGIN_AUTOLOAD=1`` to skip entry-point discovery (built-in
backbones stay available), as pytest does with ``PYTEST_DISABLE_PLUGIN_AUTOLOAD``.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import os
import warnings

import pluggy

from sktransfer import _caches, hookspecs

DISABLE_AUTOLOAD_ENV = "SKTRANSFER_DISABLE_PLUGIN_AUTOLOAD"

# Built-in backbones are ordinary plugins, registered exactly like third-party ones.
BUILTIN_PLUGINS = (
    "sktransfer.backbones.torchvision",
    "sktransfer.backbones.huggingface",
    "sktransfer.backbones.tabular",
)


def _autoload_disabled() -> bool:
    return os.environ.get(DISABLE_AUTOLOAD_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _block_broken_entry_points(pm: pluggy.PluginManager) -> None:
    """Import each entry point once; warn about and block the ones that fail.

    ``load_setuptools_entrypoints`` stops at the first plugin that fails to import,
    which would hide every plugin after it.  Importing here first (the module is
    then cached, so nothing is imported twice) lets one broken plugin be skipped.
    """
    for ep in importlib.metadata.entry_points(group=hookspecs.PROJECT_NAME):
        if pm.is_blocked(ep.name) or pm.get_plugin(ep.name) is not None:
            continue
        try:
            ep.load()
        except Exception as exc:
            dist = ep.dist.metadata["name"] if ep.dist is not None else "unknown distribution"
            warnings.warn(
                f"sktransfer plugin {ep.name!r} ({dist}, {ep.value}) failed to import and is skipped: "
                f"{exc!r}. Reinstall or uninstall {dist} to silence this warning.",
                RuntimeWarning,
                stacklevel=3,
            )
            pm.set_blocked(ep.name)


@functools.cache
def get_plugin_manager() -> pluggy.PluginManager:
    """Return the process-wide plugin manager, built on first use."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for module_name in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(module_name), name=module_name)
    if not _autoload_disabled():
        _block_broken_entry_points(pm)
        pm.load_setuptools_entrypoints(hookspecs.PROJECT_NAME)
    return pm


def reset_plugin_manager() -> None:
    """Forget the plugin manager so the next use rediscovers plugins (for tests)."""
    get_plugin_manager.cache_clear()


def _describe() -> str:
    if not get_plugin_manager.cache_info().currsize:
        return "the plugin manager (not built)"
    return f"the plugin manager, with {len(get_plugin_manager().get_plugins())} plugin(s)"


_caches.register("plugins", reset_plugin_manager, _describe)
