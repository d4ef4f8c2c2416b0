"""Model files: a fitted estimator as a directory that loading never unpickles.

``save_pretrained(estimator, path)`` writes ``config.json`` (parameters, fitted
attributes, the backbone's name, plugin and version, the adapter's state) and
``model.safetensors`` (the module's tensors; for a frozen pretrained backbone, only the
head's, and with ``strategy="lora"`` the adapters', plus a fingerprint of the pretrained
weights that loading checks). ``load(path)`` rebuilds the estimator through the same
build path as ``fit`` (``sktransfer._build``), then puts the tensors back, as timm's
``create_model`` + ``load_checkpoint`` do.

Each part declares its own state: the estimators (``__sktransfer_state__`` and
``__sktransfer_restore__``), the input adapters (``get_state``/``set_state``) and the
strategies (what a file stores). A fused model describes each branch the same way in
``config.json``'s ``branches``; so does an embedder of several backbones. A model's
``init=`` model is a model directory of its own inside it (``init_model.py``).

The checksums guard against accidents (a truncated copy, a hand edit), not against an
attacker, who can recompute them; what keeps a hostile file from running code is that
nothing here unpickles: JSON and safetensors only, and the parameters go through the
estimator's own validation.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from packaging.version import InvalidVersion, Version
from sklearn.utils._param_validation import validate_parameter_constraints
from sklearn.utils.validation import check_is_fitted
import torch.nn as nn

from sktransfer._build.branch import build_branch, is_pretrained, make_adapter
from sktransfer._build.fusion import branch_table, check_fusion_params, is_fused
from sktransfer._build.model import PreparedBranch, build_model, model_fast_path
from sktransfer._build.param_checks import reject_booleans
from sktransfer._build.settings import BranchSettings
from sktransfer._inputs.fused import BranchColumns
from sktransfer._persistence.card import check_card, check_metrics, remember_card, write_card
from sktransfer._persistence.history import encode_history, restore_history
from sktransfer._persistence.init_model import check_init_savable, load_init, save_init
from sktransfer._persistence.checks import check_config, check_lora_rank, check_tensors, parse_config
from sktransfer._persistence.records import (
    backbone_record,
    fitted_attributes,
    input_attributes,
    module_tensors,
    restore_fitted,
    restore_inputs,
)
from sktransfer._persistence.saved import (
    CONFIG,
    WEIGHTS,
    SavedBranch,
    SavedModel,
    resolve_spec,
)
from sktransfer._persistence.values import decode, encode
from sktransfer._persistence.writing import _config_checksum, _sha256, _write
from sktransfer._spec.model_files import reading_model_file
from sktransfer._training.devices import check_device, resolve_device
from sktransfer._training.net import fast_path
from sktransfer._version import __version__
from sktransfer.exceptions import ModelFileError

#: The newest format this module reads. Files a format-1 reader can rebuild (one
#: backbone, a classifier or regressor) are still written as format 1; fused models and
#: embedders are format 2, models with their init= model (init/) format 3, so that an
#: older sktransfer says to upgrade.
FORMAT_VERSION = 3


def _is_embedder(cls) -> bool:
    # An embedder declares itself (the estimators live in the layer above this one).
    return getattr(cls, "__sktransfer_kind__", "estimator") == "embedder"


def _version(text: str) -> Version | None:
    try:
        return Version(str(text))
    except InvalidVersion:
        return None


def _check_backbone_name(backbone, what: str, where: str) -> None:
    """Model files rebuild backbones from the registry: a module or a fitted estimator can't be."""
    at = f" ({where})" if where else ""
    if isinstance(backbone, nn.Module):
        raise ValueError(
            f"save_pretrained needs backbone= a registered backbone name; this {what} was given a "
            f"{type(backbone).__name__} module{at}, which a model file can't rebuild without running its "
            "code. Pickle or joblib the estimator instead, or register the module as a backbone in a plugin."
        )
    if not isinstance(backbone, str):
        raise ValueError(
            f"save_pretrained needs backbone= a registered backbone name; this {what} reuses a fitted "
            f"{type(backbone).__name__}'s backbone{at}, which model files don't support yet. Pickle or "
            "joblib the estimator instead."
        )


def _check_savable(estimator) -> None:
    check_is_fitted(estimator)
    what = type(estimator).__name__
    if is_fused(estimator.backbone):
        for name, _, branch in branch_table(estimator.backbone):
            _check_backbone_name(branch.backbone, what, f"branch {name!r}")
    else:
        _check_backbone_name(estimator.backbone, what, "")
    check_init_savable(estimator)


def _branch_settings(params: dict, table) -> list[BranchSettings]:
    """Each branch's settings, as fit derives them from the parameters."""
    if table is None:
        return [BranchSettings.from_params(params)]
    return [BranchSettings.from_params(params, branch) for _, _, branch in table]


def _branch_record(branch: dict, settings: BranchSettings, prefix: str) -> tuple[dict, dict]:
    """``(record, tensors)`` of one branch of the estimator's declared state."""
    module, spec = branch["module"], branch["spec"]
    # LoRA adapters are stored on their own (see module_tensors); their base stays referenced.
    stores = settings.strategy.stores_backbone_weights(is_pretrained(settings, spec))
    record = {
        "backbone": backbone_record(spec, module.backbone, branch["width"], stores),
        "layers": None if module.stages is None else list(module.stages),
        "adapter": branch["adapter"].get_state(),
    }
    if branch["name"] is not None:
        record = {"name": branch["name"], "column": branch["column"], **record,
                  "inputs": input_attributes(branch["inputs"])}
    return record, module_tensors(module, [] if stores else ["backbone."], prefix)


def _estimator_part(estimator, params: dict) -> tuple[dict, dict, dict]:
    """``(fitted, config entries, tensors)`` of a classifier or regressor."""
    state = estimator.__sktransfer_state__()
    table = branch_table(estimator.backbone) if is_fused(estimator.backbone) else None
    fitted = fitted_attributes(state["fitted"])
    if table is None:
        record, tensors = _branch_record(state["branches"][0], _branch_settings(params, None)[0], "")
        return fitted, record, tensors
    records, tensors = [], {}
    skipped = []
    for i, (branch, settings) in enumerate(zip(state["branches"], _branch_settings(params, table))):
        record, _ = _branch_record(branch, settings, "")
        records.append(record)
        if not record["backbone"]["stores_weights"]:
            skipped.append(f"branches.b{i}.backbone.")
    part = {"branches": records, "fusion": {"fusion": estimator.fusion, "mapped": bool(state["mapped"])}}
    return fitted, part, module_tensors(state["module"], skipped)


def _embedder_part(embedder, params: dict) -> tuple[dict, dict]:
    """``(config entries, tensors)`` of an embedder: each branch as a frozen one; several
    backbones' tensors under ``b<i>.``."""
    state = embedder.__sktransfer_state__()
    settings = BranchSettings.from_params({**params, "strategy": "head"})
    records, tensors = [], {}
    for i, branch in enumerate(state["branches"]):
        prefix = f"b{i}." if state["fused"] else ""
        record, own = _branch_record({**branch, "name": None}, settings, prefix)
        record.update(widths=[int(w) for w in branch["widths"]], name_prefix=branch["name_prefix"],
                      inputs=input_attributes(branch["inputs"]))
        if state["fused"]:
            record = {"name": branch["name"], "column": branch["column"], **record}
        records.append(record)
        tensors.update(own)
    # set_output(transform="pandas") is part of what the embedder returns: kept.
    output = {k: v for k, v in getattr(embedder, "_sklearn_output_config", {}).items() if isinstance(v, str)}
    extra = {"output": output} if output else {}
    if not state["fused"]:
        return {**records[0], **extra}, tensors
    return {"branches": records, "inputs": input_attributes(embedder),
            "n_features_out_": int(embedder.n_features_out_), **extra}, tensors


def save_pretrained(estimator, path, *, overwrite: bool = False, metrics=None, metrics_dataset=None, card="auto",
                    repo_id=None) -> Path:
    """Write ``estimator`` to the directory ``path``: ``config.json``, ``model.safetensors``
    and the model card ``README.md`` (:mod:`sktransfer._persistence.card`).

    Parameters
    ----------
    estimator : fitted TransferClassifier, TransferRegressor or TransferEmbedder
        One backbone or several (fused, or an embedder's branches), each a registered name.
    path : str or os.PathLike
        The directory to write.
    overwrite : bool, default=False
        Replace the files of a directory that holds some.
    metrics, metrics_dataset, card
        The card's scores, the data they were measured on, and which card to write
        (``TransferClassifier.save_pretrained`` documents them).
    repo_id : str, optional
        The Hub repository the card tells users to load from.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        For what JSON can't hold (a module backbone, a callable augment, object labels...).
    FileExistsError
        When ``path`` holds files and ``overwrite`` is False.
    """
    _check_savable(estimator)
    check_metrics(metrics)
    check_card(card)
    # An Accelerator is a handle on this run's processes, not a setting of the model: it
    # is left out, and the loaded estimator predicts (and refits) without one.
    params = estimator.get_params(deep=False)
    # The init= model is a model directory of its own (init_model.py), not a parameter's JSON.
    with_init = getattr(estimator, "init_", None) is not None
    encoded = {name: encode(value, name) for name, value in params.items()
               if name != "accelerator" and not (name == "init" and with_init)}
    several = is_fused(estimator.backbone)
    embedder = _is_embedder(type(estimator))
    if embedder:
        fitted = {}
        part, tensors = _embedder_part(estimator, params)
    else:
        fitted, part, tensors = _estimator_part(estimator, params)
        part = {**part, "history": encode_history(estimator.net_)}
        if hasattr(estimator, "n_samples_fit_"):  # the training-set size, which reports show
            part["n_samples_fit"] = int(estimator.n_samples_fit_)
    config = {
        "format": "sktransfer-model",
        # A format-1 reader rebuilds one-backbone classifiers and regressors only.
        "format_version": 3 if with_init else 2 if several or embedder else 1,
        "sktransfer_version": __version__,
        "estimator": type(estimator).__name__,
        "params": encoded,
        "fitted": fitted,
        **part,
    }
    path = _write(path, config, tensors, overwrite,
                  write_init=lambda staging: save_init(estimator, staging, save_pretrained))
    write_card(path, estimator, config, card=card, metrics=metrics, metrics_dataset=metrics_dataset, repo_id=repo_id)
    return path


def _read_config(path: Path) -> dict:
    config_path = path / CONFIG
    if not config_path.is_file():
        raise ModelFileError(f"{config_path} is missing: {path} is not a model directory written by save_pretrained.")
    config = parse_config(config_path)
    if not isinstance(config, dict) or config.get("format") != "sktransfer-model":
        raise ModelFileError(f"{config_path} is not an sktransfer model config.")
    version = config.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(
            f"{config_path} has model format version {version!r}, newer than this sktransfer ({__version__}) "
            f"reads ({FORMAT_VERSION}). Upgrade sktransfer to load it."
        )
    saved = str(config.get("sktransfer_version", ""))
    written_by = _version(saved)
    if written_by is None:
        raise ModelFileError(
            f"{config_path} names sktransfer version {saved!r}, which is not a version number: the file was "
            "edited or damaged. Save the model again."
        )
    if written_by > Version(__version__):
        raise ModelFileError(
            f"{config_path} was written by sktransfer {saved}, newer than this one ({__version__}). "
            "Upgrade sktransfer to load it."
        )
    if config.get("checksum") != _config_checksum(config):
        raise ModelFileError(
            f"{config_path} does not match its checksum: it was edited or damaged after save_pretrained wrote it. "
            "Save the model again."
        )
    return config


def _read_tensors(path: Path, config: dict) -> dict:
    from safetensors.torch import load_file

    weights_path = path / WEIGHTS
    expected = (config.get("files") or {}).get(WEIGHTS) or {}
    if not weights_path.is_file():
        raise ModelFileError(f"{weights_path} is missing; copy the whole model directory.")
    size = weights_path.stat().st_size
    if size != expected.get("bytes") or _sha256(weights_path) != expected.get("sha256"):
        raise ModelFileError(
            f"{weights_path} does not match the checksum in {path / CONFIG} ({size} bytes, "
            f"{expected.get('bytes')} expected): it was truncated, edited or replaced. Save the model again."
        )
    try:
        tensors = load_file(str(weights_path), device="cpu")
    except Exception as exc:
        raise ModelFileError(f"{weights_path} is not a readable safetensors file: {exc}") from None
    check_tensors(tensors, weights_path)
    return tensors


def _validated(cls, params: dict):
    """An estimator from the saved parameters, validated as ``fit`` validates them."""
    validate_parameter_constraints(cls._parameter_constraints, params, caller_name=cls.__name__)
    reject_booleans(cls._parameter_constraints, params, cls.__name__)
    return cls(**params)


def _decoded(config: dict, config_path: Path, classes: dict):
    """``(estimator, fitted attributes)`` from the config's class, parameters and fitted
    attributes, validated like ``fit`` validates them."""
    try:
        cls = classes[config["estimator"]]
        estimator = _validated(cls, {name: decode(value) for name, value in config["params"].items()})
        table = branch_table(estimator.backbone) if is_fused(estimator.backbone) else None
        for _, _, branch in table or []:
            branch._validate_params()  # scikit-learn's constraints, and no booleans for numbers
        if not all(isinstance(backbone, str) for backbone in
                   ([branch.backbone for _, _, branch in table] if table else [estimator.backbone])):
            raise ValueError("a backbone is not a name")
        saved = [(b["name"], b["column"]) for b in config["branches"]] if "branches" in config else None
        if saved != (None if table is None else [(name, column) for name, column, _ in table]):
            raise ValueError("the branches differ from the backbone parameter")
        fitted = {} if _is_embedder(cls) else restore_fitted(config["fitted"])
    except Exception as exc:  # a hand-made config that passed the checksum
        raise ModelFileError(f"{config_path} does not describe a model this sktransfer can rebuild: {exc!r}") from None
    return estimator, fitted


def _check_lora(estimator, config: dict, tensors: dict, path: Path) -> None:
    """A LoRA model's rank against its stored adapters, before any adapter is allocated."""
    if _is_embedder(type(estimator)):
        return
    params = estimator.get_params(deep=False)
    table = branch_table(estimator.backbone) if "branches" in config else None
    if any(hasattr(settings.strategy, "rank") for settings in _branch_settings(params, table)):
        check_lora_rank(params["lora_rank"], tensors, path / CONFIG, path / WEIGHTS)


def load(path, *, device="auto", classes: dict):
    """The estimator in the model directory ``path``, rebuilt by the build path on
    ``device`` (``sktransfer.load`` documents it); ``classes`` maps the config's
    estimator names to their classes."""
    path = Path(path)
    config = _read_config(path)
    tensors = _read_tensors(path, config)
    estimator, fitted = _decoded(config, path / CONFIG, classes)
    # Sizes against the tensors, before anything is allocated.
    check_config(config, tensors, path / CONFIG, path / WEIGHTS, embedder=_is_embedder(type(estimator)))
    _check_lora(estimator, config, tensors, path)
    check_device(device)
    init = load_init(config, path, lambda directory: load(directory, device=device, classes=classes))
    if init is not None:
        estimator.set_params(init=init)
    device = resolve_device(device)
    try:
        with reading_model_file(path / CONFIG):  # backbones read safetensors only
            if _is_embedder(type(estimator)):
                loaded = _load_embedder(estimator, config, tensors, device, path)
            else:
                loaded = _load_estimator(estimator, config, tensors, fitted, device, path)
        remember_card(loaded, path, config)
        return loaded
    except ModelFileError:
        raise
    except (KeyError, IndexError, TypeError, ValueError) as exc:  # a hand-made config that passed the checksum
        raise ModelFileError(
            f"{path / CONFIG} does not describe a model this sktransfer can rebuild: {exc!r}"
        ) from None


def _prepared(settings: BranchSettings, record: dict, path: Path, fused: bool, name=None, column=None):
    """A saved branch's first build steps: its spec from the registry, its adapter with the saved state."""
    spec = resolve_spec(record["backbone"], path / CONFIG)
    if fused:
        settings = settings.for_modality(spec.modality)
    if settings.layers is None and record.get("layers") is not None:  # the stages the fit chose (small data)
        settings = dataclasses.replace(settings, layers=record["layers"])
    adapter = make_adapter(spec, None, settings).set_state(record["adapter"])
    columns = restore_inputs(BranchColumns(), record["inputs"]) if fused and "inputs" in record else None
    return PreparedBranch(name, column, settings, spec, None, adapter, columns)


def _own_tensors(tensors: dict, prefix: str) -> dict:
    return {name[len(prefix):]: t for name, t in tensors.items() if name.startswith(prefix)}


def _load_estimator(estimator, config, tensors, fitted, device, path):
    """A classifier or regressor rebuilt by the build path, its tensors from the file."""
    params = estimator.get_params(deep=False)
    fused = "branches" in config
    table = branch_table(estimator.backbone) if fused else None
    if fused:
        try:
            check_fusion_params(params, table)
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"{path / CONFIG} does not describe a model this sktransfer can rebuild: {exc}") from None
        records = config["branches"]
        prepared = [_prepared(settings, record, path, True, name, column)
                    for (name, column, _), settings, record in zip(table, _branch_settings(params, table), records)]
        branches = [SavedBranch(record, _own_tensors(tensors, f"branches.b{i}."), path)
                    for i, record in enumerate(records)]
        rest = {name: t for name, t in tensors.items() if not name.startswith("branches.")}
    else:
        prepared = [_prepared(_branch_settings(params, None)[0], config, path, False)]
        branches, rest = [SavedBranch(config, tensors, path)], {}
    fast = model_fast_path(device, estimator.precision, prepared)
    with torch.random.fork_rng(devices=[]):
        model = build_model(prepared, fused=fused, n_outputs=fitted["n_outputs_"], zero_head=False,
                            fusion=estimator.fusion, mapped=bool(fused and config["fusion"]["mapped"]),
                            remainder=estimator.remainder, device=device, fast=fast,
                            feature_cache=estimator.feature_cache, saved=SavedModel(branches, rest, path))
    estimator = estimator.__sktransfer_restore__(model, fitted, device, fast)
    restore_history(estimator.net_, config.get("history"))
    if isinstance(config.get("n_samples_fit"), int):  # files saved before it was recorded lack it
        estimator.n_samples_fit_ = config["n_samples_fit"]
    return estimator


def _load_embedder(embedder, config, tensors, device, path):
    """An embedder: one backbone, or one per branch (tensors under ``b<i>.``)."""
    params = {**embedder.get_params(deep=False), "strategy": "head"}
    fused = "branches" in config
    if fused:
        table = branch_table(embedder.backbone)
        items = [(BranchSettings.from_params(params, branch), record, _own_tensors(tensors, f"b{i}."))
                 for i, ((_, _, branch), record) in enumerate(zip(table, config["branches"]))]
        stray = sorted(name for name in tensors
                       if not any(name.startswith(f"b{i}.") for i in range(len(config["branches"]))))
        if stray:
            raise ModelFileError(f"{path / WEIGHTS} holds tensors {stray[:3]} that no branch in {path / CONFIG} has.")
    else:
        items = [(BranchSettings.from_params(params), config, tensors)]
    built, fasts = [], []
    for settings, record, own in items:
        p = _prepared(settings, record, path, fused)
        fast = fast_path(device, embedder.precision, p.spec.modality)
        with torch.random.fork_rng(devices=[]):
            built.append(build_branch(p.settings, p.spec, None, p.adapter, device=device, fast=fast,
                                      feature_cache=embedder.feature_cache,
                                      saved=SavedBranch(record, own, path, widths=record["widths"])))
        fasts.append(fast)
    embedder.__sktransfer_restore__(built, device, fasts, [str(record["name_prefix"]) for _, record, _ in items])
    children = embedder.branches_ if fused else [(None, None, embedder)]
    for (_, _, child), (_, record, _) in zip(children, items):
        restore_inputs(child, record["inputs"])
    if fused:
        restore_inputs(embedder, config["inputs"])
    output = config.get("output", {})
    if not isinstance(output, dict):
        raise TypeError(f"output={output!r} is not a JSON object")
    if output.get("transform") is not None:
        embedder.set_output(transform=output["transform"])  # refuses what scikit-learn doesn't know
    return embedder
