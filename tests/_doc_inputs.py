"""What a reader brings to the guide's snippets, and the offline world they run in.

``INPUTS`` maps the names the snippets use without defining them (``texts``, ``images``, a
fitted ``clf``...) to small real values: 12 short sentences (6 per class, enough for the
guide's ``cv=5``), 12x12 RGB images and their PNG files, a text classifier fitted on the
sentences (a two-layer BERT of width 32 with MiniLM's tokenizer; with a MiniLM one, the
ONNX snippet took 36 s here instead of 15). ``FILES`` are the files a snippet opens by name.

``offline_world`` stands in for the services the snippets reach over a network, with the
libraries' own local forms: an ``HfApi`` whose uploads land in a local Hub cache, S3 served
by fsspec's memory file system, an MLflow tracking store in a SQLite file. It also shortens
``max_epochs="auto"`` (at least 50 optimizer steps, chosen for accuracy on small data) to
2 epochs: the snippets fine-tune a dozen rows to show the calls, not to reach an accuracy.
A snippet that gives ``max_epochs`` keeps it.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import ClassVar

import numpy as np
from _hub_fakes import COMMIT, cache_model

POSITIVE = ["I love this movie", "What a great day", "Fantastic work, well done", "This is wonderful",
            "I am so happy with it", "Brilliant and delightful", "Superb quality, highly recommended",
            "Really enjoyed every minute", "An excellent, heartwarming story", "The best meal I have had"]
NEGATIVE = ["I hate this", "What a terrible day", "Awful work, badly done", "This is horrible",
            "I am so sad about it", "Dreadful and boring", "Poor quality, do not buy",
            "Really disliked every minute", "A dull, depressing story", "The worst meal I have had"]
TRAIN, TEST = slice(0, 6), slice(6, 10)


def _texts(part):
    return POSITIVE[part] + NEGATIVE[part]


def _labels(part):
    n = len(POSITIVE[part])
    return np.array(["pos"] * n + ["neg"] * n)


def _scores(part):
    n = len(POSITIVE[part])
    return np.r_[np.linspace(1.5, 3.0, n), np.linspace(-1.5, -3.0, n)]


@functools.cache
def _images(n, offset=0):
    """``n`` random 12x12 RGB uint8 images (seeded)."""
    rng = np.random.RandomState(offset)
    return list(rng.randint(0, 255, size=(n, 12, 12, 3)).astype(np.uint8))


def _png_files(directory: Path, images, stem):
    from PIL import Image

    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        paths.append(str(directory / f"{stem}{i}.png"))
        Image.fromarray(image).save(paths[-1])
    return paths


def _fitted_text_classifier(directory: Path):
    from _onnx_models import save_tiny_bert

    from sktransfer import TransferClassifier

    backbone = save_tiny_bert(directory / "tiny-bert")
    return TransferClassifier(backbone, strategy="head", max_length=32, random_state=0).fit(_texts(TRAIN), _labels(TRAIN))


def _make_spec(name):
    """A plugin's spec for ``name``: the example plugin's tiny CNN under that name."""
    import dataclasses

    import sktransfer_example.backbones

    return dataclasses.replace(sktransfer_example.backbones.register_backbones()[0], name=name)


# name -> factory(directory): the value the name holds, made once per test session (see Inputs);
# directory is where it may write files
INPUTS = {
    "texts": lambda d: _texts(TRAIN),
    "labels": lambda d: _labels(TRAIN),
    "scores": lambda d: _scores(TRAIN),
    "new_texts": lambda d: _texts(TEST),
    "X_test": lambda d: _texts(TEST),
    "y_test": lambda d: _labels(TEST),
    "tweets": lambda d: _texts(TRAIN),
    "tweet_scores": lambda d: _scores(TRAIN),
    "reviews": lambda d: _texts(TEST),
    "review_scores": lambda d: _scores(TEST),
    "captions": lambda d: _texts(TRAIN),
    "prices": lambda d: np.random.RandomState(0).lognormal(3, 1, size=12).round(2),
    "images": lambda d: _images(12),
    "new_images": lambda d: _images(4, offset=1),
    "image_paths": lambda d: _png_files(d / "photos", _images(12), "photo"),
    "new_image_paths": lambda d: _png_files(d / "new_photos", _images(4, offset=1), "new"),
    "clf": _fitted_text_classifier,
    "model": _fitted_text_classifier,
    "make_spec": lambda d: _make_spec,
    "cheap_list_of_names": lambda d: lambda: ["tinycnn"],
}

# page -> names whose value differs on that page
PAGE_INPUTS = {
    # the multi-label example's `tags` are four samples
    "guide/estimators.rst": {"images": lambda d: _images(4), "new_images": lambda d: _images(2, offset=1)},
}


class Inputs:
    """The values of INPUTS, each made once, in ``directory``."""

    def __init__(self, directory: Path):
        self.directory = directory
        self._made = {}

    def get(self, page: str, name: str):
        factory = PAGE_INPUTS.get(page, {}).get(name) or INPUTS[name]
        if factory not in self._made:
            self._made[factory] = factory(self.directory)
        return self._made[factory]

    @staticmethod
    def names(page: str) -> set:
        return set(INPUTS) | set(PAGE_INPUTS.get(page, {}))


def _reviews_csv(path: Path, part):
    import pandas as pd

    pd.DataFrame({"text": _texts(part), "label": _labels(part)}).to_csv(path, index=False)


# file name -> writer(path)
FILES = {
    "reviews-train.csv": lambda p: _reviews_csv(p, TRAIN),
    "reviews-test.csv": lambda p: _reviews_csv(p, TEST),
}


class HubInACache:
    """``huggingface_hub.HfApi`` for the snippets: ``upload_folder`` puts the folder into
    the local Hub cache as one commit, where ``snapshot_download`` (offline) finds it, at
    ``main`` and at the tag ``v1`` the guide reads back."""

    cache: Path | None = None

    def __init__(self, token=None):
        self.token = token

    def create_repo(self, repo_id, **kwargs):
        pass

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        cache_model(self.cache, repo_id, Path(folder_path), ref="main")
        (self.cache / ("models--" + repo_id.replace("/", "--")) / "refs" / "v1").write_text(COMMIT)
        return f"https://huggingface.co/{repo_id}/commit/{COMMIT}"


def _memory_s3():
    from fsspec.implementations.memory import MemoryFileSystem

    class MemoryS3(MemoryFileSystem):
        """``s3://`` in memory: s3fs's place, without a network (and without s3fs)."""

        protocol = ("s3", "s3a")
        store: ClassVar[dict] = {}  # its own files, apart from memory://
        pseudo_dirs: ClassVar[list] = [""]

        @classmethod
        def _strip_protocol(cls, path):
            return super()._strip_protocol(str(path).removeprefix("s3://").removeprefix("s3a://"))

    return MemoryS3


def offline_world(monkeypatch, directory: Path) -> None:
    """Run in ``directory``, with the Hub, S3 and MLflow's tracking server replaced as above."""
    import importlib

    import huggingface_hub
    import huggingface_hub.constants

    monkeypatch.chdir(directory)
    HubInACache.cache = directory / "hub-cache"
    monkeypatch.setattr(huggingface_hub, "HfApi", HubInACache)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(HubInACache.cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    # fsspec's table of known protocols (the package's `registry` attribute is a read-only view of it)
    monkeypatch.setitem(importlib.import_module("fsspec.registry")._registry, "s3", _memory_s3())
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{directory / 'mlflow.db'}")
    from sktransfer._training import budget

    monkeypatch.setattr(budget, "AUTO_EPOCHS", 2)
    monkeypatch.setattr(budget, "MIN_STEPS", 1)
