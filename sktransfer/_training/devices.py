"""The device a fit runs on: checked and resolved before anything is built."""

from __future__ import annotations

import torch

DEVICE_FORMS = "'auto', 'cpu', 'cuda', 'cuda:0' (or another GPU index), 'mps'"


# ------------------------------------------------------------------ device
def resolve_device(device) -> str:
    """``"auto"`` means CUDA when available, else the CPU.

    ``"cuda"`` without an index is torch's *current* CUDA device, among those
    ``CUDA_VISIBLE_DEVICES`` shows this process: a worker that
    ``dask_cuda.LocalCUDACluster`` started sees its own GPU first (index 0, current
    by default), and a thread that called ``torch.cuda.set_device`` gets that one. No
    index is pinned on purpose: a fitted estimator keeps ``device_ == "cuda"`` and,
    unpickled in another process, lands on that process's current GPU, which
    ``"cuda:3"`` would not do on a machine with fewer GPUs.
    """
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


def check_device(device) -> None:
    """Raise a ValueError for a device torch doesn't know or this machine doesn't have."""
    if isinstance(device, str) and device == "auto":
        return
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(
            f"device={device!r} is not a device torch knows. Use one of {DEVICE_FORMS}; 'auto' picks CUDA "
            "when available, else the CPU."
        ) from None
    if parsed.type == "cpu":
        return
    if parsed.type == "meta":
        raise ValueError("device='meta' holds no data and can't train. Use device='auto' or 'cpu'.")
    if parsed.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(
                f"device={device!r} but MPS (Apple GPU) is not available on this machine "
                "(torch.backends.mps.is_available() is False). Use device='auto' or 'cpu'."
            )
        return
    _check_indexed_backend(device, parsed)


def _check_indexed_backend(device, parsed: torch.device) -> None:
    """CUDA, XPU and the like: the backend must be available and the index present."""
    backend = getattr(torch, parsed.type, None)
    is_available = getattr(backend, "is_available", None)
    if is_available is None:  # a type without a torch submodule to ask (xla, hpu...): left to its plugin
        return
    name = parsed.type.upper()
    if not is_available():
        hint = " (this torch build has no CUDA support)" if parsed.type == "cuda" and torch.version.cuda is None else ""
        raise ValueError(
            f"device={device!r} but {name} is not available on this machine{hint}: "
            f"torch.{parsed.type}.is_available() is False. Use device='auto' (CUDA when available, else the CPU) "
            "or device='cpu'."
        )
    count = backend.device_count()
    if parsed.index is not None and parsed.index >= count:
        raise ValueError(
            f"device={device!r} but this machine has {count} {name} device(s), numbered 0 to {count - 1}. "
            f"Use device='{parsed.type}' or '{parsed.type}:<index>' with an index below {count}."
        )
