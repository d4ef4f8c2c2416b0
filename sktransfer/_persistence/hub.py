"""The Hugging Face Hub: push a model directory to a repository, and resolve
``hf://owner/name[@revision]`` to a local snapshot of one.

Uploads and downloads go through ``huggingface_hub`` (``HfApi.create_repo`` +
``upload_folder``, ``snapshot_download``), so tokens, ``HF_HUB_OFFLINE``, ``HF_HOME``
and the local cache work as they do for every Hub library. A snapshot holds only the
model's files (``config.json``, ``model.safetensors``, ``README.md``, and its ``init=``
model's in ``init/``) and goes through the same checks as any model directory: nothing
is unpickled, and a file that doesn't match its checksum is refused.
"""

from __future__ import annotations

import re
import tempfile

from sktransfer._persistence.card import CARD
from sktransfer._persistence.saved import CONFIG, INIT, WEIGHTS

HF_SCHEME = "hf://"
#: The files of a model directory, and of the init= model directories inside it (init/,
#: init/init/...: fnmatch's * matches "/"); a snapshot downloads nothing else.
MODEL_FILES = [CONFIG, WEIGHTS, CARD, *(f"{INIT}/*{name}" for name in (CONFIG, WEIGHTS, CARD))]
# The Hub's own rule for one part of a repo id (huggingface_hub's validate_repo_id checks the rest).
_PART = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_REPO_ID = re.compile(rf"^{_PART}/{_PART}$")


def _hub():
    try:
        import huggingface_hub
    except ImportError as exc:
        raise ImportError(
            "Sharing models on the Hugging Face Hub needs huggingface_hub: pip install \"sktransfer[hub]\"."
        ) from exc
    return huggingface_hub


def check_repo_id(repo_id) -> str:
    """``repo_id`` when it is ``owner/name``; else a ValueError saying so."""
    if not isinstance(repo_id, str) or not _REPO_ID.match(repo_id) or ".." in repo_id or repo_id.endswith(".git"):
        raise ValueError(
            f"repo_id must be 'owner/name' (your user or organisation name, a slash, the model's name: letters, "
            f"digits, '-', '_', '.'), e.g. 'alice/sentiment-minilm'; got {repo_id!r}."
        )
    _hub().utils.validate_repo_id(repo_id)
    return repo_id


def push_to_hub(estimator, repo_id, *, token=None, private=False, commit_message=None, **save_options):
    """Save ``estimator`` (``save_pretrained(path, **save_options)``) to a temporary directory
    and upload it to the model repository ``repo_id`` (created if missing). Returns the commit's URL."""
    from sktransfer._persistence.model_files import save_pretrained

    check_repo_id(repo_id)
    if commit_message is not None and not isinstance(commit_message, str):
        raise TypeError(f"commit_message must be a string or None; got {type(commit_message).__name__}.")
    api = _hub().HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="sktransfer-push-") as folder:
        save_pretrained(estimator, folder, overwrite=True, repo_id=repo_id, **save_options)  # refuses an unfitted estimator before any network call
        api.create_repo(repo_id, repo_type="model", private=bool(private), exist_ok=True)
        info = api.upload_folder(
            repo_id=repo_id,
            repo_type="model",
            folder_path=folder,
            commit_message=commit_message or f"Upload {type(estimator).__name__} with sktransfer",
        )
    return getattr(info, "commit_url", info)


def is_hub_uri(path) -> bool:
    return isinstance(path, str) and path.startswith(HF_SCHEME)


def parse_hub_uri(uri: str, revision=None) -> tuple[str, str | None]:
    """``(repo_id, revision)`` of ``hf://owner/name`` or ``hf://owner/name@revision``."""
    rest = uri[len(HF_SCHEME):]
    repo_id, at, pinned = rest.partition("@")
    if at and not pinned:
        raise ValueError(f"{uri!r} ends with '@' but names no revision; write hf://owner/name@<branch, tag or commit>.")
    if pinned and revision is not None and pinned != revision:
        raise ValueError(f"{uri!r} pins revision {pinned!r}, but revision={revision!r} was passed too; give one.")
    if revision is not None and not isinstance(revision, str):
        raise TypeError(f"revision must be a branch, tag or commit hash (a string); got {revision!r}.")
    try:
        check_repo_id(repo_id)
    except ValueError:
        raise ValueError(f"{uri!r} is not hf://owner/name[@revision], e.g. hf://alice/sentiment-minilm.") from None
    return repo_id, pinned or revision


def snapshot(uri: str, revision=None) -> str:
    """The local directory of the model files of ``hf://owner/name[@revision]``, from the
    cache or downloaded (unless ``HF_HUB_OFFLINE`` is set)."""
    hub = _hub()
    repo_id, revision = parse_hub_uri(uri, revision)
    from huggingface_hub.utils import LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    try:
        return hub.snapshot_download(repo_id, revision=revision, repo_type="model", allow_patterns=MODEL_FILES)
    except LocalEntryNotFoundError:
        at = f" at revision {revision!r}" if revision else ""
        if hub.constants.HF_HUB_OFFLINE:
            raise OSError(
                f"{repo_id}{at} is not in the local Hugging Face cache ({hub.constants.HF_HUB_CACHE}) and "
                "HF_HUB_OFFLINE is set, so it can't be downloaded. Unset HF_HUB_OFFLINE on a machine with internet "
                f"(or run `hf download {repo_id}` there and copy the cache), then load {uri!r} again."
            ) from None
        raise OSError(f"{repo_id}{at} could not be downloaded and is not in the local cache; check the "
                      "connection, or set HF_TOKEN for a private repository.") from None
    except (RepositoryNotFoundError, RevisionNotFoundError) as exc:
        raise OSError(f"{uri}: {exc.__class__.__name__}: the repository or revision does not exist, or is "
                      "private (log in with `hf auth login` or pass HF_TOKEN).") from None
