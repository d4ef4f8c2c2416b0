"""The estimators' parameters: their constraints (checked in ``fit``) in one table."""

from __future__ import annotations

import os
from numbers import Integral, Real

import torch
import torch.nn as nn
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from sktransfer._build.fusion import FUSIONS, REMAINDERS
from sktransfer._inputs.augment import AUGMENT_NAMES
from sktransfer._inputs.text import CHUNK_POOLING, LONG_TEXT
from sktransfer._training.callbacks import SCHEDULES
from sktransfer._training.net import PRECISIONS
from sktransfer._training.net_factory import HEAD_SOLVERS, OPTIMIZERS
from sktransfer._training.scoring import EARLY_STOPPING_METRICS
from sktransfer._training.strategies import STRATEGIES

#: ``_parameter_constraints`` of TransferClassifier and TransferRegressor.
TRANSFER_PARAMETERS: dict = {
    "backbone": [str, nn.Module, HasMethods(["fit", "predict"]), list, tuple, dict],
    "fusion": [StrOptions(set(FUSIONS))],
    "remainder": [StrOptions(set(REMAINDERS))],
    "pretrained": ["boolean"],
    "strategy": [StrOptions(set(STRATEGIES))],
    "trainable_blocks": [Interval(Integral, 1, None, closed="left")],
    "lora_rank": [Interval(Integral, 1, None, closed="left")],
    "lora_alpha": [Interval(Real, 0, None, closed="neither"), None],
    "contrastive_iterations": [Interval(Integral, 1, None, closed="left")],
    "layers": [str, Integral, list, tuple, None],
    "init": [HasMethods(["predict"]), None],
    "init_cv": ["cv_object", None],
    "lr": [Interval(Real, 0, None, closed="neither")],
    "backbone_lr": [Interval(Real, 0, None, closed="left"), None],
    "max_epochs": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "optimizer": [StrOptions(set(OPTIMIZERS)), type],
    "weight_decay": [Interval(Real, 0, None, closed="left")],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither"), None],
    "patience": [Interval(Integral, 1, None, closed="left"), None],
    "early_stopping_metric": [StrOptions(set(EARLY_STOPPING_METRICS))],
    "augment": [StrOptions(set(AUGMENT_NAMES)), callable, None],
    "lr_schedule": [StrOptions(set(SCHEDULES))],
    "warmup_fraction": [Interval(Real, 0, 1, closed="left")],
    "layer_decay": [Interval(Real, 0, 1, closed="right"), None],
    "head_epochs": [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})],
    "wise_alpha": [Interval(Real, 0, 1, closed="both"), StrOptions({"auto"})],
    "head_solver": [StrOptions(set(HEAD_SOLVERS))],
    "C": [Interval(Real, 0, None, closed="neither")],
    "image_size": [Interval(Integral, 8, None, closed="left"), None],
    "max_length": [Interval(Integral, 1, None, closed="left"), None],
    "pooling": [StrOptions({"auto", "mean", "cls"})],
    "long_text": [StrOptions(set(LONG_TEXT))],
    "chunk_pooling": [StrOptions(set(CHUNK_POOLING))],
    "device": [str, torch.device],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
    "feature_cache": [StrOptions({"memory"}), str, os.PathLike, HasMethods(["get_many", "put_many"]), None],
    "precision": [StrOptions(set(PRECISIONS))],
    "compile": ["boolean"],
    "net_params": [dict, None],
    # Checked in fit by check_accelerator, whose message names accelerate.Accelerator
    # (imported only when one is given).
    "accelerator": "no_validation",
}

