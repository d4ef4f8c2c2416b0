"""Fusion: several backbones in one model, on one input or on the columns of a DataFrame.

``backbone=["efficientnet_lite0", "resnet18"]`` runs each backbone on the same ``X``;
``backbone={"photo": "efficientnet_lite0", "caption": "all-MiniLM-L6-v2", "price":
"passthrough"}`` runs each on one column of a DataFrame (or a dict of columns). Each
branch is a backbone with its own input adapter, chosen stages and strategy, built by
the same steps as a single-backbone fit; their features are concatenated (or gated,
then concatenated) and one head is trained on them.

Frozen branches (``strategy="head"``, no augmentation) read their features from the
shared feature cache, so a search that varies the other branches or the head runs
each frozen backbone about once per row. When every branch is frozen, training runs
on the concatenated features alone; otherwise trainable branches run end to end.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from numbers import Integral, Real

import torch.nn as nn
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from sktransfer._build.model import prepare_fused_branch
from sktransfer._build.param_checks import StrictParams
from sktransfer._build.settings import BranchSettings
from sktransfer._inputs.augment import mixes_batches
from sktransfer._training.strategies import STRATEGIES

FUSIONS = ("concat", "gated")
REMAINDERS = ("error", "drop")
#: Branch settings that default to the estimator's own (``None``: inherit).
BRANCH_PARAMS = ("strategy", "lr", "layers", "trainable_blocks", "pretrained")


class Branch(StrictParams, BaseEstimator):
    """One branch of a fused model: a backbone, and the settings where it differs.

    Parameters
    ----------
    backbone : str, torch.nn.Module or fitted TransferClassifier / TransferRegressor
        As the estimators' ``backbone``; ``"passthrough"`` for numeric columns.
    strategy : {"full", "partial", "head", "lora"}, default=None
        This branch's strategy; ``None`` uses the estimator's. ``"lora"`` takes the
        estimator's ``lora_rank`` and ``lora_alpha``.
    lr : float, default=None
        This branch's backbone learning rate; ``None`` uses the estimator's rule
        (``backbone_lr``, else ``lr`` or ``lr / 10`` for pretrained text encoders).
    layers : str, int or list of them, default=None
        This branch's stages; ``None`` uses the estimator's ``layers``.
    trainable_blocks : int, default=None
        Blocks trained by ``strategy="partial"``; ``None`` uses the estimator's.
    pretrained : bool, default=None
        Whether this branch loads pretrained weights; ``None`` uses the estimator's.

    Examples
    --------
    >>> from sktransfer import Branch, TransferClassifier
    >>> clf = TransferClassifier({"photo": Branch("efficientnet_lite0", strategy="head"),
    ...                           "caption": "all-MiniLM-L6-v2"})
    """

    _parameter_constraints: dict = {
        "backbone": [str, nn.Module, HasMethods(["fit", "predict"])],
        "strategy": [StrOptions(set(STRATEGIES)), None],
        "lr": [Interval(Real, 0, None, closed="neither"), None],
        "layers": [str, Integral, list, tuple, None],
        "trainable_blocks": [Interval(Integral, 1, None, closed="left"), None],
        "pretrained": ["boolean", None],
    }

    def __init__(self, backbone, *, strategy=None, lr=None, layers=None, trainable_blocks=None, pretrained=None):
        self.backbone = backbone
        self.strategy = strategy
        self.lr = lr
        self.layers = layers
        self.trainable_blocks = trainable_blocks
        self.pretrained = pretrained


def is_fused(backbone) -> bool:
    """Whether ``backbone`` names several branches (a list or a column mapping)."""
    return isinstance(backbone, (list, tuple, Mapping))


def _as_branch(value, where: str) -> Branch:
    if isinstance(value, Branch):
        return value
    if isinstance(value, (list, tuple, Mapping)):
        raise TypeError(f"{where} is a {type(value).__name__}; each branch is one backbone (or a Branch).")
    return Branch(value)


def _branch_name(backbone, i: int) -> str:
    if isinstance(backbone, str):
        return backbone
    return f"branch{i}"


def branch_table(backbone) -> list[tuple[str, object, Branch]]:
    """``(name, column, Branch)`` per branch: column names for a mapping, ``None`` (the
    whole ``X``) for a list. Names are the columns, or the backbone names of a list."""
    if isinstance(backbone, Mapping):
        if not backbone:
            raise ValueError("backbone={} names no columns; map each column to a backbone, e.g. {'text': "
                             "'all-MiniLM-L6-v2'}.")
        for column in backbone:
            if not isinstance(column, str):
                raise TypeError(
                    f"backbone mapping keys are DataFrame column names and must be str, got {column!r} "
                    f"({type(column).__name__})."
                )
        return [(column, column, _as_branch(value, f"backbone[{column!r}]")) for column, value in backbone.items()]
    if not backbone:
        raise ValueError("backbone=[] names no backbones; pass at least one.")
    table, seen = [], {}
    for i, value in enumerate(backbone):
        branch = _as_branch(value, f"backbone[{i}]")
        name = _branch_name(branch.backbone, i)
        seen[name] = seen.get(name, 0) + 1
        table.append((name if seen[name] == 1 else f"{name}_{seen[name]}", None, branch))
    return table


def with_branch_params(backbone, updates: dict):
    """A copy of ``backbone`` (list or mapping) with ``{"branch__<name>__<param>": value}``
    applied to new Branch objects; the caller's list, dict and Branch objects are kept."""
    table = branch_table(backbone)
    names = [name for name, _, _ in table]
    branches = {name: copy.copy(branch) for name, _, branch in table}
    for key, value in updates.items():
        name, _, param = key[len("branch__"):].rpartition("__")
        if name not in branches or param not in BRANCH_PARAMS:
            raise ValueError(
                f"Invalid parameter {key!r}: branch parameters are branch__<name>__<param> with <name> one of "
                f"{names} and <param> one of {list(BRANCH_PARAMS)}."
            )
        setattr(branches[name], param, value)
    if isinstance(backbone, Mapping):
        return {column: branches[name] for name, column, _ in table}
    return [branches[name] for name in names]


def check_fusion_params(params: dict, table) -> None:
    """What a fused model refuses: invalid branch settings, batch mixing (several inputs),
    and strategies that can't train a branch (each strategy says)."""
    for name, _, branch in table:
        try:
            branch._validate_params()
        except ValueError as exc:
            raise type(exc)(f"branch {name!r}: {exc}") from None
    if mixes_batches(params["augment"]):
        raise ValueError(
            f"augment={params['augment']!r} mixes whole batches of one image input; a fused model has several inputs. "
            "Use augment='default' (applied to image branches) or None."
        )
    for strategy in {params["strategy"]} | {b.strategy for _, _, b in table if b.strategy is not None}:
        STRATEGIES[strategy]().check_fused()


def prepare_fused(params: dict, X, table) -> list:
    """Each branch resolved, adapted and its column checked (the build path's first steps)."""
    return [prepare_fused_branch(name, column, BranchSettings.from_params(params, branch), X)
            for name, column, branch in table]
