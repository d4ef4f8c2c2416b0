"""The command line's feature cache: a per-user directory of frozen-backbone features that
``fit``, ``predict``, ``evaluate`` and ``report`` share, so the backbone runs once per image
or text (for frozen backbones, ``--strategy head``, and the head probe before fine-tuning).

Where: ``--feature-cache DIR``, else ``$SKTRANSFER_CACHE/features``, else the user cache
directory (platformdirs' ``user_cache_dir("sktransfer")`` when platformdirs is installed;
otherwise ``$XDG_CACHE_HOME/sktransfer`` or ``~/.cache/sktransfer``, ``~/Library/Caches/sktransfer``
on macOS, ``%LOCALAPPDATA%\\sktransfer\\Cache`` on Windows: the same places). After each
command the oldest rows are dropped beyond ``SKTRANSFER_CACHE_MAX_MB`` (default 2048).
``sktransfer cache info`` shows it, ``sktransfer cache clear`` empties it.
"""

from __future__ import annotations

import os
import sys

DEFAULT_MAX_MB = 2048


def user_cache_dir() -> str:
    """sktransfer's per-user cache directory (not created here)."""
    if os.environ.get("SKTRANSFER_CACHE"):
        return os.environ["SKTRANSFER_CACHE"]
    try:
        from platformdirs import user_cache_dir as platform_cache_dir
    except ImportError:  # the same places platformdirs picks, for the three systems
        if sys.platform == "win32":
            base = os.environ.get("LOCALAPPDATA") or os.path.expanduser(r"~\AppData\Local")
            return os.path.join(base, "sktransfer", "Cache")
        if sys.platform == "darwin":
            return os.path.expanduser("~/Library/Caches/sktransfer")
        return os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "sktransfer")
    return platform_cache_dir("sktransfer")


def default_feature_cache() -> str:
    return os.path.join(user_cache_dir(), "features")


def max_bytes() -> int:
    value = os.environ.get("SKTRANSFER_CACHE_MAX_MB", str(DEFAULT_MAX_MB))
    try:
        megabytes = float(value)
    except ValueError:
        raise ValueError(f"SKTRANSFER_CACHE_MAX_MB={value!r} is not a number of megabytes, e.g. 2048.") from None
    return int(megabytes * 2**20)


def add_feature_cache_argument(parser) -> None:
    parser.add_argument(
        "--feature-cache", metavar="DIR",
        help="directory of cached backbone features, reused across commands (default: $SKTRANSFER_CACHE/features "
             "or the user cache directory; 'none' to cache nothing; see `sktransfer cache info`)",
    )


def feature_cache(args):
    """The estimators' ``feature_cache`` value for ``args.feature_cache``."""
    value = getattr(args, "feature_cache", None)
    if value is not None and value.lower() == "none":
        return None
    return value or default_feature_cache()


def trim(cache) -> None:
    """Keep the disk cache under its size limit once a command is done."""
    if cache is None:
        return
    from sktransfer._features.stores import DiskFeatureStore

    DiskFeatureStore(cache).trim(max_bytes())


def add_cache_arguments(parser) -> None:
    parser.add_argument("action", choices=["info", "clear"], help="info: where and how big; clear: delete its rows")
    add_feature_cache_argument(parser)


def cmd_cache(args) -> int:
    from sktransfer._features.stores import FEATURES_FILE, DiskFeatureStore

    path = feature_cache(args)
    if path is None:
        raise ValueError("--feature-cache none caches nothing: there is nothing to show or clear.")
    if not os.path.isfile(os.path.join(path, FEATURES_FILE)):
        print(f"feature cache: {path} (empty; nothing cached yet)")
        return 0
    store = DiskFeatureStore(path)
    if args.action == "clear":
        rows = len(store)
        store.clear()
        store.trim(0)  # gives the disk space back
        print(f"cleared {rows} feature row(s) from {path}")
        return 0
    size = os.path.getsize(store.file) / 2**20
    print(f"feature cache: {path}\nrows: {len(store)}\nsize: {size:.1f} MiB (limit {max_bytes() / 2**20:.0f} MiB, "
          "SKTRANSFER_CACHE_MAX_MB)")
    return 0
