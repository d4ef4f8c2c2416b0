"""Checks of the training plan before any backbone pass: the validation split and BatchNorm batches."""

from __future__ import annotations

import math

import numpy as np


def n_validation(fraction: float, n: int) -> int:
    """Rows skorch's ``ValidSplit(fraction)`` holds out: sklearn's ``ceil(fraction * n)``."""
    # ValidSplit with a float builds a (Stratified)ShuffleSplit(test_size=fraction), whose
    # _validate_shuffle_split takes n_test = ceil(test_size * n) and trains on the rest.
    return math.ceil(fraction * n)


def _fraction_origin(fraction: float, patience, validation_fraction) -> str:
    if validation_fraction is None:
        return f"patience={patience} holds out validation_fraction={fraction} for early stopping"
    return f"validation_fraction={fraction}"


def validation_fraction(params: dict):
    """The held-out fraction: early stopping (``patience``) needs one, 0.1 unless given."""
    if params["validation_fraction"] is None and params["patience"] is not None:
        return 0.1
    return params["validation_fraction"]


def check_validation_split(params: dict, n: int, labels=None, classes=None) -> None:
    """Raise when the validation split leaves a part empty, or a class without rows on either side.

    ``labels`` are the encoded classes (classifiers: skorch's split is then stratified).
    """
    fraction = validation_fraction(params)
    if fraction is None or "train_split" in (params["net_params"] or {}):
        return  # no split, or the user's own
    n_valid = n_validation(fraction, n)
    n_train = n - n_valid
    origin = _fraction_origin(fraction, params["patience"], params["validation_fraction"])
    no_split = "or validation_fraction=None and patience=None (no validation split, no early stopping)"
    if n_train < 1:
        raise ValueError(
            f"{origin}: of {n} sample(s), {n_valid} go to validation and none are left to train on. Pass more data, a smaller validation_fraction, {no_split}."
        )
    if labels is None:
        return
    # StratifiedShuffleSplit needs every class twice, and as many rows as classes on each side.
    counts = np.bincount(np.asarray(labels), minlength=len(classes))
    names = [str(c) for c in classes]
    summary = ", ".join(f"{name!r}: {count}" for name, count in zip(names, counts))
    if counts.min() < 2:
        rare = [repr(name) for name, count in zip(names, counts) if count < 2]
        raise ValueError(
            f"{origin}, a split stratified by class, but class(es) {', '.join(rare)} have a single sample "
            f"(class counts: {summary}); each class needs at least 2, one to train on and one to validate. Pass more samples "
            f"of those classes, {no_split}."
        )
    if min(n_valid, n_train) < len(counts):
        part, size = ("validation", n_valid) if n_valid < len(counts) else ("training", n_train)
        fraction_fix = "larger" if part == "validation" else "smaller"
        raise ValueError(
            f"{origin}: the {part} part gets {size} of {n} samples, fewer than the {len(counts)} classes, but the "
            f"split is stratified by class and needs one sample of each class on each side (class counts: "
            f"{summary}). Pass more data, a {fraction_fix} validation_fraction, {no_split}."
        )


# ------------------------------------------------------------------ BatchNorm and the last batch
def batchnorm_drop_last(params: dict, strategy, module, n: int) -> dict:
    """skorch settings that keep a trained BatchNorm from seeing a training batch of one sample.

    A BatchNorm in train mode normalises by the batch's own statistics: with one sample
    torch raises 'Expected more than 1 value per channel when training' (feature maps
    don't raise, but the running statistics absorb a one-sample estimate). When the
    training rows leave a last batch of one, that sample is dropped
    (``iterator_train__drop_last=True``) rather than erroring: it is one sample, and
    shuffling drops a different one each epoch. The LR schedule reads its length from
    this iterator, so it stays in sync. ``iterator_train__drop_last`` in ``net_params``
    wins; with a ``train_split`` of their own the training size is unknown: left alone.
    """
    net_params = params["net_params"] or {}
    n_train = planned_n_train(n, validation_fraction(params), net_params)
    batch_size = effective_batch_size(params["batch_size"], net_params)
    if n_train is None or "iterator_train__drop_last" in net_params or n_train % batch_size != 1:
        return {}
    norms = strategy.trained_batchnorms(module, params["max_epochs"])
    if not norms:
        return {}
    if n_train == 1:
        raise ValueError(
            f"One training sample, but the backbone's BatchNorm layer(s) ({', '.join(norms[:3])}"
            f"{'...' if len(norms) > 3 else ''}) train, and BatchNorm can't normalise a batch of one. Pass more "
            "samples (validation_fraction and patience hold some out), or use strategy='head'."
        )
    return {"iterator_train__drop_last": True}


def planned_n_train(n: int, fraction, net_params: dict | None) -> int | None:
    """Rows the net will train on, or None where ``net_params`` sets its own ``train_split``."""
    if "train_split" in (net_params or {}):
        return None
    return n if fraction is None else n - n_validation(fraction, n)


def effective_batch_size(batch_size: int, net_params: dict | None) -> int:
    """The training iterator's batch size: ``net_params`` can override the estimator's."""
    net_params = net_params or {}
    return int(net_params.get("iterator_train__batch_size", net_params.get("batch_size", batch_size)))
