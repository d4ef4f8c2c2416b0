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
import signal
import threading
from dataclasses import dataclass

import numpy as np
import torch
from skorch import NeuralNet

from sktransfer._inputs import adapter_class
from sktransfer._nn.backbone_cache import shared_reference

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class FastPath:
    """Device-dependent training settings, decided once per fit."""

    amp_dtype: torch.dtype | None
    grad_scaler: bool
    channels_last: bool
    num_workers: int
    pin_memory: bool


def draw_seed(random_state) -> int | None:
    """The torch seed of a fit from the estimator's ``random_state`` (None: unseeded)."""
    if random_state is None:
        return None
    from sklearn.utils import check_random_state

    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


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


class FitInterrupted(BaseException):
    """Ctrl-C during training, carried past skorch (which would swallow a KeyboardInterrupt).

    Not a KeyboardInterrupt subclass on purpose: skorch's ``partial_fit`` catches those
    and returns a half-trained net as if training had finished.
    """

    def __init__(self, epochs_done: int, max_epochs: int):
        super().__init__(epochs_done, max_epochs)
        self.epochs_done, self.max_epochs = epochs_done, max_epochs


class _SigintRecorder:
    """Notes whether Ctrl-C (SIGINT) arrived, then interrupts as before.

    skorch callbacks stop training by raising KeyboardInterrupt themselves (EarlyStopping
    does); only a KeyboardInterrupt that follows a real SIGINT is the user's Ctrl-C.
    Signal handlers can only be set from the main thread, which is also the only
    thread Python delivers signals to; elsewhere this records nothing.
    """

    def __init__(self):
        self.fired = False
        self._previous = None

    def _handle(self, signum, frame):
        self.fired = True
        if callable(self._previous):
            self._previous(signum, frame)
        elif self._previous != signal.SIG_IGN:
            raise KeyboardInterrupt

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


def completed_epochs(history) -> int:
    """Epochs that ran to their end (skorch records ``dur`` last, in ``on_epoch_end``)."""
    return sum("dur" in row for row in history)


def forward_outputs(net, dataset, desc: str | None = "predicting") -> torch.Tensor:
    """``net.forward(dataset, training=False, device="cpu")``, under a bar named ``desc``
    (counted in samples) in a verbose call; ``desc=None``: no bar (a head on features is quick)."""
    if desc is None:
        return net.forward(dataset, training=False, device="cpu")
    from sktransfer._features.progress import bar

    chunks = []
    with bar(desc, len(dataset)) as progress:
        for chunk in net.forward_iter(dataset, training=False, device="cpu"):
            chunks.append(chunk)
            progress.update(len(chunk))
    return torch.cat(chunks)


def release_callbacks(net) -> None:
    """Let callbacks that hold a resource (the fit's progress bar) let go of it: after an
    error skorch calls no ``on_train_end``."""
    for _, callback in getattr(net, "callbacks_", []):
        release = getattr(callback, "release", None)
        if callable(release):
            release()


class TransferNet(NeuralNet):
    """skorch NeuralNet with autocast, an optional GradScaler, inference_mode, and a
    Ctrl-C that stops the fit instead of ending it early as if it had succeeded."""

    def __init__(self, *args, amp_dtype=None, grad_scaler=False, head_l2=None, trainable_only=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.amp_dtype = amp_dtype
        self.grad_scaler = grad_scaler
        # A head solved on frozen features: the training loss gets the L2 penalty
        # head_l2 / n * ||W||^2 (LogisticRegression's and Ridge's objective divided by n),
        # and only trainable parameters go to the (full-batch L-BFGS) optimizer.
        self.head_l2 = head_l2
        self.trainable_only = trainable_only

    def get_loss(self, y_pred, y_true, X=None, training=False):
        loss = super().get_loss(y_pred, y_true, X=X, training=training)
        head_l2 = getattr(self, "head_l2", None)  # nets pickled before the converged head lack it
        if training and head_l2:
            weight = getattr(self.module_, "_orig_mod", self.module_).head.weight
            loss = loss + head_l2 / len(y_true["weight"]) * weight.float().pow(2).sum()
        return loss

    def predict(self, X):
        """Encoded predictions, as a scikit-learn scorer reads them (``EpochScoring("accuracy")``):
        the class index of a softmax head, 0/1 per label of a multi-label one, else the raw
        (standardised) outputs. The estimators' ``predict`` decodes them to labels and units."""
        out = self.predict_proba(X)
        kind = getattr(getattr(self, "criterion_", None), "kind", None)
        if kind == "cross_entropy":
            return out.argmax(axis=1)
        if kind == "binary_cross_entropy":
            return (out > 0).astype(int)
        return out

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=torch.device(self.device).type, dtype=self.amp_dtype)

    def initialize(self):
        super().initialize()
        device_type = torch.device(self.device).type
        self.scaler_ = torch.amp.GradScaler(device_type) if self.grad_scaler else None
        return self

    # The module given at construction is module_ itself (our estimators build it), and
    # skorch pickles module_ in a buffer of its own: pickling ``module`` as well stored
    # every weight twice. It is restored from module_ on unpickling.
    def __getstate__(self):
        shared = self.__dict__.get("module") is self.__dict__.get("module_")
        state = super().__getstate__()
        if shared:
            state["module"] = None
        return state

    def __setstate__(self, state):
        shared = state.get("module") is None
        super().__setstate__(state)
        if shared and hasattr(self, "module_"):
            self.module = self.module_

    def get_all_learnable_params(self):
        # A shared frozen pretrained backbone never trains. Left out of the optimizer, it
        # also stays out of the optimizer's pickle, which would otherwise carry all its
        # weights (the module's own pickle only names it).
        shared = {
            id(parameter)
            for module in self.module_.modules()
            if shared_reference(module) is not None
            for parameter in module.parameters()
        }
        trainable_only = getattr(self, "trainable_only", False)
        for name, parameter in super().get_all_learnable_params():
            if id(parameter) not in shared and (parameter.requires_grad or not trainable_only):
                yield name, parameter

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        with _SigintRecorder() as sigint:
            try:
                return super().fit_loop(X, y, epochs, **fit_params)
            except KeyboardInterrupt as exc:
                if sigint.fired:
                    release_callbacks(self)
                    raise FitInterrupted(completed_epochs(self.history), self.max_epochs) from exc
                raise  # a callback's request to stop (EarlyStopping): skorch ends the fit normally
            except BaseException:
                release_callbacks(self)
                raise

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
