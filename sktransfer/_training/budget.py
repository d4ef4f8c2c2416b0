"""Training budgets in optimizer steps: what ``max_epochs="auto"`` and ``head_epochs="auto"`` mean.

A budget in passes starves small data sets: 16 texts in batches of 32 make one step an
epoch, so 10 epochs are 10 steps, most of them in the warmup. Measured on the VADER sets
with 8 texts per class (5 seeds each, ``benchmarks/few_shot.py``), a linear probe then 50
steps of fine-tuning beat the same probe then 10 steps on every set.

When the training rows are one batch, the fine-tuned weights are then pulled back toward the
probe on the pretrained body (``wise_alpha="auto"``, WiSE-FT): 50 steps on the same 16 texts
can move the body far from features that already fit the task (on one NYT draw, 6 points
below the probe).
"""

from __future__ import annotations

import math

from sktransfer._spec.stages import FINAL_FEATURES
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
#: ``max_epochs="auto"`` on at most this many rows of a modality whose pretrained body loses
#: by fine-tuning on little data (``InputAdapter.small_data_views``): no fine-tuning.
SMALL_DATA_ROWS = 128
#: ... where, from this many rows per class on, the probe reads the body's last two stages
#: besides its final features (``layers=None`` only).
SMALL_DATA_STAGES_PER_CLASS = 8


def small_data_views(params: dict, n: int, adapter, *, pretrained: bool, trains_body: bool) -> int:
    """How many augmented views of each row the probe sees when it is the whole fit; 0 where the
    fit goes on to train as planned.

    With ``max_epochs="auto"``, a pretrained body of a modality that sets
    ``small_data_views`` (images) isn't fine-tuned on at most ``SMALL_DATA_ROWS`` rows: the
    fitted model is the converged ``head_epochs`` probe (called only where one runs), solved on the rows and that many
    random crops and flips of each. Measured on flowers12 with EfficientNet-Lite0 (5-10 draws
    each, ``benchmarks/README.md``, "Images on small data"): fine-tuning after the probe lost to
    ``LogisticRegression`` on the frozen features with 12 and 96 photos, and the probe on 8 views
    beat it by 2.5 points on average with 12 photos (10 draws) and tied it with 96; from 250 photos fine-tuning came out ahead (the demo's
    digits, flowers12's 720 photos), so it stays from ``SMALL_DATA_ROWS`` + 1 rows on.
    """
    wanted = params["max_epochs"] == "auto" and pretrained and trains_body and n <= SMALL_DATA_ROWS
    return type(adapter).small_data_views if wanted else 0


def small_data_layers(params: dict, n: int, n_classes: int | None, stages: list[str]) -> list[str] | None:
    """``layers`` for the small-data probe (:func:`small_data_views`) of a single-label classifier
    (``n_classes``; None otherwise) on a body whose ``stages`` are declared: the last two stages
    and the final features, from ``SMALL_DATA_STAGES_PER_CLASS`` rows per class on; None (the
    parameter as it is) otherwise.

    Measured on flowers12 with EfficientNet-Lite0 (``benchmarks/README.md``, "Images on small
    data"): with 8 photos a species, the final features with ``blocks.4`` and ``blocks.6`` pooled
    were 0.8 point more accurate than the final features alone (10 draws), and 0.7 point with the
    views (10 other draws); with 1 photo a species they lost 1.3 points, with 4 they tied. Through
    the estimator, with 8 a species the route then beat ``LogisticRegression`` on the final
    features by 0.7 and 1.0 point (two sets of 10 draws), where it had tied it without them.
    """
    if params["layers"] is not None or n_classes is None or len(stages) < 2:
        return None
    if n < SMALL_DATA_STAGES_PER_CLASS * n_classes:
        return None
    return [*stages[-2:], FINAL_FEATURES]


def planned_epochs(params: dict, n: int, *, full_batch: bool, probe_only: bool = False) -> int:
    """``max_epochs`` as a number: the parameter, or for ``"auto"`` ``AUTO_EPOCHS`` passes and at
    least ``MIN_STEPS`` optimizer steps (a full-batch L-BFGS head: ``AUTO_EPOCHS`` epochs); 0
    where the probe is the whole fit (:func:`small_data_views`)."""
    if params["max_epochs"] != "auto":
        return params["max_epochs"]
    if probe_only:
        return 0
    steps_per_epoch = None if full_batch else _steps_per_epoch(params, n)
    if steps_per_epoch is None:  # a full-batch head, or the user's own train_split: the size is unknown
        return AUTO_EPOCHS
    return max(AUTO_EPOCHS, math.ceil(MIN_STEPS / steps_per_epoch))


def _steps_per_epoch(params: dict, n: int) -> int | None:
    """Optimizer steps per pass over the training part of ``n`` rows; None where the user's own
    ``train_split`` makes that size unknown."""
    net_params = params["net_params"] or {}
    n_train = planned_n_train(n, validation_fraction(params), net_params)
    if n_train is None:
        return None
    return max(1, math.ceil(n_train / effective_batch_size(params["batch_size"], net_params)))


def one_batch(params: dict, n: int) -> bool:
    """Whether the training part of ``n`` rows is a single batch: one optimizer step a pass, so
    that ``max_epochs="auto"`` makes ``MIN_STEPS`` passes over the same rows (up to 32 training
    rows at batch 32)."""
    return _steps_per_epoch(params, n) == 1


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


def planned_wise_alpha(params: dict, n: int, *, probed: bool, trains_body: bool) -> float:
    """``wise_alpha`` as a number (1.0: the fine-tuned weights as they are). For ``"auto"``,
    ``AUTO_WISE_ALPHA`` after a probe (whose converged head on the pretrained body is then where
    the interpolation starts) when the training rows are one batch (:func:`one_batch`); 1.0
    otherwise. A strategy whose body doesn't train with the head has nothing to interpolate.

    Measured on three VADER sets (``benchmarks/README.md``, "WiSE-FT on small data"): with 16
    texts, 0.25 kept every draw within 1.1 points of ``LogisticRegression`` on the frozen features,
    where the fine-tuned weights fell up to 6.2 points below it; with 128 texts (4 steps a pass) the fine-tuned weights were as
    good or better (up to 1.6 points), so they are kept there."""
    if not trains_body:
        return 1.0
    if params.get("wise_alpha", "auto") != "auto":
        return float(params["wise_alpha"])
    return AUTO_WISE_ALPHA if probed and one_batch(params, n) else 1.0
