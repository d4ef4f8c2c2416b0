"""``save_pretrained`` and ``push_to_hub``: a fitted estimator as a model directory with
its model card, locally or in a Hugging Face Hub repository."""

from __future__ import annotations

from sktransfer._persistence import hub
from sktransfer._persistence.model_files import save_pretrained


class SharingMixin:
    """The estimators' ``save_pretrained`` and ``push_to_hub``."""

    def save_pretrained(self, path, *, overwrite=False, metrics=None, metrics_dataset=None, card="auto"):
        """Write the fitted model to the directory ``path``, loadable with
        :func:`sktransfer.load` without unpickling.

        The directory holds ``config.json`` (parameters and fitted attributes),
        ``model.safetensors`` (the tensors; a frozen pretrained backbone is stored as a
        reference plus a hash, not again) and ``README.md``, a Hugging Face model card.
        A model fitted with ``init=`` a TransferClassifier or TransferRegressor holds
        that model's own directory in ``init/``; any other ``init=`` is refused
        (a ``ValueError``: pickle such a model).

        Parameters
        ----------
        path : str or os.PathLike
        overwrite : bool, default=False
            Replace the files of a directory that holds some.
        metrics : dict of str to float, optional
            Scores you measured, e.g. ``{"accuracy": 0.91}``; the card lists them (and
            its ``model-index``) with the last epoch's validation scores fit recorded.
            The card holds no other number.
        metrics_dataset : str, optional
            What ``metrics`` were measured on, e.g. ``"VADER tweets, held-out 20%"``.
        card : {"auto", "new"} or huggingface_hub.ModelCard, default="auto"
            ``"auto"`` keeps the ``README.md`` a loaded model came with (edits included)
            when the model is unchanged and no ``metrics`` are given, and writes a new
            card otherwise; ``"new"`` always writes a new one; a ``ModelCard`` is
            written as it is.

        Returns
        -------
        pathlib.Path
        """
        return save_pretrained(self, path, overwrite=overwrite, metrics=metrics, metrics_dataset=metrics_dataset,
                               card=card)

    def push_to_hub(self, repo_id, *, token=None, private=False, commit_message=None, metrics=None,
                    metrics_dataset=None, card="auto"):
        """Upload the fitted model to the Hugging Face Hub model repository ``repo_id``.

        The model is saved with :meth:`save_pretrained` to a temporary directory, the
        repository is created if missing (``HfApi.create_repo``) and the directory
        uploaded as one commit (``HfApi.upload_folder``). Load it back anywhere with
        ``sktransfer.load("hf://owner/name")``.

        Parameters
        ----------
        repo_id : str
            ``"owner/name"``: your user or organisation, and the model's name.
        token : str, optional
            A Hub token with write access; default: the one ``hf auth login`` stored,
            or ``HF_TOKEN``.
        private : bool, default=False
            Create the repository as private (an existing one keeps its visibility).
        commit_message : str, optional
        metrics, metrics_dataset, card
            As in :meth:`save_pretrained`.

        Returns
        -------
        str
            The URL of the commit.
        """
        return hub.push_to_hub(self, repo_id, token=token, private=private,
                               commit_message=commit_message, metrics=metrics, metrics_dataset=metrics_dataset,
                               card=card)
