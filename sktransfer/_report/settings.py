"""The report's settings table: what was trained, how, on how much, and by which sktransfer."""

from __future__ import annotations

import datetime

from sktransfer._estimators.probe import probe_was_the_fit
from sktransfer._report.markup import _table
from sktransfer._version import __version__


def _epochs(estimator) -> str:
    history = getattr(getattr(estimator, "net_", None), "history", None)
    planned = getattr(estimator, "max_epochs", None)
    if probe_was_the_fit(estimator):
        return ("0: the backbone was not fine-tuned; the head was solved on its frozen features of the photos "
                f"and of augmented views (max_epochs={planned!r} on small image data)")
    if not history:
        return f"{planned} (max_epochs; not recorded in this model)"
    return f"{len(history)} run (max_epochs={planned})"


def _learning_rates(params: dict) -> str:
    from sktransfer._training.net_factory import converges
    from sktransfer._training.strategies import make_strategy

    if make_strategy(params["strategy"]).trains_on_cached_features(params.get("augment")) and converges(params):
        return f"head solved by L-BFGS to convergence (C={params.get('C')}); no learning rate"
    parts = [f"lr={params.get('lr')}"]
    for name in ("backbone_lr", "layer_decay"):
        if params.get(name) is not None:
            parts.append(f"{name}={params[name]}")
    parts.append(f"schedule {params.get('lr_schedule')}, warmup {params.get('warmup_fraction')}")
    return ", ".join(parts)


def settings_rows(estimator) -> list[list[str]]:
    """``[setting, value]`` rows; a setting the estimator lacks (another library's) is left out."""
    params = estimator.get_params(deep=False) if hasattr(estimator, "get_params") else {}
    spec = getattr(estimator, "spec_", None)
    rows = [["estimator", type(estimator).__name__]]
    if "backbone" in params:
        rows.append(["backbone", getattr(spec, "name", None) or "several (fused) backbones"])
    if "strategy" in params:
        rows += [["strategy", str(params["strategy"])], ["epochs", _epochs(estimator)],
                 ["learning rates", _learning_rates(params)], ["batch size", str(params.get("batch_size"))]]
    if getattr(estimator, "layers_", None) is not None:  # set by layers=, or chosen on few photos
        rows.append(["features", "pooled " + ", ".join(estimator.layers_) + " (layers_)"])
    n = getattr(estimator, "n_samples_fit_", None)
    fraction = params.get("validation_fraction")
    size = "not recorded (a model saved by an older sktransfer)" if n is None else str(n)
    if n is not None and fraction:
        size += f" ({fraction:g} of them held out for validation)"
    rows += [["training samples", size], ["sktransfer", __version__],
             ["report written", datetime.datetime.now().isoformat(timespec="seconds")]]
    return rows


def settings_table(estimator) -> str:
    return _table(["setting", "value"], settings_rows(estimator), numeric=set())
