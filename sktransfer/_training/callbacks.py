"""skorch callbacks of our own; skorch's are used wherever they exist."""

from __future__ import annotations

import math

import torch
from skorch.callbacks import Callback, LRScheduler

from sktransfer._features.extraction import FeatureDataset
from sktransfer._features.progress import bar, write
from sktransfer.exceptions import TrainingDivergedError

SCHEDULES = ("cosine", "onecycle", "constant")


def make_schedule(kind: str, optimizer, total_steps: int, warmup_fraction: float = 0.1):
    """The per-step learning-rate scheduler for ``kind``, from the libraries that define them.

    ``"cosine"`` and ``"constant"``: transformers' linear warmup over ``warmup_fraction``
    of the steps, then cosine decay to zero or the base rate.  ``"onecycle"``: torch's
    ``OneCycleLR`` peaking at each parameter group's own rate, momentum left alone.
    """
    total_steps = max(1, int(total_steps))
    warmup_steps = int(round(warmup_fraction * total_steps))
    if kind == "onecycle":
        from torch.optim.lr_scheduler import OneCycleLR

        max_lr = [group["lr"] for group in optimizer.param_groups]
        return OneCycleLR(optimizer, max_lr=max_lr, total_steps=total_steps, cycle_momentum=False)
    from transformers import (
        get_constant_schedule_with_warmup,
        get_cosine_schedule_with_warmup,
    )

    # transformers' warmup gives the very first step lr 0, a step wasted (measured on the
    # digits demo: 0.832 against 0.835 mean accuracy over 8 seeds). Starting the schedule
    # one step in (last_epoch=0, one more step in all) trains step t at (t + 1) / warmup.
    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"])
    if kind == "constant":
        return get_constant_schedule_with_warmup(optimizer, num_warmup_steps=warmup_steps, last_epoch=0)
    if kind == "cosine":
        return get_cosine_schedule_with_warmup(
            optimizer, num_warmup_steps=warmup_steps, num_training_steps=total_steps + 1, last_epoch=0
        )
    raise ValueError(f"Unknown learning-rate schedule {kind!r}; use one of {SCHEDULES}.")


class WarmupLRScheduler(LRScheduler):
    """skorch's ``LRScheduler``, stepped per batch, sized from the real training iterator.

    The number of steps is read when training starts, from the iterator skorch will
    use (after its train/validation split, with its ``batch_size`` and ``drop_last``),
    so ``net_params`` that change any of them can't desynchronise the schedule.
    """

    def __init__(self, schedule: str = "cosine", warmup_fraction: float = 0.1):
        super().__init__(policy="LambdaLR", step_every="batch")
        self.schedule = schedule
        self.warmup_fraction = warmup_fraction

    def __getstate__(self):
        # The scheduler holds the optimizer, and through it every trainable weight and
        # AdamW's moments: pickled here they were stored again beside skorch's own copy.
        # It is only needed while training; every fit builds a new one.
        state = self.__dict__.copy()
        state.pop("lr_scheduler_", None)
        return state

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        dataset_train, _ = net.get_split_datasets(X, y)
        self.total_steps_ = len(net.get_iterator(dataset_train, training=True)) * net.max_epochs
        self.batch_idx_ = 0
        self.lr_scheduler_ = make_schedule(self.schedule, net.optimizer_, self.total_steps_, self.warmup_fraction)


class GradualUnfreezing(Callback):
    """``strategy="gradual"``: train the head first, then unfreeze one more block per epoch.

    Blocks are unfrozen from the output side (ULMFiT-style); frozen blocks stay in
    eval mode, so their BatchNorm statistics don't move.  Parameters start frozen but
    are already in the optimizer, which only updates them once they get gradients.
    """

    def __init__(self, blocks: list[str], every: int = 1):
        self.blocks = list(blocks)
        self.every = every

    def on_epoch_begin(self, net, **kwargs):
        epoch = len(net.history) - 1  # the history row of this epoch already exists
        n_trainable = min(len(self.blocks), epoch // self.every)
        module = getattr(net.module_, "_orig_mod", net.module_)  # through torch.compile
        module.blocks = self.blocks
        module.train_last_blocks(n_trainable)
        net.history.record("unfrozen_blocks", n_trainable)


class FiniteLossGuard(Callback):
    """Stop the fit at the first NaN or infinite loss, with the epoch, the batch and the
    likely causes, instead of training on and returning a model that predicts NaN.

    It reads the loss skorch has already recorded (``loss.item()``), so it costs no
    extra device synchronisation.
    """

    def on_batch_end(self, net, batch=None, training=None, **kwargs):
        kind = "train" if training else "valid"
        batches = net.history[-1, "batches"]
        loss = batches[-1][f"{kind}_loss"]
        if math.isfinite(loss):
            return
        n_batches = sum(f"{kind}_loss" in row for row in batches)
        raise TrainingDivergedError(
            f"Training diverged: the {'training' if training else 'validation'} loss became {loss} in epoch "
            f"{len(net.history)} (batch {n_batches}). Likely causes: a learning rate too high (lr={net.lr:g}; try "
            "10x smaller, or a warmup), targets on an extreme scale, or inputs with extreme values. The estimator "
            "was left as it was before this fit."
        )


class StopWhenConverged(Callback):
    """End a full-batch L-BFGS fit at the first epoch whose step no longer lowers the
    training loss (L-BFGS met its tolerance): further epochs would only re-evaluate it.
    skorch ends a fit normally on this KeyboardInterrupt, as it does for EarlyStopping."""

    def __init__(self, rtol: float = 1e-7):
        self.rtol = rtol

    def on_epoch_end(self, net, **kwargs):
        losses = net.history[:, "train_loss"]
        if len(losses) >= 2 and abs(losses[-2] - losses[-1]) <= self.rtol * max(abs(losses[-2]), 1e-12):
            raise KeyboardInterrupt

    def on_train_end(self, net, **kwargs):
        # L-BFGS keeps its last 10 directions only to continue this fit: dropped, a fitted
        # frozen model pickles to its head (plus a reference to the backbone), not to them.
        net.optimizer_.state.clear()


class FitProgress(Callback):
    """One bar for the whole fit, ``max_epochs`` x (training + validation batches), in place
    of skorch's ``ProgressBar``, which starts a new bar every epoch. It shows inside a
    verbose estimator call (see :mod:`sktransfer._features.progress`); the epoch table
    (skorch's ``PrintLog``) is printed above it. A fit ended early (early stopping, a
    converged head) leaves the bar where it stopped."""

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("bar_", None)  # a terminal's bar belongs to one fit
        state.pop("sink_", None)
        return state

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        dataset_train, dataset_valid = net.get_split_datasets(X, y)
        per_epoch = len(net.get_iterator(dataset_train, training=True))
        if dataset_valid is not None:
            per_epoch += len(net.get_iterator(dataset_valid, training=False))
        name = "training the head" if isinstance(X, FeatureDataset) else "fine-tuning"
        self.max_epochs_ = net.max_epochs
        self.bar_ = bar(name, net.max_epochs * per_epoch, unit="batch")
        self.sink_ = None
        if not self.bar_.disable and net.verbose:
            # The epoch lines go above the bar, not into its line (skorch's PrintLog prints
            # to any sink but print whatever the verbosity: only swapped when it prints).
            for _, callback in net.callbacks_:
                if type(callback).__name__ == "PrintLog" and callback.sink is print:
                    self.sink_, callback.sink = callback, write

    def on_epoch_begin(self, net, **kwargs):
        self.bar_.set_postfix_str(f"epoch {len(net.history)}/{self.max_epochs_}", refresh=False)

    def on_batch_end(self, net, **kwargs):
        self.bar_.update(1)

    def on_train_end(self, net, **kwargs):
        self.release()

    def release(self) -> None:
        """Close the bar and give the epoch table its own sink back (also after a failed fit)."""
        bar_ = self.__dict__.pop("bar_", None)
        if bar_ is not None:
            bar_.close()
        print_log = self.__dict__.pop("sink_", None)
        if print_log is not None:
            print_log.sink = print


class WeightEnsemble(Callback):
    """WiSE-FT (Wortsman et al. 2022, "Robust fine-tuning of zero-shot models"): at the end
    of training, every weight becomes ``(1 - alpha) * start + alpha * end``, the start being
    the weights training began from (after ``head_epochs``: the pretrained body and the
    converged probe's head). One set of weights, so predicting costs what it did.

    Few examples move a fine-tuned body far from features that already fit the task; the
    interpolation keeps part of the way. Tensors training didn't change (a frozen part,
    possibly shared with other models) are left untouched, not written.
    """

    def __init__(self, alpha: float = 0.5):
        self.alpha = alpha

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("start_", None)  # a copy of every weight, needed during one fit only
        return state

    def on_train_begin(self, net, **kwargs):
        self.start_ = {name: t.detach().to("cpu", copy=True) for name, t in net.module_.state_dict().items()}

    def on_train_end(self, net, **kwargs):
        start = self.__dict__.pop("start_")
        mixed = set()  # tied weights appear under several names: mixed once
        with torch.no_grad():
            for name, end in net.module_.state_dict().items():
                begin = start[name].to(end.device)
                if end.data_ptr() in mixed or not end.is_floating_point() or torch.equal(begin, end):
                    continue
                end.copy_(torch.lerp(begin.to(end.dtype), end, self.alpha))
                mixed.add(end.data_ptr())
