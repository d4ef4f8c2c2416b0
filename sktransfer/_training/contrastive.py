"""Contrastive tuning of a backbone on pairs drawn from the labels, as SetFit does.

SetFit (Tunstall et al. 2022, "Efficient Few-Shot Learning Without Prompts") first tunes
the body of a sentence encoder on pairs of training samples: the cosine similarity of
the two samples' features is pulled towards 1 for a pair of the same class and towards
0 for a pair of different classes (sentence-transformers' ``CosineSimilarityLoss``: the
mean squared error between ``cos(u, v)`` and that target). A head is then trained on
the tuned body's frozen features; that second step is the caller's.

:func:`sample_pairs` draws the pairs in O(n + n_pairs) time and memory (never all n^2
pairs: setfit issue #627, minutes and gigabytes on 40,000 rows);
:func:`contrastive_tune` trains ``module.backbone`` on them in place, batches collated
by the input adapter, so text, image and tabular backbones all go the same way.
"""

from __future__ import annotations

import contextlib
import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from skorch.utils import to_device
from torch.utils.data import DataLoader

from sktransfer._features.progress import bar
from sktransfer._nn.backbone_cache import shared_reference
from sktransfer._nn.calls import call_args

#: Share of the optimiser steps spent warming the learning rate up from 0 (SetFit's
#: ``warmup_proportion``); it then decays linearly to 0, as sentence-transformers' fit does.
WARMUP = 0.1
#: SetFit's (sentence-transformers') AdamW weight decay and gradient-norm clip.
WEIGHT_DECAY = 0.01
MAX_GRAD_NORM = 1.0
#: Multi-label "other" pairs: redraws of a partner that shares a label with its anchor.
_REDRAWS = 8
_CHUNK = 1 << 16  # pairs whose Jaccard similarity is computed at a time


# ---------------------------------------------------------------------------- pairs
def sample_pairs(labels, n_pairs: int, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n_pairs`` training pairs ``(left_idx, right_idx, target)`` drawn from ``labels``.

    Parameters
    ----------
    labels : array-like of shape (n,), or (n, n_labels) 0/1 indicator (dense or scipy sparse)
        Class labels (any values sklearn calls ``binary`` or ``multiclass``), or
        multi-label indicator rows.
    n_pairs : int >= 1
        How many pairs. SetFit's ``num_iterations=k`` is ``n_pairs = 2 * k * n``.
    rng : int, numpy Generator or RandomState
        The only source of randomness: the same seed gives the same pairs.

    Returns
    -------
    left_idx, right_idx : int64 arrays of shape (n_pairs,)
        Row indices into ``labels``; ``left_idx`` is the pair's *anchor*, ``right_idx``
        its partner, never the anchor itself. The pairs come in shuffled order.
    target : float32 array of shape (n_pairs,)
        The cosine similarity the pair's features are trained towards.

    Classes: half the pairs (rounded down) are positive (same class, target 1), the rest
    negative (a partner drawn uniformly from the other classes, target 0). Anchors go
    round the samples in a fresh random order each round (SetFit's oversampling: with
    ``n_pairs = 2 * k * n`` every sample anchors exactly ``k`` positive and ``k``
    negative pairs). A sample alone in its class has no positive partner: it anchors
    no positive pair (its negative pairs are kept), and the positive half goes round
    the samples of the other classes instead; where every class has one sample, all
    pairs are negative.

    Multi-label rows: the target is the Jaccard similarity of the two label sets,
    ``|A & B| / |A | B|`` (two empty sets: 1, identical). Half the pairs pair an
    anchor with a partner sharing one of its labels (a label drawn uniformly among the
    anchor's labels held by another row, then a row holding it); the other half with a
    partner drawn uniformly, redrawn up to 8 times while it shares a label.

    Refused (``ValueError``): continuous (regression) targets, multi-output multiclass
    targets, fewer than two samples, a single class (or identical label sets: nothing
    to contrast), ``n_pairs < 1``.
    """
    n_pairs = _positive_int(n_pairs, "n_pairs")
    rng = _generator(rng)
    kind, labels = _label_kind(labels)
    if kind == "multilabel":
        left, right, target = _multilabel_pairs(labels, n_pairs, rng)
    else:
        left, right, target = _class_pairs(labels, n_pairs, rng)
    order = rng.permutation(n_pairs)
    return left[order], right[order], target[order]


def _generator(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, np.random.RandomState):
        return np.random.default_rng(rng.randint(np.iinfo(np.int32).max))
    return np.random.default_rng(rng)


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    return int(value)


def _label_kind(labels):
    """``("classes", codes)`` or ``("multilabel", csr matrix)``; refuses everything else."""
    import scipy.sparse as sp
    from sklearn.utils.multiclass import type_of_target

    if not sp.issparse(labels):
        labels = np.asarray(labels)
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels.ravel()
    if labels.shape[0] < 2:
        raise ValueError(f"Contrastive tuning needs at least 2 labelled samples; got {labels.shape[0]}.")
    kind = type_of_target(labels)
    if kind == "multilabel-indicator":
        matrix = sp.csr_matrix(labels, dtype=np.int8)
        matrix.sum_duplicates()
        matrix.eliminate_zeros()
        matrix.sort_indices()
        if _identical_rows(matrix):
            raise ValueError("Every sample has the same label set: contrastive tuning has nothing to contrast.")
        return "multilabel", matrix
    if kind not in ("binary", "multiclass"):
        hint = {
            "continuous": "contrastive tuning is for classifiers; regression targets have no classes to pair",
            "continuous-multioutput": "contrastive tuning is for classifiers; regression targets have no classes "
                                      "to pair",
            "multiclass-multioutput": "pass one column of classes, or 0/1 multi-label indicator rows",
        }.get(kind, "pass class labels or 0/1 multi-label indicator rows")
        raise ValueError(f"Labels of type {kind!r} can't be paired: {hint}.")
    classes, codes = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(
            f"All {len(codes)} samples have the same class ({classes[0]!r}): contrastive tuning needs two classes."
        )
    return "classes", codes.astype(np.int64).ravel()


def _identical_rows(matrix) -> bool:
    sizes = np.diff(matrix.indptr)
    if np.any(sizes != sizes[0]):
        return False
    return bool(np.all(matrix.indices.reshape(len(sizes), -1) == matrix.indices[: sizes[0]]))


def _rounds(pool: np.ndarray, k: int, rng) -> np.ndarray:
    """``k`` anchors going round ``pool``, in a fresh random order each round."""
    if k == 0 or len(pool) == 0:
        return np.zeros(0, dtype=np.int64)
    rounds = -(-k // len(pool))
    return np.concatenate([rng.permutation(pool) for _ in range(rounds)])[:k].astype(np.int64)


def _other_member(rng, anchors, position, start, count) -> np.ndarray:
    """For each anchor, the position (in a sorted member list) of a uniformly drawn member
    of its group ``[start, start + count)`` other than the anchor's own ``position``."""
    r = (rng.random(len(anchors)) * (count - 1)).astype(np.int64)
    return start + r + (r >= position - start)


def _class_pairs(codes: np.ndarray, n_pairs: int, rng):
    n = len(codes)
    order = np.argsort(codes, kind="stable")  # rows grouped by class
    counts = np.bincount(codes)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    eligible = np.flatnonzero(counts[codes] >= 2)  # singletons have no positive partner
    n_pos = n_pairs // 2 if len(eligible) else 0
    # Positives: another member of the anchor's class.
    pos = _rounds(eligible, n_pos, rng)
    c = codes[pos]
    pos_partner = order[_other_member(rng, pos, position[pos], starts[c], counts[c])]
    # Negatives: a member of any other class, uniformly (skip the anchor's class block).
    neg = _rounds(np.arange(n), n_pairs - n_pos, rng)
    c = codes[neg]
    r = (rng.random(len(neg)) * (n - counts[c])).astype(np.int64)
    neg_partner = order[r + np.where(r >= starts[c], counts[c], 0)]
    left = np.concatenate([pos, neg])
    right = np.concatenate([pos_partner, neg_partner])
    target = np.concatenate([np.ones(len(pos), np.float32), np.zeros(len(neg), np.float32)])
    return left, right, target


def _multilabel_pairs(matrix, n_pairs: int, rng):
    n, n_labels = matrix.shape
    sizes = np.diff(matrix.indptr)
    rows = np.repeat(np.arange(n, dtype=np.int64), sizes)  # the row of each nonzero
    counts = np.bincount(matrix.indices, minlength=n_labels)
    # Each label's rows, ascending (a stable sort of the row-major nonzeros).
    by_label = np.argsort(matrix.indices, kind="stable")
    members = rows[by_label]
    keys = matrix.indices[by_label].astype(np.int64) * n + members
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    # The labels of each row that some other row holds too.
    shared = counts[matrix.indices] >= 2
    n_shared = np.bincount(rows[shared], minlength=n)
    shared_ptr = np.concatenate([[0], np.cumsum(n_shared)])
    shared_labels = matrix.indices[shared].astype(np.int64)
    eligible = np.flatnonzero(n_shared)
    n_pos = n_pairs // 2 if len(eligible) else 0
    pos = _rounds(eligible, n_pos, rng)
    label = shared_labels[shared_ptr[pos] + (rng.random(len(pos)) * n_shared[pos]).astype(np.int64)]
    position = np.searchsorted(keys, label * n + pos)
    pos_partner = members[_other_member(rng, pos, position, starts[label], counts[label])]
    other = _rounds(np.arange(n), n_pairs - n_pos, rng)
    partner = _uniform_other(rng, other, n)
    for _ in range(_REDRAWS):
        overlapping = np.flatnonzero(_jaccard(matrix, other, partner) > 0)
        if not len(overlapping):
            break
        partner[overlapping] = _uniform_other(rng, other[overlapping], n)
    left = np.concatenate([pos, other])
    right = np.concatenate([pos_partner, partner])
    return left, right, _jaccard(matrix, left, right)


def _uniform_other(rng, anchors, n) -> np.ndarray:
    r = (rng.random(len(anchors)) * (n - 1)).astype(np.int64)
    return r + (r >= anchors)


def _jaccard(matrix, left, right) -> np.ndarray:
    """Jaccard similarity of the label sets of rows ``left[i]`` and ``right[i]`` (chunked)."""
    sizes = np.diff(matrix.indptr)
    out = np.empty(len(left), dtype=np.float32)
    for s in range(0, len(left), _CHUNK):
        a, b = left[s:s + _CHUNK], right[s:s + _CHUNK]
        both = np.asarray(matrix[a].multiply(matrix[b]).sum(axis=1)).ravel()
        union = sizes[a] + sizes[b] - both
        out[s:s + _CHUNK] = np.where(union > 0, both / np.maximum(union, 1), 1.0)
    return out


# ---------------------------------------------------------------------------- tuning
class _UniqueRows:
    """A DataLoader batch sampler: each batch of pairs as the sorted rows it needs, each once."""

    def __init__(self, left, right, batches):
        self.left, self.right, self.batches = left, right, batches

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        for s in self.batches:
            yield np.unique(np.concatenate([self.left[s], self.right[s]])).tolist()


def _check_params(module, X_checked, labels, iterations, lr, batch_size, epochs):
    if shared_reference(module.backbone) is not None:
        raise ValueError(
            "This backbone is the process's shared read-only pretrained copy (a frozen strategy builds on it); "
            "contrastive tuning would change it under every other model. Build the module with a strategy that "
            "gets a backbone of its own (shares_pretrained_backbone=False)."
        )
    if not any(True for _ in module.backbone.parameters()):
        raise ValueError("The backbone has no parameters: contrastive tuning has nothing to train.")
    n_labels = labels.shape[0] if hasattr(labels, "shape") else len(labels)
    if n_labels != len(X_checked):
        raise ValueError(f"labels has {n_labels} rows but X has {len(X_checked)} samples.")
    for value, name in ((iterations, "iterations"), (batch_size, "batch_size"), (epochs, "epochs")):
        _positive_int(value, name)
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number; got {lr!r}.")


def _schedule(total: int):
    warmup = math.ceil(WARMUP * total)

    def factor(step: int) -> float:  # sentence-transformers' WarmupLinear
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


def contrastive_tune(module, adapter, X_checked, labels, *, iterations: int = 20, lr: float = 2e-5,
                     batch_size: int = 16, epochs: int = 1, device="cpu", seed: int = 0, fast=None) -> dict:
    """Tune ``module.backbone`` in place on label pairs (SetFit's contrastive step).

    Every backbone parameter trains (whatever the strategy froze; the flags are put back
    after), in train mode (dropout, BatchNorm statistics), with AdamW (weight decay
    0.01, gradient norm clipped at 1), the learning rate warmed up over the first 10% of
    steps then decayed linearly to 0. Each step takes ``batch_size`` pairs from
    :func:`sample_pairs` (``n_pairs = 2 * iterations * len(X_checked)``, drawn once,
    reshuffled each further epoch), runs ``module.features`` once over the rows they
    need (collated by ``adapter``, unaugmented), and minimises the mean squared error
    between each pair's cosine similarity and its target. The head is not used.

    ``module`` must already be on ``device``; ``fast`` (the fit's FastPath, or None for
    fp32) gives autocast, the fp16 GradScaler and DataLoader workers. The same ``seed``
    gives the same weights on the CPU; the global RNGs are left as they were. The
    module is left in eval mode.

    Returns a log: ``pairs``, ``positive_pairs`` (pairs with a target above 0),
    ``steps``, ``epochs``, ``first_loss`` and ``last_loss`` (the mean loss over the first
    and the last tenth of the steps, at least one step each) and ``seconds``.
    """
    _check_params(module, X_checked, labels, iterations, lr, batch_size, epochs)
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    n_pairs = 2 * int(iterations) * len(X_checked)
    left, right, target = sample_pairs(labels, n_pairs, rng)
    target = torch.from_numpy(target)
    per_epoch = -(-n_pairs // batch_size)
    total = per_epoch * epochs
    dev = torch.device(device)
    backbone = module.backbone
    params = list(backbone.parameters())
    flags = [p.requires_grad for p in params]
    amp_dtype = getattr(fast, "amp_dtype", None)
    scaler = torch.amp.GradScaler(dev.type) if getattr(fast, "grad_scaler", False) else None
    losses = []
    forked = [dev.index or 0] if dev.type == "cuda" else []
    stack = contextlib.ExitStack()  # the progress bar, closed whatever happens
    try:
        with torch.random.fork_rng(devices=forked):
            torch.manual_seed(seed)  # dropout
            for p in params:
                p.requires_grad_(True)
            optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=WEIGHT_DECAY)
            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(total))
            module.eval()
            backbone.train()
            dataset = adapter.dataset(X_checked)
            progress = stack.enter_context(bar("tuning the body on pairs", total, unit="step"))
            for epoch in range(epochs):
                order = np.arange(n_pairs) if epoch == 0 else rng.permutation(n_pairs)  # pairs come shuffled
                batches = [order[s:s + batch_size] for s in range(0, n_pairs, batch_size)]
                loader = DataLoader(
                    dataset, batch_sampler=_UniqueRows(left, right, batches), collate_fn=adapter.collate_fn,
                    num_workers=getattr(fast, "num_workers", 0), pin_memory=getattr(fast, "pin_memory", False),
                    generator=torch.Generator().manual_seed(seed + epoch),
                )
                for pairs, (X, _) in zip(batches, loader):
                    _, inverse = np.unique(np.concatenate([left[pairs], right[pairs]]), return_inverse=True)
                    inverse = torch.from_numpy(inverse.ravel())
                    args, kwargs = call_args(to_device(X, device))
                    autocast = (torch.autocast(device_type=dev.type, dtype=amp_dtype) if amp_dtype is not None
                                else contextlib.nullcontext())
                    with autocast:
                        features = module.features(*args, **kwargs)
                    features = features.float()
                    b = len(pairs)
                    cosine = F.cosine_similarity(features[inverse[:b]], features[inverse[b:]], dim=1)
                    loss = F.mse_loss(cosine, target[pairs].to(cosine.device))
                    optimizer.zero_grad(set_to_none=True)
                    if scaler is not None:
                        scaler.scale(loss).backward()
                        scaler.unscale_(optimizer)
                        torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
                        scaler.step(optimizer)
                        scaler.update()
                    else:
                        loss.backward()
                        torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
                        optimizer.step()
                    scheduler.step()
                    losses.append(float(loss.detach()))
                    progress.update(1)
    finally:
        stack.close()
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)
            p.grad = None
        module.eval()
    window = max(1, len(losses) // 10)
    return {
        "pairs": n_pairs,
        "positive_pairs": int((target > 0).sum()),
        "steps": len(losses),
        "epochs": epochs,
        "first_loss": float(np.mean(losses[:window])),
        "last_loss": float(np.mean(losses[-window:])),
        "seconds": time.perf_counter() - started,
    }
