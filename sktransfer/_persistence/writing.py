"""Writing a model directory: to a temporary directory first, then swapped in, so that
a failed save (a read-only directory, a full disk) leaves the model that was there intact."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from sktransfer._persistence.saved import CONFIG, INIT, WEIGHTS


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _canonical(config: dict) -> bytes:
    return json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _config_checksum(config: dict) -> str:
    return hashlib.sha256(_canonical({k: v for k, v in config.items() if k != "checksum"})).hexdigest()


def _unwritable(where: Path, exc: BaseException) -> OSError:
    """A clear OSError (PermissionError where the cause was one) for a path save_pretrained can't write."""
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    message = (f"save_pretrained can't write {where}: {reason}. Save to a directory you can write to, or make this "
               "one writable; the model that was there (if any) is unchanged.")
    return PermissionError(message) if isinstance(exc, PermissionError) else OSError(message)


def _staging(path: Path) -> Path:
    """A fresh directory to write the model to first: next to ``path``, or inside it
    where its parent can't be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".saving", dir=path.parent))
    except OSError as exc:
        if not path.is_dir():
            raise _unwritable(path.parent, exc) from exc
    try:
        return Path(tempfile.mkdtemp(prefix=".saving-", dir=path))
    except OSError as exc:
        raise _unwritable(path, exc) from exc


def _swap(staging: Path, path: Path) -> None:
    """Put the staged model at ``path``: the whole directory where there was none, else
    file by file (and the ``init=`` model's directory), config.json last (it marks a
    complete model); a failure puts the old files back."""
    if not path.exists():
        try:
            os.rename(staging, path)
            return
        except OSError as exc:
            raise _unwritable(path, exc) from exc
    old, old_init = staging / (WEIGHTS + ".old"), staging / (INIT + ".old")
    undo = []
    try:
        if (path / WEIGHTS).exists():
            os.replace(path / WEIGHTS, old)
            undo.append((old, path / WEIGHTS))
        os.replace(staging / WEIGHTS, path / WEIGHTS)
        if (path / INIT / CONFIG).is_file():  # the old model's init= model: replaced, or no longer used
            os.replace(path / INIT, old_init)
            undo.append((old_init, path / INIT))
        if (staging / INIT).is_dir():
            os.replace(staging / INIT, path / INIT)
            undo.append((path / INIT, staging / INIT))
        os.replace(staging / CONFIG, path / CONFIG)
    except OSError as exc:
        for source, destination in reversed(undo):
            os.replace(source, destination)
        raise _unwritable(path, exc) from exc


def _write(path, config: dict, tensors: dict, overwrite: bool, write_init=None) -> Path:
    """Write ``model.safetensors`` and ``config.json`` (with the checksums) to ``path``:
    to a temporary directory first, then swapped in, so that a failed save leaves the
    model that was there intact. ``write_init(directory)`` writes the ``init=`` model
    into the staged directory and returns the config's record of it (or None)."""
    from safetensors.torch import save_file

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} exists and is not a directory; save_pretrained writes a directory.")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise FileExistsError(f"{path} already holds files; pass overwrite=True to replace the model there.")
    if (path / INIT).exists() and not (path / INIT / CONFIG).is_file():
        raise FileExistsError(f"{path / INIT} exists and is not a model directory; save_pretrained keeps a model's "
                              "init= model there. Move it away, or save to another directory.")
    staging = _staging(path)
    try:
        init = None if write_init is None else write_init(staging)
        if init is not None:
            config["init"] = init
        try:
            save_file(tensors, str(staging / WEIGHTS), metadata={"format": "pt"})
            config["files"] = {WEIGHTS: {"sha256": _sha256(staging / WEIGHTS),
                                         "bytes": (staging / WEIGHTS).stat().st_size}}
            config["checksum"] = _config_checksum(config)
            (staging / CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True, allow_nan=False),
                                          encoding="utf-8")
        except Exception as exc:  # safetensors raises its own SafetensorError for I/O failures
            raise _unwritable(staging, exc) from exc
        _swap(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path
