"""An MLflow flavor for sktransfer estimators (``pip install "sktransfer[mlflow]"``).

``save_model`` / ``log_model`` write an MLflow model whose artifact is the estimator's
model directory (``save_pretrained``: JSON and safetensors, never a pickle), with a
signature, an input example when given, and a ``python_function`` flavor, so that
``mlflow.pyfunc.load_model(uri).predict(df)`` and ``mlflow models serve`` work.
``load_model`` gives the estimator back.

The pyfunc takes a pandas DataFrame (a single-input model: one column, ``text`` or
``image`` unless ``input_column`` names it, or one column per feature; a fused model:
its named columns), a list, an array or a dict of columns. Image cells are file paths
on the serving machine or base64-encoded image files.

Importing this module does not import mlflow; each function does, and says which
extra to install when it is missing.
"""

from __future__ import annotations

import os

FLAVOR_NAME = "sktransfer"
DATA = "model"  # the model directory, under the MLflow model's root


def _mlflow():
    try:
        import mlflow
    except ImportError as exc:
        raise ImportError('The sktransfer MLflow flavor needs mlflow: pip install "sktransfer[mlflow]".') from exc
    return mlflow


def get_default_pip_requirements(estimator=None) -> list[str]:
    """sktransfer, and the plugins that provide ``estimator``'s backbones."""
    from sktransfer._persistence.records import distribution_version
    from sktransfer._version import __version__

    requirements = [f"sktransfer=={__version__}"]
    if estimator is not None:
        from sktransfer._build.fusion import branch_table, is_fused
        from sktransfer._spec.registry import get_spec

        backbones = ([b.backbone for _, _, b in branch_table(estimator.backbone)] if is_fused(estimator.backbone)
                     else [estimator.backbone])
        for backbone in backbones:
            spec = get_spec(backbone)
            version = distribution_version(spec.distribution)
            if spec.distribution not in ("", "sktransfer") and version:
                requirements.append(f"{spec.distribution}=={version}")
    return sorted(set(requirements))


def save_model(sk_model, path, *, input_column=None, signature=None, input_example=None, mlflow_model=None,
               pip_requirements=None, extra_pip_requirements=None, metadata=None):
    """Save a fitted estimator as an MLflow model in the new directory ``path``.

    Parameters
    ----------
    sk_model : fitted TransferClassifier, TransferRegressor or TransferEmbedder
    path : str or os.PathLike
        A directory that doesn't exist yet.
    input_column : str, optional
        The request column of a text or image model (default ``"text"`` or ``"image"``).
    signature : mlflow.models.ModelSignature, optional
        Default: inferred from ``input_example`` and the model's predictions on it, or,
        without an example, the model's input columns.
    input_example : DataFrame, list or array, optional
        A few inputs, stored with the model and shown by MLflow.
    mlflow_model : mlflow.models.Model, optional
        The model to add the flavors to (``log_model`` passes it).
    pip_requirements, extra_pip_requirements : list of str, optional
        As in MLflow's flavors (default: :func:`get_default_pip_requirements`).
    metadata : dict, optional
    """
    from sktransfer.mlflow._flavor import save

    return save(sk_model, os.fspath(path), input_column=input_column, signature=signature,
                input_example=input_example, mlflow_model=mlflow_model, pip_requirements=pip_requirements,
                extra_pip_requirements=extra_pip_requirements, metadata=metadata)


def log_model(sk_model, name=None, *, artifact_path=None, input_column=None, signature=None, input_example=None,
              registered_model_name=None, pip_requirements=None, extra_pip_requirements=None, metadata=None,
              **kwargs):
    """Log a fitted estimator as an MLflow model of the active run (``mlflow.models.Model.log``).

    Parameters
    ----------
    sk_model : fitted estimator
    name : str, optional
        The logged model's name (MLflow 3; ``artifact_path`` in MLflow 2).
    artifact_path, registered_model_name, **kwargs
        Passed to ``mlflow.models.Model.log``.
    input_column, signature, input_example, pip_requirements, extra_pip_requirements, metadata
        As in :func:`save_model`.

    Returns
    -------
    mlflow.models.model.ModelInfo
    """
    import sys

    _mlflow()
    from mlflow.models import Model

    return Model.log(artifact_path=artifact_path, name=name, flavor=sys.modules[__name__], sk_model=sk_model,
                     input_column=input_column, signature=signature, input_example=input_example,
                     registered_model_name=registered_model_name, pip_requirements=pip_requirements,
                     extra_pip_requirements=extra_pip_requirements, metadata=metadata, **kwargs)


def load_model(model_uri, dst_path=None, *, device="auto"):
    """The estimator of an MLflow model saved by this flavor (``runs:/...``, ``models:/...``,
    a local path...), rebuilt by :func:`sktransfer.load` (never unpickles)."""
    from sktransfer.mlflow._flavor import load_estimator

    return load_estimator(model_uri, dst_path, device=device)


def _load_pyfunc(path, model_config=None):
    """MLflow's ``python_function`` loader: ``path`` is the model directory (``data``)."""
    from sktransfer.mlflow._flavor import load_pyfunc

    return load_pyfunc(path)


__all__ = ["FLAVOR_NAME", "get_default_pip_requirements", "load_model", "log_model", "save_model"]
