"""Data-parallel training through Hugging Face Accelerate (``accelerator=``).

The estimator's net becomes skorch's :class:`~skorch.hf.AccelerateMixin` on top of
:class:`~sktransfer._training.net.TransferNet`: Accelerate places the module, wraps it for
data parallelism (DDP), shards the batches and owns mixed precision.  What this
module adds:

* the per-batch losses each process records are merged across processes, so every
  process keeps the same history (and EarlyStopping decides alike everywhere);
* the module is unwrapped after the callbacks' ``on_train_end`` (EarlyStopping's
  ``load_best`` loads weights saved from the wrapped module), and from then on the
  net predicts locally, like a plain net: ``predict`` is no collective operation, so
  one process alone may call it (the main process saving a report, say);
* it pickles as a plain TransferNet, without the Accelerator (which holds the
  process group and every model it prepared).

accelerate and ``skorch.hf`` are imported only when an accelerator is given.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from skorch.callbacks import Callback

_WHAT_TO_PASS = "accelerator must be None or an accelerate.Accelerator instance, e.g. accelerator=Accelerator()"


def check_accelerator(accelerator, estimator, strategy) -> None:
    """Refuse an accelerator that is not an ``accelerate.Accelerator``, and the estimator
    settings that Accelerate takes over (``device``, ``precision``) or that DDP can't
    follow (``strategy="gradual"``)."""
    if accelerator is None:
        return
    try:
        from accelerate import Accelerator
    except ImportError:  # pragma: no cover - accelerate comes with the test extra
        raise ImportError(
            "accelerator= needs the accelerate package: pip install 'sktransfer[accelerate]'."
        ) from None
    if not isinstance(accelerator, Accelerator):
        raise TypeError(f"{_WHAT_TO_PASS}; got {type(accelerator).__name__}.")
    if estimator.device != "auto":
        raise ValueError(
            f"device={estimator.device!r} with accelerator=: the Accelerator places the model (on "
            f"{accelerator.device}). Leave device='auto'; choose devices with `accelerate launch` or the "
            "Accelerator's own settings."
        )
    if estimator.precision != "auto":
        raise ValueError(
            f"precision={estimator.precision!r} with accelerator=: mixed precision is the Accelerator's. Leave "
            "precision='auto' and pass it there, e.g. Accelerator(mixed_precision='bf16')."
        )
    strategy.check_accelerator()


def shared_seed(accelerator, seed: int | None) -> int:
    """The main process's seed, in every process: the validation split, the shuffling
    and the head's initialisation must agree across processes, also with
    ``random_state=None``."""
    from accelerate.utils import broadcast_object_list

    if seed is None:
        seed = int(np.random.randint(np.iinfo(np.int32).max))
    return int(broadcast_object_list([seed], from_process=0)[0])


def accelerated_fast_path(fast):
    """Our fast path with our own mixed precision and channels_last off: the
    Accelerator's ``mixed_precision`` decides (its autocast wraps the training step)."""
    return dataclasses.replace(fast, amp_dtype=None, grad_scaler=False, channels_last=False)


def weights_device(module) -> str:
    """Where ``module``'s weights are (``cuda:1`` in the second process of a 2-GPU run)."""
    tensor = next(iter(module.parameters()), None)
    if tensor is None:
        tensor = next(iter(module.buffers()), None)
    return "cpu" if tensor is None else str(tensor.device)


class MergedLosses(Callback):
    """Replace each batch's local loss and size in the history by the merged ones.

    Each process sees its shard of the batch; skorch records that shard's mean loss
    and size.  The size-weighted mean over processes is the loss of the whole batch
    (with ``split_batches=True``, the loss one process would have recorded), and
    every process gets the same history.  It runs before the estimator's callbacks,
    so the finite-loss guard and early stopping read merged values and stop all
    processes together.
    """

    def on_batch_end(self, net, batch=None, training=None, **kwargs):
        kind = "train" if training else "valid"
        row = net.history[-1, "batches"][-1]
        loss, size = row[f"{kind}_loss"], row[f"{kind}_batch_size"]
        local = torch.tensor([loss * size, size], dtype=torch.float64, device=net.accelerator.device)
        total = net.accelerator.reduce(local, reduction="sum").tolist()
        row[f"{kind}_loss"] = total[0] / total[1]
        row[f"{kind}_batch_size"] = int(round(total[1]))


def _plain_net():
    from sktransfer._training.net import TransferNet

    return TransferNet.__new__(TransferNet)


def accelerated_net_class():
    """The ``AccelerateMixin`` + ``TransferNet`` class (built on first use: skorch.hf
    imports accelerate)."""
    global _NET_CLASS
    if _NET_CLASS is None:
        _NET_CLASS = _build_net_class()
    return _NET_CLASS


_NET_CLASS = None


def _build_net_class():
    from skorch.hf import AccelerateMixin

    from sktransfer._training.net import TransferNet

    class AcceleratedTransferNet(AccelerateMixin, TransferNet):
        """TransferNet trained by an Accelerator; a plain local net after training."""

        def get_default_callbacks(self):
            # Before the estimator's callbacks (they come as ``callbacks=``).
            return [*super().get_default_callbacks(), ("merged_losses", MergedLosses())]

        def _initialize_accelerator(self):
            # The mixin prepares every criterion module, and DistributedDataParallel refuses
            # one without trainable parameters (our WeightedLoss: its tensors follow the
            # logits' device). Only criteria with trainable parameters are prepared.
            criteria = self._criteria
            self._criteria = [name for name in criteria if _trainable(getattr(self, name + "_", None))]
            try:
                return super()._initialize_accelerator()
            finally:
                self._criteria = criteria

        def get_iterator(self, *args, **kwargs):
            if self._wrapped_with_accelerator:
                iterator = super().get_iterator(*args, **kwargs)  # sharded by the Accelerator
                self.__dict__.setdefault("_prepared_iterators", []).append(iterator)
                return iterator
            return TransferNet.get_iterator(self, *args, **kwargs)

        def evaluation_step(self, batch, training=False):
            if self._wrapped_with_accelerator:
                return super().evaluation_step(batch, training=training)  # gathered across processes
            return TransferNet.evaluation_step(self, batch, training=training)

        def on_train_end(self, net, X=None, y=None, **kwargs):
            # The mixin unwraps here, before the callbacks' on_train_end; EarlyStopping's
            # load_best then loaded DDP's "module."-prefixed weights into the bare module.
            # partial_fit unwraps after them instead.
            self.accelerator.wait_for_everyone()

        def partial_fit(self, X, y=None, classes=None, **fit_params):
            try:
                return super().partial_fit(X, y, classes, **fit_params)
            finally:
                names = [name + "_" for name in self._modules + self._criteria + self._optimizers]
                prepared = [getattr(self, name, None) for name in names]
                prepared += self.__dict__.pop("_prepared_iterators", [])
                self._unwrap_accelerator()
                # The mixin unwraps modules only; the optimizer too, or the fitted net
                # can't be pickled (the LR scheduler patched the wrapper's ``step``).
                for name in self._optimizers:
                    optimizer = getattr(self, name + "_")
                    setattr(self, name + "_", getattr(optimizer, "optimizer", optimizer))
                release(self.accelerator, prepared + [getattr(self, name, None) for name in names])
                # Inputs now follow the weights: predict runs in this process alone.
                self.device = weights_device(self.module_)

        def __reduce_ex__(self, protocol):
            # Pickled (and deep-copied) as the plain TransferNet it is after training:
            # no Accelerator (the process group, every model it prepared) travels, and
            # loading needs neither accelerate nor this class, defined on first use.
            state = self.__getstate__()
            for name in ("accelerator", "unwrap_after_train", "_wrapped_with_accelerator"):
                state.pop(name, None)
            return _plain_net, (), state

    return AcceleratedTransferNet


def print_on_main(*args, **kwargs):
    """skorch's PrintLog sink: the epoch lines once per machine, from its main process
    (``accelerator.print``'s rule).

    A module-level function, unlike ``accelerator.print``, so a fitted net pickles
    without its Accelerator."""
    from accelerate import PartialState

    PartialState().print(*args, **kwargs)


def _trainable(module) -> bool:
    return isinstance(module, torch.nn.Module) and any(p.requires_grad for p in module.parameters())


# Where an Accelerator keeps what it prepared (for its save_state); private attributes,
# hence looked up with a default.
_PREPARED_LISTS = ("_models", "_optimizers", "_schedulers", "_dataloaders")


def release(accelerator, objects) -> None:
    """Drop the Accelerator's references to ``objects`` (this fit's model, optimizer and
    data loaders, wrapped and unwrapped). It keeps everything it prepared: through it a
    search would keep every candidate's model, on the GPU, and its data alive.
    What the user prepared with the same Accelerator is left alone."""
    for name in _PREPARED_LISTS:
        kept = getattr(accelerator, name, None)
        if isinstance(kept, list):
            kept[:] = [obj for obj in kept if not any(obj is ours for ours in objects)]
