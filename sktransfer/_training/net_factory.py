"""The skorch net of a fit (or of a loaded model), from the estimator's parameters.

Everything here reads the estimator's public parameters (``get_params``) and what the
build path and the targets give; the estimator passes its target-specific pieces (the
loss settings, the stratification, the training collate) as values.
"""

from __future__ import annotations

import copy

import torch

from sktransfer._features.extraction import FeatureAwareCollate
from sktransfer._nn.losses import WeightedLoss
from sktransfer._training.accelerate import accelerated_net_class, print_on_main
from sktransfer._training.callbacks import (
    FiniteLossGuard,
    FitProgress,
    StopWhenConverged,
    WarmupLRScheduler,
    WeightEnsemble,
)
from sktransfer._training.net import TransferNet
from sktransfer._training.preflight import validation_fraction
from sktransfer._training.scoring import dict_target, scoring_callbacks

OPTIMIZERS = {"adamw": "AdamW", "adam": "Adam", "sgd": "SGD"}
#: How a head on frozen features is trained: to convergence by full-batch L-BFGS on the
#: penalised loss (``C``), or like fine-tuning, with ``optimizer``, ``lr`` and the schedule.
HEAD_SOLVERS = ("lbfgs", "optimizer")
#: L-BFGS iterations per epoch of a converged head (``max_epochs`` of them at most).
LBFGS_ITERATIONS = 20


def head_l2(C: float, loss_kind: str, n_outputs: int) -> float:
    """The penalty ``head_l2`` with which mean loss + head_l2 / n * ||W||^2 is the objective of
    ``LogisticRegression(C=C)`` (softmax, or one binary problem per label) and of
    ``Ridge(alpha=1 / C)`` per output, divided by n (and by the number of labels or outputs,
    which our losses average over)."""
    # Two classes: LogisticRegression penalises one coefficient vector w; a softmax head has
    # two rows, w / 2 and -w / 2 at the optimum, whose squares add to ||w||^2 / 2: twice the
    # penalty per row matches it.
    softmax = 1.0 if n_outputs == 2 else 0.5
    per_output = {"cross_entropy": softmax, "binary_cross_entropy": 0.5 / n_outputs, "mse": 1.0 / n_outputs}
    return per_output[loss_kind] / C


def converged_head_settings(params: dict, criterion_params: dict, n_outputs: int) -> dict:
    """The net settings that solve a head on frozen features: full-batch L-BFGS with a strong
    Wolfe line search, LogisticRegression's (or Ridge's) L2 penalty, no LR schedule."""
    return dict(
        optimizer=torch.optim.LBFGS,
        lr=1.0,
        optimizer__line_search_fn="strong_wolfe",
        optimizer__max_iter=LBFGS_ITERATIONS,
        optimizer__history_size=10,
        optimizer__tolerance_grad=1e-5,
        optimizer__tolerance_change=1e-10,
        batch_size=-1,  # one step per epoch on all the training rows
        head_l2=head_l2(params["C"], criterion_params["criterion__kind"], n_outputs),
        trainable_only=True,
    )


def converges(params: dict) -> bool:
    """Whether a head on frozen features is solved by full-batch L-BFGS (else trained like fine-tuning)."""
    # Accelerate steps optimizers without a closure, which L-BFGS needs: heads train with ``optimizer`` there.
    return params.get("head_solver", "lbfgs") == "lbfgs" and params.get("accelerator") is None


def optimizer_class(optimizer):
    if isinstance(optimizer, str):
        return getattr(torch.optim, OPTIMIZERS[optimizer])
    if not issubclass(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be one of {sorted(OPTIMIZERS)} or a torch.optim.Optimizer subclass.")
    return optimizer


def make_callbacks(params: dict, strategy_callbacks: list, schedule: bool = True, metric=None) -> list:
    """Ours (the loss guard, the schedule, the strategy's, the validation metric, early
    stopping, the weight ensemble of ``wise_alpha``, the progress bar) merged with
    ``net_params["callbacks"]``. ``metric`` is
    :func:`~sktransfer._training.scoring.validation_metric`'s answer, or None."""
    from skorch.callbacks import EarlyStopping

    callbacks = [("finite_loss", FiniteLossGuard())]
    if schedule:
        callbacks.append(("lr_schedule", WarmupLRScheduler(params["lr_schedule"], params["warmup_fraction"])))
    else:  # a converged head: L-BFGS finds its own step sizes, and stops once converged
        callbacks.append(("converged", StopWhenConverged()))
    callbacks += strategy_callbacks
    scoring, monitor = scoring_callbacks(params, metric)
    callbacks += scoring  # before early stopping, which reads the epoch's score
    if params["patience"] is not None:
        callbacks.append(("early_stopping", EarlyStopping(monitor=monitor, patience=params["patience"],
                                                          lower_is_better=monitor == "valid_loss", load_best=True)))
    alpha = params.get("wise_alpha", 1.0)
    if alpha != "auto" and alpha < 1:  # after early stopping, whose best weights are the end point
        callbacks.append(("weight_ensemble", WeightEnsemble(alpha)))
    accelerator = params.get("accelerator")
    if accelerator is None or accelerator.is_local_main_process:
        # One bar per machine, as the epoch lines; shown in a verbose call (sktransfer._features.progress).
        callbacks.append(("progress_bar", FitProgress()))
    return merge_user_callbacks(callbacks, params["net_params"])


def merge_user_callbacks(callbacks: list, net_params: dict | None) -> list:
    """Ours plus ``net_params["callbacks"]``: the user's are added, not put in place
    of the schedule and early stopping; a user callback named like one of ours
    (``("lr_schedule", ...)``) replaces that one. The user's objects are copied, so
    fitting never changes them (the fitted ones are in ``net_.callbacks_``)."""
    user = (net_params or {}).get("callbacks") or []
    if not isinstance(user, (list, tuple)):
        raise TypeError(
            f"net_params['callbacks'] must be a list of skorch callbacks or (name, callback) pairs, got "
            f"{type(user).__name__}."
        )
    merged, unnamed = dict(callbacks), []
    user = copy.deepcopy(list(user))
    for item in user:
        read_dict_targets(item[1] if isinstance(item, tuple) else item)
    for item in user:
        if isinstance(item, tuple):
            name, callback = item
            merged[name] = callback
        else:
            unnamed.append(item)  # skorch names it after its class
    return [*merged.items(), *unnamed]


def read_dict_targets(callback) -> None:
    """A user's ``EpochScoring`` (or ``BatchScoring``) with skorch's default target extractor
    gets :func:`~sktransfer._training.scoring.dict_target`: our batches' targets are dicts."""
    from skorch.utils import to_numpy

    if getattr(callback, "target_extractor", None) is to_numpy:
        callback.target_extractor = dict_target


def make_net(params: dict, module, collate_fn, *, param_groups, seed, device, on_features: bool, fast,
             strategy_callbacks: list, criterion_params: dict, stratified: bool, train_collate=None, metric=None):
    """The skorch net that trains (or, loaded, runs) ``module``.

    ``train_collate`` wraps the training batches' collate (MixUp, CutMix); the
    validation batches use the plain one.
    """
    from skorch.dataset import ValidSplit

    fraction = validation_fraction(params)
    collate = FeatureAwareCollate(collate_fn)
    converge = on_features and converges(params)
    kwargs = dict(
        module=module,
        criterion=WeightedLoss,
        optimizer=optimizer_class(params["optimizer"]),
        lr=params["lr"],
        optimizer__weight_decay=params["weight_decay"],
        max_epochs=params["max_epochs"],
        batch_size=params["batch_size"],
        train_split=None if fraction is None else ValidSplit(fraction, stratified=stratified, random_state=seed),
        iterator_train__shuffle=True,
        iterator_train__collate_fn=collate if train_collate is None else train_collate(collate),
        iterator_valid__collate_fn=collate,
        iterator_train__num_workers=0 if on_features else fast.num_workers,
        iterator_valid__num_workers=0 if on_features else fast.num_workers,
        iterator_train__pin_memory=fast.pin_memory,
        iterator_valid__pin_memory=fast.pin_memory,
        callbacks=make_callbacks(params, strategy_callbacks, schedule=not converge, metric=metric),
        device=device,
        verbose=int(params["verbose"]),
        compile=bool(params["compile"]),
        amp_dtype=fast.amp_dtype,
        grad_scaler=fast.grad_scaler,
    )
    if param_groups is not None:
        kwargs["optimizer__param_groups"] = param_groups
    kwargs.update(criterion_params)
    if converge:
        del kwargs["optimizer__weight_decay"]  # the head's penalty is C's
        kwargs.update(converged_head_settings(params, criterion_params, module.head.out_features))
        # Full-batch L-BFGS on cached features: float32, and a GradScaler can't step an optimizer that needs a closure.
        kwargs.update(amp_dtype=None, grad_scaler=False)
    net_class = TransferNet
    accelerator = params.get("accelerator")
    if accelerator is not None:
        # Accelerate places the module (device=None); the epoch lines come from each
        # machine's main process only (skorch's PrintLog passes every line to a sink
        # other than print, whatever the verbosity).
        net_class = accelerated_net_class()
        sink = print_on_main if params["verbose"] else print
        kwargs.update(accelerator=accelerator, device=None, callbacks__print_log__sink=sink)
    kwargs.update({key: value for key, value in (params["net_params"] or {}).items() if key != "callbacks"})
    return net_class(**kwargs)
