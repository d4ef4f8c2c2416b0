"""``sktransfer.load_onnx``: an exported model as a predictor that needs no torch.

Only onnxruntime, numpy, Pillow and ``tokenizers`` are imported (the exported
directory's ``sktransfer_onnx.json`` says what to do around the graph), so that
a serving process can leave torch, transformers and skorch out.

A model fitted with ``init=`` holds its ``init=`` model's export in ``init/``: the
predictor loads it too, turns its answers into offsets with the estimators' own
(numpy-only) conversion, and feeds them to the graph, which adds them before its last
step (softmax, sigmoid, target scaling).
"""

from __future__ import annotations

import os

import numpy as np

from sktransfer._estimators.init_outputs import class_scores, source_offsets, standardised_targets
from sktransfer._onnx.config import decode_array, read_config
from sktransfer._onnx.fused_inputs import inputs_for
from sktransfer.exceptions import InvalidInputError

INSTALL_HINT = "pip install 'sktransfer[onnx]'"
#: Samples encoded (tokenised) and ordered at a time.
SLICE = 4096


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError as exc:
        raise ModuleNotFoundError(f"Predicting from an exported ONNX model needs onnxruntime: {INSTALL_HINT}") from exc
    return onnxruntime


class OnnxModel:
    """The graph, its inputs' preprocessing and batching; subclasses give the estimator's methods.

    Parameters
    ----------
    path : str
        The exported directory.
    config : dict
        Its ``sktransfer_onnx.json``.
    batch_size : int
        Samples per run of the graph.
    session_options : onnxruntime.SessionOptions or None

    Attributes
    ----------
    init_ : OnnxClassifier, OnnxRegressor or None
        The exported ``init=`` model, for a model fitted with one.
    """

    #: The conversion of the ``init=`` model's answers to offsets (the estimator's).
    _source_outputs = None

    def __init__(self, path: str, config: dict, batch_size: int = 32, session_options=None):
        ort = _onnxruntime()
        self.path, self.config, self.batch_size = path, config, batch_size
        self.inputs = inputs_for(config["inputs"], path)
        self.session = ort.InferenceSession(os.path.join(path, config["graph"]), sess_options=session_options,
                                            providers=["CPUExecutionProvider"])
        self.backbone = config.get("backbone")
        self.quantize = config.get("quantize")
        init = config.get("init")
        self.init_ = None if init is None else load_onnx(os.path.join(path, init["path"]), batch_size=batch_size,
                                                         session_options=session_options)
        self._init_input = None if init is None else init["input"]

    def _fitted_outputs(self) -> dict:
        """What the conversion of the ``init=`` model's answers reads (the estimator's fitted attributes)."""
        raise NotImplementedError

    def _run(self, X) -> np.ndarray:
        """The graph's output for every sample of ``X``, in ``X``'s order."""
        if X is None:
            raise InvalidInputError("X is None: pass the samples (an array, or a list of texts or images).")
        samples = self.inputs.check(X)
        if len(samples) == 0:
            raise InvalidInputError("Found array with 0 sample(s): X holds no samples. Pass at least one sample.")
        offsets = None
        if self.init_ is not None:  # the init= model checks X itself, and sees it as the user passed it
            offsets = source_offsets(self._source_outputs, self.init_, X, len(samples), self._fitted_outputs())
        # Slices of whole batches bound the memory of encoded samples (tokens) for a long X.
        step = self.batch_size * max(1, SLICE // self.batch_size)
        out = np.concatenate([self._run_slice(samples[start: start + step], start,
                                              None if offsets is None else offsets[start: start + step])
                              for start in range(0, len(samples), step)])
        bad = ~np.isfinite(out).all(axis=1)
        if bad.any():
            raise ValueError(f"The model gave NaN or infinite outputs for rows {np.flatnonzero(bad)[:5].tolist()}.")
        return out

    def _run_slice(self, samples, offset: int, init_offsets=None) -> np.ndarray:
        """One slice, batch by batch in the inputs' order (texts by length), rows put back in order;
        ``init_offsets``: the slice's rows of the ``init=`` model's offsets."""
        items = self.inputs.encode(samples)
        order = self.inputs.order(items)
        positions = np.arange(len(samples)) if order is None else order
        outputs = []
        for start in range(0, len(samples), self.batch_size):
            rows = positions[start: start + self.batch_size]
            feed = self.inputs.batch(items, rows, offset)
            if init_offsets is not None:
                feed[self._init_input] = init_offsets[rows]
            outputs.append(self.session.run(None, feed)[0])
        out = np.concatenate(outputs)
        return out if order is None else out[np.argsort(order)]

    def __repr__(self):
        init = "" if self.init_ is None else f", init={self.init_!r}"
        return f"{type(self).__name__}({self.path!r}, backbone={self.backbone!r}, quantize={self.quantize!r}{init})"


class OnnxClassifier(OnnxModel):
    """An exported :class:`~sktransfer.TransferClassifier`: ``predict``, ``predict_proba``,
    ``predict_log_proba``, ``classes_``."""

    _source_outputs = staticmethod(class_scores)

    def __init__(self, path, config, batch_size=32, session_options=None):
        super().__init__(path, config, batch_size, session_options)
        outputs = config["outputs"]
        self.classes_ = decode_array(outputs["classes"])
        self.multilabel_ = bool(outputs["multilabel"])
        self._threshold = outputs.get("threshold", 0.5)
        self._indicator_dtype = np.dtype(outputs["indicator_dtype"]) if self.multilabel_ else None

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_`` (each label's own for multi-label).

        Returns
        -------
        ndarray of shape (n_samples, n_classes), float64
        """
        return self._run(X)

    def predict_log_proba(self, X) -> np.ndarray:
        """Log of :meth:`predict_proba` (``-inf`` where a probability is 0).

        Returns
        -------
        ndarray of shape (n_samples, n_classes), float64
        """
        with np.errstate(divide="ignore"):
            return np.log(self._run(X))

    def predict(self, X) -> np.ndarray:
        """The most probable class per sample; for multi-label, the indicator matrix.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_labels)
        """
        proba = self._run(X)
        if self.multilabel_:
            return (proba > self._threshold).astype(self._indicator_dtype)
        return self.classes_[np.argmax(proba, axis=1)]

    def _fitted_outputs(self) -> dict:
        return {"n_outputs_": len(self.classes_), "classes_": self.classes_, "_multilabel": self.multilabel_}


class OnnxRegressor(OnnxModel):
    """An exported :class:`~sktransfer.TransferRegressor`: ``predict``."""

    _source_outputs = staticmethod(standardised_targets)

    def predict(self, X) -> np.ndarray:
        """Predicted targets in the original units.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs), float64
        """
        out = self._run(X)
        return out.ravel() if self.config["outputs"]["y_ndim"] == 1 else out

    def _fitted_outputs(self) -> dict:
        outputs = self.config["outputs"]
        mean = np.asarray(outputs["target_mean"], dtype=np.float64)
        return {"n_outputs_": len(mean), "target_mean_": mean,
                "target_scale_": np.asarray(outputs["target_scale"], dtype=np.float64)}


class OnnxEmbedder(OnnxModel):
    """An exported :class:`~sktransfer.TransferEmbedder`: ``transform``, ``get_feature_names_out``."""

    def __init__(self, path, config, batch_size=32, session_options=None):
        super().__init__(path, config, batch_size, session_options)
        self.n_features_out_ = len(config["outputs"]["feature_names"])

    def transform(self, X) -> np.ndarray:
        """The backbone's features, one row per sample.

        Returns
        -------
        ndarray of shape (n_samples, n_features_out_), float32
        """
        return self._run(X)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.asarray(self.config["outputs"]["feature_names"], dtype=object)


PREDICTORS = {"classifier": OnnxClassifier, "regressor": OnnxRegressor, "embedder": OnnxEmbedder}


def load_onnx(path, *, batch_size=32, session_options=None):
    """Load a directory written by :func:`sktransfer.export_onnx` for CPU prediction with onnxruntime.

    Needs only onnxruntime, numpy, Pillow and ``tokenizers`` (``pip install
    'sktransfer[onnx]'``); torch is never imported.

    Parameters
    ----------
    path : str or os.PathLike
        The exported directory.
    batch_size : int, default=32
        Samples per run of the graph.
    session_options : onnxruntime.SessionOptions, default=None
        E.g. to set ``intra_op_num_threads``.

    Returns
    -------
    OnnxClassifier, OnnxRegressor or OnnxEmbedder
        With the estimator's prediction methods: ``predict``, ``predict_proba``,
        ``predict_log_proba`` and ``classes_`` for a classifier, ``predict`` for a
        regressor, ``transform`` for an embedder, taking the same inputs (texts, image
        arrays, PIL images, file paths, 2-D arrays or DataFrames). A model exported
        with its ``init=`` model loads that one too (``init_``).
    """
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
    path = os.fspath(path)
    config = read_config(path)
    return PREDICTORS[config["kind"]](path, config, batch_size, session_options)
