"""Model files of a model fitted with ``init=``: its ``init=`` model, saved inside it.

An ``init=`` model that is itself a fitted TransferClassifier or TransferRegressor (or
one in scikit-learn's ``FrozenEstimator``) is written as a model directory of its own,
``init/``, inside the model's (and so on, for an ``init=`` model with its own ``init=``).
``config.json`` records it under ``"init"``: the directory, whether the model was frozen,
and the checksum of its ``config.json``, so that an ``init/`` swapped for another model's
is refused. Loading rebuilds it through the same checks and gives it back as ``init=``.
Any other ``init=`` (a scikit-learn pipeline...) can't be rebuilt without its code:
save_pretrained refuses it and says to pickle instead.
"""

from __future__ import annotations

from pathlib import Path

from sktransfer._build.sources import unwrap_frozen
from sktransfer._persistence.checks import parse_config
from sktransfer._persistence.saved import CONFIG, INIT
from sktransfer.exceptions import ModelFileError


def _fitted_init(estimator):
    # init_ is what predict adds (init could have been set_params'd since the fit).
    return getattr(estimator, "init_", None)


def check_init_savable(estimator) -> None:
    """Refuse an ``init=`` model a model file can't hold: anything but an sktransfer classifier or regressor."""
    init = _fitted_init(estimator)
    if init is None:
        return
    source = unwrap_frozen(init)
    # TransferClassifier and TransferRegressor say so with a class attribute (they live in the layer above).
    if not getattr(type(source), "reusable_as_backbone", False):
        raise ValueError(
            f"save_pretrained can't store init= a {type(source).__name__}: a model file holds an init= model only "
            f"when it is a fitted TransferClassifier or TransferRegressor (saved in {INIT}/); any other would need "
            "pickling. Pickle or joblib the estimator instead."
        )


def save_init(estimator, path: Path, save) -> dict | None:
    """Write ``estimator``'s ``init=`` model to ``path / INIT`` with ``save(model, directory)``
    (``save_pretrained``); the config's record of it, or None without one."""
    init = _fitted_init(estimator)
    if init is None:
        return None
    source = unwrap_frozen(init)
    try:
        save(source, path / INIT)
    except ValueError as exc:  # what the init= model's own file can't hold (a module backbone...)
        raise ValueError(f"The init= model ({type(source).__name__}): {exc}") from exc
    return {"path": INIT, "frozen": source is not init, "checksum": parse_config(path / INIT / CONFIG)["checksum"]}


def load_init(config: dict, path: Path, load):
    """The ``init=`` model that ``config`` (read from ``path``) records, loaded with
    ``load(directory)`` (``sktransfer.load``), frozen again if it was; or None."""
    record = config.get("init")
    if record is None:
        return None
    config_path = path / CONFIG
    if not isinstance(record, dict) or record.get("path") != INIT or not isinstance(record.get("frozen"), bool):
        raise ModelFileError(f"{config_path}: init={record!r} is not a record of an init= model in {INIT}/.")
    if not (path / INIT / CONFIG).is_file():
        raise ModelFileError(f"{path / INIT / CONFIG} is missing: the model's init= model. Copy the whole model "
                             "directory, init/ included.")
    nested = parse_config(path / INIT / CONFIG)
    if not isinstance(nested, dict) or nested.get("checksum") != record.get("checksum"):
        raise ModelFileError(
            f"{path / INIT} holds another model than the init= model {config_path} was saved with (its config.json "
            "has another checksum). Copy the whole model directory as save_pretrained wrote it, or save it again."
        )
    source = load(path / INIT)
    if not record["frozen"]:
        return source
    from sklearn.frozen import FrozenEstimator

    return FrozenEstimator(source)
