"""Whether ``sktransfer.load`` is rebuilding a model file right now.

A model file never reaches a pickle: while one is read, a backbone that loads
pretrained weights from files (a Hugging Face directory the file names, say) must read
safetensors only and refuse anything else. Plugins ask :func:`model_file_being_read`.
"""

from __future__ import annotations

import contextlib
import contextvars
from pathlib import Path

_READING: contextvars.ContextVar = contextvars.ContextVar("sktransfer_model_file", default=None)


@contextlib.contextmanager
def reading_model_file(config_path: Path):
    """The block in which ``config_path``'s model is rebuilt."""
    token = _READING.set(Path(config_path))
    try:
        yield
    finally:
        _READING.reset(token)


def model_file_being_read() -> Path | None:
    """The ``config.json`` of the model file being loaded, or None outside ``sktransfer.load``."""
    return _READING.get()
