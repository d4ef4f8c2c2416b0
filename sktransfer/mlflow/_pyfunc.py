"""The pyfunc side of the flavor: which columns a model takes, and requests (a DataFrame,
a list, an array, a dict of columns) turned into the estimator's ``X``."""

from __future__ import annotations

import base64
import binascii
import io
import os

import numpy as np

DEFAULT_COLUMN = {"text": "text", "image": "image"}


def input_columns(estimator, input_column=None) -> list[tuple[str, str]]:
    """``[(column, modality)]`` of the DataFrame the pyfunc takes: a fused model's named
    columns; one ``input_column`` (default ``text`` or ``image``) for one text or image
    input; the feature names (or ``x0``, ``x1``...) for numbers."""
    from sktransfer._build.fusion import branch_table, is_fused
    from sktransfer._spec.registry import get_spec

    names = getattr(estimator, "feature_names_in_", None)
    if is_fused(estimator.backbone):
        table = branch_table(estimator.backbone)
        modality = {column: get_spec(branch.backbone).modality for _, column, branch in table if column is not None}
        if modality:
            if input_column is not None:
                raise ValueError("input_column names the column of a single-input model; this fused model takes "
                                 f"its columns by name ({sorted(modality)}).")
            columns = list(names) if names is not None else list(modality)
            return [(str(c), modality.get(c, "tabular")) for c in columns]
        kind = get_spec(table[0][2].backbone).modality  # a list of backbones on one input
    else:
        kind = get_spec(estimator.backbone).modality
    if kind == "tabular":
        if input_column is not None:
            raise ValueError("input_column applies to text and image models; a tabular model takes one column per "
                             "feature (the DataFrame's names it was fitted on, or x0, x1, ...).")
        if names is not None:
            return [(str(c), "tabular") for c in names]
        return [(f"x{i}", "tabular") for i in range(int(estimator.n_features_in_))]
    if input_column is not None and (not isinstance(input_column, str) or not input_column):
        raise TypeError(f"input_column must be a non-empty string; got {input_column!r}.")
    return [(input_column or DEFAULT_COLUMN[kind], kind)]


def decode_image(value):
    """An image cell: a file path (read on the serving machine), base64 of the file's
    bytes (optionally as a ``data:image/...;base64,`` URL), raw bytes, or an image as it is."""
    from PIL import Image

    if isinstance(value, bytes):
        return Image.open(io.BytesIO(value)).convert("RGB")
    if not isinstance(value, str):
        return value  # an array or PIL image, as the estimator takes them
    if os.path.isfile(value):
        return value
    data = value.split(",", 1)[1] if value.startswith("data:") and "," in value else value
    try:
        raw = base64.b64decode(data, validate=True)
        return Image.open(io.BytesIO(raw)).convert("RGB")
    except (binascii.Error, ValueError, OSError):
        shown = value if len(value) < 80 else value[:77] + "..."
        raise ValueError(
            f"image {shown!r} is neither a file on the serving machine nor a base64-encoded image; send a path, "
            "or base64.b64encode(open(path, 'rb').read()).decode()."
        ) from None


def as_frame(model_input, columns: list[tuple[str, str]]):
    """``model_input`` as a DataFrame with the model's columns, or a ValueError that names them."""
    import pandas as pd

    names = [name for name, _ in columns]
    if isinstance(model_input, dict):
        model_input = pd.DataFrame(model_input)
    if isinstance(model_input, pd.Series):
        model_input = model_input.to_frame(name=names[0] if len(names) == 1 else model_input.name)
    if not isinstance(model_input, pd.DataFrame):
        if isinstance(model_input, str):
            raise TypeError("send a list of inputs, even for one: ['a text'], not 'a text'.")
        array = np.asarray(model_input, dtype=object if len(names) == 1 else None)
        if array.ndim == 1 and len(names) == 1:
            array = array.reshape(-1, 1)
        if array.ndim != 2 or array.shape[1] != len(names):
            raise ValueError(f"the model takes {len(names)} column(s) {names}; got an input of shape {array.shape}. "
                             "Send a DataFrame with those columns, or rows of that many values.")
        model_input = pd.DataFrame(array, columns=names)
    if list(model_input.columns) == list(range(len(names))):  # a list or array, made a frame by MLflow
        model_input = model_input.set_axis(names, axis=1)
    missing = [name for name in names if name not in model_input.columns]
    if missing:
        raise ValueError(
            f"the model takes the column(s) {names}; the request has {list(map(str, model_input.columns))}, "
            f"without {missing}. Rename the columns, or send a list for a single-input model."
        )
    return model_input[names]


def to_X(frame, columns: list[tuple[str, str]], estimator):
    """What the estimator's ``predict``/``transform`` takes, from the request's frame."""
    frame = frame.copy()
    for name, modality in columns:
        if modality == "image":
            frame[name] = [decode_image(v) for v in frame[name]]
    if any(modality != "tabular" for _, modality in columns) and len(columns) > 1:
        return frame  # a fused model: its named columns
    if columns[0][1] != "tabular":
        return list(frame[columns[0][0]])
    values = frame.to_numpy(dtype=np.float64)
    if getattr(estimator, "feature_names_in_", None) is not None:
        import pandas as pd

        return pd.DataFrame(values, columns=frame.columns)
    return values


class SktransferPyfunc:
    """What ``mlflow.pyfunc.load_model`` wraps: the estimator's ``predict`` (``transform``
    for an embedder) on DataFrames, lists and arrays."""

    def __init__(self, estimator, columns: list[tuple[str, str]]):
        self.estimator = estimator
        self.columns = columns

    def get_raw_model(self):
        return self.estimator

    def predict(self, model_input, params=None):
        X = to_X(as_frame(model_input, self.columns), self.columns, self.estimator)
        method = self.estimator.predict if hasattr(self.estimator, "predict") else self.estimator.transform
        return method(X)
