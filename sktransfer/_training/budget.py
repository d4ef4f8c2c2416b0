"""Training budgets in optimizer steps: what ``max_epochs="auto"`` and ``head_epochs="auto"`` mean.

A budget in passes starves small data sets: 16 texts in batches of 32 make one step an
epoch, so 10 epochs are 10 steps, most of them in the warmup. Measured on the VADER sets
with 8 texts per class (5 seeds each, ``benchmarks/few_shot.py``), a linear probe then 50
steps of fine-tuning beat the same probe then 10 steps on every set.
"""

from __future__ import annotations

import math

from sktransfer._training.net_factory import converges
from sktransfer._training.preflight import effective_batch_size, planned_n_train, validation_fraction

#: ``max_epochs="auto"``: this many passes over the training rows ...
AUTO_EPOCHS = 10
#: ... and at least this many optimizer steps, however few the rows.
MIN_STEPS = 50
#: ``head_epochs="auto"``: the linear probe before fine-tuning, solved by L-BFGS (20 iterations an epoch).
AUTO_HEAD_EPOCHS = 10
#: ``wise_alpha="auto"`` after a probe: the fine-tuned weights' share in the final ones.
AUTO_WISE_ALPHA = 0.25


def planned_epochs(params: dict, n: int, *, full_batch: bool) -> int:
    """``max_epochs`` as a number: the parameter, or for ``"auto"`` ``AUTO_EPOCHS`` passes and at
    least ``MIN_STEPS`` optimizer steps (a full-batch L-BFGS head: ``AUTO_EPOCHS`` epochs)."""
    if params["max_epochs"] != "auto":
        return params["max_epochs"]
    if full_batch:
        return AUTO_EPOCHS
    net_params = params["net_params"] or {}
    n_train = planned_n_train(n, validation_fraction(params), net_params)
    if n_train is None:  # the user's own train_split: the size is unknown
        return AUTO_EPOCHS
    steps_per_epoch = max(1, math.ceil(n_train / effective_batch_size(params["batch_size"], net_params)))
    return max(AUTO_EPOCHS, math.ceil(MIN_STEPS / steps_per_epoch))


def planned_head_epochs(params: dict, warm_starts_head: bool, pretrained: bool = True) -> int:
    """``head_epochs`` as a number: for ``"auto"``, a converged probe (``AUTO_HEAD_EPOCHS``) before
    a strategy that fine-tunes a pretrained body. None where the head would be trained by an
    optimizer (``head_solver="optimizer"`` or under Accelerate) whose probe has no convergence to
    offer, for a randomly initialised backbone (no features to protect), or with ``init=`` (the
    model starts exactly at the source's answers: a zero head)."""
    if params["head_epochs"] != "auto":
        return params["head_epochs"]
    wanted = warm_starts_head and pretrained and params.get("init") is None and converges(params)
    return AUTO_HEAD_EPOCHS if wanted else 0


def planned_wise_alpha(params: dict, *, probed: bool, trains_body: bool) -> float:
    """``wise_alpha`` as a number (1.0: the fine-tuned weights as they are): for ``"auto"``,
    ``AUTO_WISE_ALPHA`` after a probe (the interpolation's start is then the converged probe on
    the pretrained body), else 1.0. A strategy whose body doesn't train has nothing to interpolate."""
    if not trains_body:
        return 1.0
    if params.get("wise_alpha", "auto") != "auto":
        return float(params["wise_alpha"])
    return AUTO_WISE_ALPHA if probed else 1.0
