"""The skorch net our estimators compose, with the GPU fast path.

``TransferNet`` is a small :class:`skorch.NeuralNet` subclass, used internally (the
estimators are not NeuralNets: they hold one as ``net_``).  It adds what skorch
leaves to the user: mixed precision (bf16, or fp16 with a GradScaler) and
``torch.inference_mode`` for prediction.
"""

from __future__ import annotations

import contextlib
import gc
import os
from dataclasses import dataclass

import torch
from skorch import NeuralNet

from ._adapters import adapter_class

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class FastPath:
    """Device-dependent training settings, decided once per fit."""

    amp_dtype: torch.dtype | None
    grad_scaler: bool
    channels_last: bool
    num_workers: int
    pin_memory: bool


def fast_path(device: str, precision: str, modality: str, bf16_supported: bool | None = None) -> FastPath:
    """Choose the fast-path settings for ``device``.

    On CUDA ``precision="auto"`` means bf16 where the GPU supports it and otherwise fp16
    with a GradScaler; convolutional image inputs go channels_last, and batches are
    prepared by DataLoader workers into pinned memory.  On the CPU, ``"auto"`` is fp32.
    """
    cuda = str(device).startswith("cuda")
    if bf16_supported is None:
        bf16_supported = cuda and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if precision == "auto":
        precision = ("bf16" if bf16_supported else "fp16") if cuda else "fp32"
    amp_dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    pixels = adapter_class(modality).pixel_batches  # image batches: decoding is worth workers
    workers = min(8, os.cpu_count() or 1) if cuda and pixels else 0
    return FastPath(
        amp_dtype=amp_dtype,
        grad_scaler=precision == "fp16",
        channels_last=cuda and pixels,
        num_workers=workers,
        pin_memory=cuda,
    )


def release_accelerator_memory(device) -> None:
    """Free cached GPU memory left by earlier fits (a search fits many candidates)."""
    if str(device).startswith("cuda") and torch.cuda.is_available():
        gc.collect()
        torch.cuda.empty_cache()


class TransferNet(NeuralNet):
    """skorch NeuralNet with autocast, an optional GradScaler and inference_mode."""

    def __init__(self, *args, amp_dtype=None, grad_scaler=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.amp_dtype = amp_dtype
        self.grad_scaler = grad_scaler

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=torch.device(self.device).type, dtype=self.amp_dtype)

    def initialize(self):
        super().initialize()
        device_type = torch.device(self.device).type
        self.scaler_ = torch.amp.GradScaler(device_type) if self.grad_scaler else None
        return self

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        Xi, yi = batch
        with self._autocast():
            y_pred = self.infer(Xi, **fit_params)
            loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        (self.scaler_.scale(loss) if self.scaler_ is not None else loss).backward()
        return {"loss": loss, "y_pred": y_pred}

    def _step_optimizer(self, step_fn):
        if self.scaler_ is None:
            return super()._step_optimizer(step_fn)
        step_fn()  # forward and scaled backward
        for name in self._optimizers:
            self.scaler_.step(getattr(self, name + "_"))
        self.scaler_.update()

    def evaluation_step(self, batch, training=False):
        self.check_is_fitted()
        Xi, _ = batch
        # inference_mode for prediction: no autograd bookkeeping at all.
        grad_context = torch.enable_grad() if training else torch.inference_mode()
        with grad_context, self._autocast():
            self._set_training(training)
            return self.infer(Xi).float()
