"""Saving and loading MLflow models of the flavor, following MLflow's custom-flavor
conventions (as its scikit-learn flavor does): the artifact in ``data``, the flavor's
configuration and a ``python_function`` flavor in ``MLmodel``, the environment files
next to it."""

from __future__ import annotations

import os

import yaml

from sktransfer.mlflow import DATA, FLAVOR_NAME, _mlflow, get_default_pip_requirements
from sktransfer.mlflow._pyfunc import SktransferPyfunc, as_frame, input_columns


def _signature(wrapper, columns, input_example):
    """``(example frame or None, signature)``. A fused model's inputs are its named columns;
    a single-input model's are positional, so that MLflow passes lists and arrays on (it
    turns them into frames with columns 0, 1...), and the wrapper checks a frame's names."""
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types import ColSpec, Schema

    types = {"tabular": "double", "text": "string", "image": "string"}
    named = any(modality != "tabular" for _, modality in columns) and len(columns) > 1
    inputs = Schema([ColSpec(types[modality], name if named else None) for name, modality in columns])
    if input_example is None:
        return None, ModelSignature(inputs=inputs)
    frame = as_frame(input_example, columns)
    return frame, ModelSignature(inputs=inputs, outputs=infer_signature(frame, wrapper.predict(frame)).outputs)


def save(estimator, path, *, input_column, signature, input_example, mlflow_model, pip_requirements,
         extra_pip_requirements, metadata):
    _mlflow()
    import mlflow.pyfunc
    from mlflow.models import Model
    from mlflow.models.model import MLMODEL_FILE_NAME
    from mlflow.models.utils import _save_example
    from mlflow.utils.environment import (
        _CONDA_ENV_FILE_NAME,
        _CONSTRAINTS_FILE_NAME,
        _PYTHON_ENV_FILE_NAME,
        _REQUIREMENTS_FILE_NAME,
        _process_pip_requirements,
        _PythonEnv,
    )
    from mlflow.utils.model_utils import _validate_and_prepare_target_save_path
    from sklearn.utils.validation import check_is_fitted

    from sktransfer._version import __version__

    check_is_fitted(estimator)
    columns = input_columns(estimator, input_column)
    _validate_and_prepare_target_save_path(path)  # refuses a directory that holds files
    estimator.save_pretrained(os.path.join(path, DATA))
    mlflow_model = Model() if mlflow_model is None else mlflow_model
    example, inferred = _signature(SktransferPyfunc(estimator, columns), columns, input_example)
    mlflow_model.signature = signature if signature is not None else inferred
    if example is not None:
        _save_example(mlflow_model, example, path)
    if metadata is not None:
        mlflow_model.metadata = metadata
    conda_env, requirements, constraints = _process_pip_requirements(
        get_default_pip_requirements(estimator), pip_requirements, extra_pip_requirements)
    mlflow.pyfunc.add_to_model(mlflow_model, loader_module="sktransfer.mlflow", data=DATA,
                               conda_env=_CONDA_ENV_FILE_NAME, python_env=_PYTHON_ENV_FILE_NAME)
    mlflow_model.add_flavor(FLAVOR_NAME, data=DATA, sktransfer_version=__version__, estimator=type(estimator).__name__,
                            columns=[{"name": name, "modality": modality} for name, modality in columns])
    mlflow_model.save(os.path.join(path, MLMODEL_FILE_NAME))
    with open(os.path.join(path, _CONDA_ENV_FILE_NAME), "w") as f:
        yaml.safe_dump(conda_env, stream=f, default_flow_style=False)
    if constraints:
        with open(os.path.join(path, _CONSTRAINTS_FILE_NAME), "w") as f:
            f.write("\n".join(constraints))
    with open(os.path.join(path, _REQUIREMENTS_FILE_NAME), "w") as f:
        f.write("\n".join(requirements))
    _PythonEnv.current().to_yaml(os.path.join(path, _PYTHON_ENV_FILE_NAME))
    return mlflow_model


def _flavor_conf(root: str) -> dict:
    from mlflow.utils.model_utils import _get_flavor_configuration

    return _get_flavor_configuration(model_path=root, flavor_name=FLAVOR_NAME)


def load_estimator(model_uri, dst_path=None, *, device="auto"):
    _mlflow()
    from mlflow.tracking.artifact_utils import _download_artifact_from_uri

    from sktransfer import load

    root = _download_artifact_from_uri(artifact_uri=str(model_uri), output_path=dst_path)
    return load(os.path.join(root, _flavor_conf(root)["data"]), device=device)


def load_pyfunc(data_path):
    from sktransfer import load

    root = os.path.dirname(os.path.abspath(data_path))
    columns = [(c["name"], c["modality"]) for c in _flavor_conf(root)["columns"]]
    return SktransferPyfunc(load(data_path), columns)
