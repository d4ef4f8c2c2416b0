"""skorch callbacks and schedules of our own; skorch's are used wherever they exist."""

from __future__ import annotations

import math

from skorch.callbacks import Callback


class WarmupSchedule:
    """Learning-rate multiplier per optimizer step, for ``torch.optim.lr_scheduler.LambdaLR``.

    ``"cosine"``: linear warmup over ``warmup_fraction`` of the steps, then cosine
    decay to zero.  ``"onecycle"``: the one-cycle shape of ``OneCycleLR`` with cosine
    annealing (from ``lr/25`` up to ``lr`` over the first 30 %, then down to
    ``lr/25e4``); unlike ``OneCycleLR`` it leaves momentum alone.  ``"constant"``:
    warmup, then the base rate.  A class, not a lambda, so that fitted nets pickle.
    """

    def __init__(self, kind: str, total_steps: int, warmup_fraction: float = 0.1):
        self.kind = kind
        self.total_steps = max(1, int(total_steps))
        self.warmup_steps = int(round(warmup_fraction * self.total_steps))

    def __call__(self, step: int) -> float:
        t = min(step, self.total_steps)
        if self.kind == "onecycle":
            peak = max(1, int(round(0.3 * self.total_steps)))
            start, end = 1 / 25, 1 / 25e4
            if t <= peak:
                return start + (1 - start) * (1 - math.cos(math.pi * t / peak)) / 2
            progress = (t - peak) / max(1, self.total_steps - peak)
            return end + (1 - end) * (1 + math.cos(math.pi * progress)) / 2
        if self.warmup_steps and t < self.warmup_steps:
            return (t + 1) / self.warmup_steps
        if self.kind == "constant":
            return 1.0
        progress = (t - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * progress))


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
        if n_trainable == 0:
            module.freeze("head", self.blocks, 0)
        else:
            module.freeze("partial", self.blocks, n_trainable)
        net.history.record("unfrozen_blocks", n_trainable)
