"""``sktransfer.load``: a model directory, or a Hugging Face Hub repository, back to its
estimator (never unpickles)."""

from __future__ import annotations

from sktransfer._estimators.classes import TransferClassifier, TransferRegressor
from sktransfer._estimators.embedder import TransferEmbedder
from sktransfer._persistence import hub, model_files

ESTIMATORS = {cls.__name__: cls for cls in (TransferClassifier, TransferRegressor, TransferEmbedder)}


def load(path, *, device="auto", revision=None):
    """Rebuild an estimator written by :meth:`save_pretrained` (never unpickles).

    Parameters
    ----------
    path : str or os.PathLike
        The model directory, or ``"hf://owner/name"`` (``"hf://owner/name@revision"``)
        for a Hugging Face Hub repository written by :meth:`push_to_hub`: its files come
        from the local cache or are downloaded with ``huggingface_hub.snapshot_download``
        (nothing is downloaded when ``HF_HUB_OFFLINE`` is set), then checked like a
        local directory's.
    device : str or torch.device, default="auto"
        Where the model predicts: ``"auto"`` picks CUDA when available. The
        estimator's ``device`` parameter stays as it was saved (it applies to refits).
    revision : str, optional
        With ``hf://``: the branch, tag or commit hash to load (default: ``main``).

    Returns
    -------
    TransferClassifier, TransferRegressor or TransferEmbedder
        Fitted, predicting (or transforming) as the saved one did.
    """
    if hub.is_hub_uri(path):
        path = hub.snapshot(path, revision)
    elif revision is not None:
        raise ValueError(f"revision={revision!r} applies to hf://owner/name models; {path!r} is a local path.")
    return model_files.load(path, device=device, classes=ESTIMATORS)
