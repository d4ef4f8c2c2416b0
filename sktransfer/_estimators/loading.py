"""``sktransfer.load``: a model directory back to its estimator (never unpickles)."""

from __future__ import annotations

from sktransfer._estimators.classes import TransferClassifier, TransferRegressor
from sktransfer._estimators.embedder import TransferEmbedder
from sktransfer._persistence import model_files

ESTIMATORS = {cls.__name__: cls for cls in (TransferClassifier, TransferRegressor, TransferEmbedder)}


def load(path, *, device="auto"):
    """Rebuild an estimator written by :meth:`save_pretrained` (never unpickles).

    Parameters
    ----------
    path : str or os.PathLike
        The model directory.
    device : str or torch.device, default="auto"
        Where the model predicts: ``"auto"`` picks CUDA when available. The
        estimator's ``device`` parameter stays as it was saved (it applies to refits).

    Returns
    -------
    TransferClassifier, TransferRegressor or TransferEmbedder
        Fitted, predicting (or transforming) as the saved one did.
    """
    return model_files.load(path, device=device, classes=ESTIMATORS)
