"""The command line refuses what it would ignore: a flag that doesn't apply to the command's
other flags or data (exit 2, one line), and rows of ``evaluate`` and ``report`` whose labels
the model never saw (``--unknown-labels error``, the default; ``ignore`` leaves them out and says
how many)."""

from __future__ import annotations

import sys
from collections import Counter

import numpy as np


def _doesnt_apply(flag: str, why: str) -> ValueError:
    return ValueError(f"{flag} {why}: drop it.")


def check_fit_flags(args) -> None:
    """Flags of ``fit`` that its ``--strategy`` ignores, before any data is read."""
    if args.lora_rank is None and args.head_epochs is None:
        return
    from sktransfer._training.strategies import STRATEGIES, LoRA  # torch: only when these flags are given

    strategy = STRATEGIES[args.strategy]
    if args.lora_rank is not None and not issubclass(strategy, LoRA):
        raise ValueError(f"--lora-rank applies to --strategy lora, and this fit is --strategy {args.strategy}: drop "
                         "--lora-rank, or add --strategy lora.")
    if args.head_epochs is not None and not strategy.warm_starts_head:
        raise _doesnt_apply("--head-epochs", f"trains the head on frozen features before fine-tuning, and --strategy "
                                             f"{args.strategy} trains its head on frozen features itself")


def check_fit_data(args, data) -> None:
    """Flags of ``fit`` that its data ignores."""
    if args.image_size is not None and data.modality != "image":
        raise _doesnt_apply("--image-size", f"applies to images, and the data is {data.modality} ({data.description})")


def check_evaluate_flags(args) -> None:
    """Flags of ``evaluate`` that its other flags make moot, before the model is read."""
    if args.unknown_labels is not None and args.cv is not None:
        raise _doesnt_apply("--unknown-labels", "applies to the saved model, and --cv fits fresh models on DATA, "
                                                "which learn every label in it")
    if args.force and not args.report:
        raise _doesnt_apply("--force", "lets --report overwrite its file, and there is no --report")


def coerce_labels(estimator, y):
    """A table's labels as the classifier's kind: the strings ``'0'``, ``'1'`` read from a CSV
    are the classes 0, 1 of a model fitted on numbers (left as they are when they aren't numbers)."""
    classes = np.asarray(estimator.classes_)
    y = np.asarray(y)
    if classes.dtype.kind in "iuf" and y.dtype.kind in "UO":
        try:
            return y.astype(classes.dtype)
        except (TypeError, ValueError):
            return y
    return y


def known_labels(args, estimator, data, y):
    """``(X, y, ids)`` of the rows whose labels ``estimator`` knows. Rows with labels it never
    saw are refused (``--unknown-labels error``, the default) or left out with a warning on
    stderr that counts them (``ignore``). Regressors have no classes: the flag is refused."""
    policy = getattr(args, "unknown_labels", None)
    if not hasattr(estimator, "classes_"):
        if policy is not None:
            raise _doesnt_apply("--unknown-labels", f"applies to classifiers, and {args.model} holds a regressor")
        return data.X, y, data.ids
    unknown = ~np.isin(y, estimator.classes_)
    if not unknown.any():
        return data.X, y, data.ids
    counts = Counter(y[unknown].tolist()).most_common()
    listing = ", ".join(f"{label!r} ({n})" for label, n in counts[:5]) + (", ..." if len(counts) > 5 else "")
    what = f"{unknown.sum()} of {len(y)} rows of {data.description} have labels {args.model} never saw: {listing}"
    if (policy or "error") == "error":
        classes = ", ".join(repr(c) for c in estimator.classes_.tolist()[:10])
        raise ValueError(
            f"{what}. Its classes: {classes}{', ...' if len(estimator.classes_) > 10 else ''}. Pass --unknown-labels "
            "ignore to leave those rows out of the metrics, or check --label-column."
        )
    if unknown.all():
        raise ValueError(f"{what}: no row is left to evaluate with --unknown-labels ignore; check --label-column.")
    print(f"warning: {what}; left out of the metrics (--unknown-labels ignore).", file=sys.stderr)
    keep = np.flatnonzero(~unknown)
    return [data.X[i] for i in keep], y[keep], [data.ids[i] for i in keep]
