"""Offline stand-ins for the Hugging Face Hub: an ``HfApi`` that records what it would
upload, and a local cache laid out as ``snapshot_download`` writes it."""

import shutil
from pathlib import Path
from typing import ClassVar

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class RecordingHfApi:
    """Records ``create_repo`` and ``upload_folder`` calls, and copies each uploaded folder
    (the caller's temporary directory is gone by the time the test looks)."""

    calls: ClassVar[list] = []
    destination = None  # where the test wants the uploaded folder copied


    def __init__(self, token=None):
        self.token = token

    def create_repo(self, repo_id, **kwargs):
        type(self).calls.append(("create_repo", repo_id, {**kwargs, "token": self.token}))

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        shutil.copytree(folder_path, type(self).destination)
        type(self).calls.append(("upload_folder", repo_id, kwargs))
        return f"https://huggingface.co/{repo_id}/commit/{COMMIT}"


def cache_model(cache: Path, repo_id: str, model_dir: Path, commit: str = COMMIT, ref: str | None = "main") -> Path:
    """Put the files of ``model_dir`` into ``cache`` as the Hub's snapshot ``commit`` of
    ``repo_id`` (with ``refs/<ref>`` pointing at it); returns the snapshot folder."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    shutil.copytree(model_dir, snapshot)
    if ref is not None:
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / ref).write_text(commit)
    return snapshot
