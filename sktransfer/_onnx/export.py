"""``sktransfer.export_onnx``: a fitted model to ``model.onnx`` plus the JSON the predictor needs."""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from sktransfer._build.sources import unwrap_frozen
from sktransfer._estimators.base import unwrapped
from sktransfer._estimators.classes import TransferClassifier, TransferRegressor
from sktransfer._estimators.embedder import TransferEmbedder
from sktransfer._estimators.loading import load
from sktransfer._onnx.branches import GraphInputs, exported_parts
from sktransfer._onnx.config import (
    CONFIG_FILE,
    FORMAT,
    GRAPH_FILE,
    INIT_DIRECTORY,
    INIT_INPUT,
    VERSION,
    encode_array,
    is_exported,
    write_config,
)
from sktransfer._onnx.graph import ExportedModel, FinalStep
from sktransfer._onnx.signatures import as_numpy
from sktransfer._version import __version__

INSTALL_HINT = "pip install 'sktransfer[onnx]'"
QUANTIZE = (None, "int8")
#: The exported graph must reproduce the torch module this closely on example inputs.
VERIFY_TOLERANCE = 1e-4


def _classifier_outputs(estimator) -> tuple[FinalStep, dict]:
    multilabel = bool(getattr(estimator, "_multilabel", False))
    outputs = {"name": "probabilities", "classes": encode_array(estimator.classes_), "multilabel": multilabel}
    if multilabel:
        # predict: a label is present where its probability is above 0.5 (its logit above 0).
        outputs.update(threshold=0.5, indicator_dtype=np.dtype(estimator._indicator_dtype).str)
    return FinalStep("sigmoid" if multilabel else "softmax"), outputs


def _regressor_outputs(estimator) -> tuple[FinalStep, dict]:
    multiplier = np.asarray(getattr(estimator, "_target_multiplier", estimator.target_scale_), dtype=np.float64)
    mean = np.asarray(estimator.target_mean_, dtype=np.float64)
    # Targets come out in the user's units: the graph undoes the standardisation in float64.
    # target_scale is StandardScaler's (1 for constant columns): the init= offsets divide by it.
    outputs = {"name": "predictions", "target_mean": mean.tolist(), "target_multiplier": multiplier.tolist(),
               "target_scale": np.asarray(estimator.target_scale_, dtype=np.float64).tolist(),
               "y_ndim": int(estimator._y_ndim)}
    return FinalStep("affine", multiplier, mean), outputs


def _embedder_outputs(estimator) -> tuple[FinalStep, dict]:
    names = estimator.get_feature_names_out()
    return FinalStep("identity"), {"name": "features", "feature_names": [str(n) for n in names]}


def _net_module(estimator):
    return unwrapped(estimator.net_)


def _embedder_module(embedder):
    return getattr(embedder, "module_", None)  # a fused embedder has its branches' instead


# Per estimator class: the kind, its fitted module, and the last step with its JSON.
KINDS = {
    TransferClassifier: ("classifier", _net_module, _classifier_outputs),
    TransferRegressor: ("regressor", _net_module, _regressor_outputs),
    TransferEmbedder: ("embedder", _embedder_module, _embedder_outputs),
}


#: What an ``init=`` model must be for its export to go beside the model's.
INIT_SOURCES = (TransferClassifier, TransferRegressor)


def _entry(estimator) -> tuple:
    return next(entry for cls, entry in KINDS.items() if isinstance(estimator, cls))


def _fitted_model(model):
    if isinstance(model, (str, os.PathLike)):
        return load(model, device="cpu")
    kind = next((cls for cls in KINDS if isinstance(model, cls)), None)
    if kind is None:
        raise TypeError(
            f"export_onnx takes a fitted TransferClassifier, TransferRegressor or TransferEmbedder, or a model "
            f"directory written by save_pretrained; got {type(model).__name__}."
        )
    check_is_fitted(model)
    return model


def init_source(estimator):
    """The fitted ``init=`` model of ``estimator`` (through ``FrozenEstimator``), or None."""
    source = getattr(estimator, "init_", None)
    return None if source is None else unwrap_frozen(source)


def _check_exportable(estimator, what: str = "This model") -> None:
    """Refuse, before anything is written, a model whose ``init=`` chain holds a model
    that is not an sktransfer classifier or regressor (its export goes in ``init/``)."""
    source = init_source(estimator)
    if source is None:
        return
    name = type(source).__name__
    if isinstance(source, INIT_SOURCES):
        _check_exportable(source, f"Its init= model ({name})")
        return
    # A ValueError: this fitted model (a value of the right type) can't be exported.
    raise ValueError(
        f"{what} was fitted with init={name}(...): its predictions add that model's outputs, and a {name} is "
        "not a network that ONNX can hold (export_onnx exports an init= model only when it is itself a fitted "
        "TransferClassifier or TransferRegressor). Refit without init=, or with init= an sktransfer model, to "
        "export it."
    )


def _write_graph(graph, inputs: GraphInputs, file: str, output_name: str) -> None:
    example = inputs.example(2)
    with torch.no_grad():
        # One run first builds the readers of chosen stages (``layers=``: torchvision's fx
        # feature extractor), whose own fx tracing fails inside torch.export's tracing.
        graph(*example)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's notes on axis names and opset choices
            torch.onnx.export(graph, example, file, input_names=inputs.names, output_names=[output_name],
                              dynamic_shapes=(inputs.dynamic_shapes(),), dynamo=True, external_data=False,
                              verbose=False)
    except Exception as exc:
        backbones = ", ".join(type(b.module.backbone).__name__ for b in graph.branches)
        raise TypeError(
            f"torch.onnx.export could not export this model's network ({backbones} backbone): {_root_cause(exc)}. "
            "Networks with data-dependent Python control flow, or operations ONNX lacks, can't be exported."
        ) from exc


def _root_cause(exc: BaseException) -> str:
    """The innermost exception's type and first line (the exporter wraps it in pages of advice)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0].strip()[:300] if lines else ''}"


def _verify(graph, inputs: GraphInputs, file: str) -> None:
    """Run the written graph on a new batch (other sizes than the export's) against torch."""
    import onnxruntime

    session = onnxruntime.InferenceSession(file, providers=["CPUExecutionProvider"])
    for n in (3, 1):
        example = inputs.example(n)
        with torch.inference_mode():
            expected = graph(*example).numpy()
        got = session.run(None, dict(zip(inputs.names, as_numpy(example))))[0]
        if got.shape != expected.shape or not np.allclose(got, expected, rtol=VERIFY_TOLERANCE, atol=VERIFY_TOLERANCE):
            worst = float(np.max(np.abs(got - expected))) if got.shape == expected.shape else float("nan")
            raise RuntimeError(
                f"The exported graph disagrees with the torch model on an example batch of {n} (shapes {got.shape} "
                f"and {expected.shape}, largest difference {worst:.3g}); the export is not written."
            )


def _prepare_directory(path: Path, overwrite: bool) -> None:
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{str(path)!r} exists and is not a directory.")
    taken = [name for name in (CONFIG_FILE, GRAPH_FILE, INIT_DIRECTORY) if (path / name).exists()]
    if taken and not overwrite:
        raise FileExistsError(f"{str(path)!r} already holds {', '.join(taken)}; pass overwrite=True to replace them.")
    if is_exported(path / INIT_DIRECTORY):  # an earlier export's init= model: replaced, or stale
        shutil.rmtree(path / INIT_DIRECTORY)
    path.mkdir(parents=True, exist_ok=True)


def export_onnx(model, path, *, quantize=None, overwrite=False):
    """Export a fitted model to ONNX, for :func:`sktransfer.load_onnx` (onnxruntime, no torch).

    Writes ``model.onnx`` (preprocessed tensors in; probabilities, targets in the
    user's units or features out) and ``sktransfer_onnx.json`` (the preprocessing
    around the graph: tokenizer files, image size and normalisation, column scaling,
    class labels...). LoRA adapters are folded into a copy of the weights first.
    A fused model (a list of backbones, or a column mapping) is one graph taking each
    branch's inputs (named ``"b0.input_ids"``...); the JSON lists each branch's
    column and preprocessing, and the predictor splits DataFrames (or dicts of
    columns) as the estimator does.

    A model fitted with ``init=`` a fitted TransferClassifier or TransferRegressor
    (or one in a ``FrozenEstimator``) is exported with that model: its own export
    goes in ``path/init/`` (with its own ``init=`` model, if it has one, inside), and
    the graph takes one more input, ``"init_offset"``: the ``init=`` model's outputs
    as the estimator adds them to its network's (log-probabilities, or predictions in
    standardised units), which the predictor computes with the nested export.

    Parameters
    ----------
    model : TransferClassifier, TransferRegressor, TransferEmbedder, str or os.PathLike
        A fitted estimator (one backbone or several), or a model directory written
        by ``save_pretrained``.
    path : str or os.PathLike
        The directory to write (created if needed).
    quantize : {None, "int8"}, default=None
        ``"int8"``: onnxruntime's dynamic quantization of the linear layers' weights
        (MatMul and Gemm) to int8: a smaller file and, usually, faster CPU prediction,
        at some cost in accuracy.
    overwrite : bool, default=False
        Replace an export already in ``path``.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        For models that can't be exported: fitted with ``init=`` a model that is not
        an sktransfer classifier or regressor (a scikit-learn pipeline...).
    TypeError
        When torch's exporter refuses the network (a user module it can't trace).
    ImportError
        Without onnx, onnxruntime or onnxscript (``pip install 'sktransfer[onnx]'``).
    """
    if quantize not in QUANTIZE:
        raise ValueError(f"quantize must be one of {QUANTIZE}, got {quantize!r}.")
    _require_onnx()
    estimator = _fitted_model(model)
    _check_exportable(estimator)
    source = init_source(estimator)
    kind, module_of, describe = _entry(estimator)
    final, outputs = describe(estimator)
    features, combine, inputs = exported_parts(estimator, module_of(estimator))
    if source is not None:
        inputs.offsets = int(estimator.n_outputs_)
    graph = ExportedModel(features, combine, final, offsets=source is not None).eval()
    path = Path(path)
    _prepare_directory(path, overwrite)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = os.path.join(tmp, GRAPH_FILE)
        _write_graph(graph, inputs, fp32, outputs["name"])
        _verify(graph, inputs, fp32)
        if source is not None:
            # The init= model's own export, which the predictor runs for the offsets.
            export_onnx(source, path / INIT_DIRECTORY, quantize=quantize)
        if quantize == "int8":
            from sktransfer._onnx.quantize import quantize_int8

            quantize_int8(fp32, str(path / GRAPH_FILE))
        else:
            shutil.move(fp32, path / GRAPH_FILE)  # the temporary directory may be on another file system
    init = None if source is None else {"path": INIT_DIRECTORY, "input": INIT_INPUT}
    write_config(path, {
        "format": FORMAT,
        "version": 1 if init is None else VERSION,  # what an older reader can run is still format 1
        "kind": kind,
        "graph": GRAPH_FILE,
        "backbone": _backbone_names(estimator, inputs),
        "quantize": quantize,
        "inputs": inputs.config(path),
        "outputs": outputs,
        "init": init,
        "sktransfer_version": __version__,
    })
    return path


def _backbone_names(estimator, inputs: GraphInputs):
    """The backbone's name, or each branch's for a fused model."""
    if inputs.fused:
        return [b.name for b in inputs.branches]
    return getattr(getattr(estimator, "spec_", None), "name", None)


def _require_onnx() -> None:
    missing = [name for name in ("onnx", "onnxruntime", "onnxscript") if not _importable(name)]
    if missing:
        raise ImportError(f"export_onnx needs {', '.join(missing)}: {INSTALL_HINT}")


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None
