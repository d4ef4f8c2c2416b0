"""
Photos of flowers: a frozen backbone against fine-tuning
========================================================

``flowers12`` holds photos of 12 flower species in one folder per class. Photos are
close to ImageNet, where EfficientNet-Lite0 was trained, so its frozen features already
separate the species well. This example trains on a small subset (10 photos per
species at 128 px, so that it runs in a minute on a CPU) and compares the frozen
backbone (``strategy="head"``) with fine-tuning the whole network (``strategy="full"``,
the default). Images are given as file paths and read lazily, batch by batch.
"""

# %%
# The data
# --------
# The examples look for their data in ``$SKTRANSFER_DATA``, else in ``../shared/data``
# beside the repository root; nothing is ever downloaded.
import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from sktransfer import TransferClassifier

# ``$SKTRANSFER_DATA``, else ``../shared/data`` beside the repository (the site's build runs
# this file from docs/examples). Nothing is downloaded.
data = Path(os.environ.get("SKTRANSFER_DATA", "../../../shared/data"))
flowers = data / "flowers12"
if not (flowers / "train").is_dir():
    raise FileNotFoundError(f"flowers12 not found at {flowers.resolve()}: "
                            "set SKTRANSFER_DATA to the folder that holds flowers12/")


def image_folder(folder, per_class):
    """The first ``per_class`` image paths of each class sub-folder, and their labels."""
    paths, labels = [], []
    for species in sorted(p.name for p in folder.iterdir() if p.is_dir()):
        files = sorted((folder / species).glob("*.jpg"))[:per_class]
        paths += [str(f) for f in files]
        labels += [species] * len(files)
    return paths, np.array(labels)


X_train, y_train = image_folder(flowers / "train", per_class=10)
X_test, y_test = image_folder(flowers / "test", per_class=5)
print(f"{len(X_train)} training and {len(X_test)} test photos of {len(set(y_train))} species")

# %%
# Frozen against fine-tuned
# -------------------------
# Both use the same backbone, image size and seed. The frozen model computes each
# photo's features once and solves its linear head to convergence; the fine-tuned one
# first solves that head on the frozen features (``head_epochs="auto"``), then trains
# every layer for ``max_epochs`` passes.
settings = {"frozen (strategy='head')": {"strategy": "head"},
            "fine-tuned (strategy='full', 3 epochs)": {"strategy": "full", "max_epochs": 3}}
results = {}
for name, params in settings.items():
    start = time.perf_counter()
    clf = TransferClassifier("efficientnet_lite0", image_size=128, random_state=0, **params)
    clf.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    results[name] = (clf, clf.score(X_test, y_test), seconds)
    print(f"{name}: test accuracy {results[name][1]:.3f}, fit {seconds:.0f} s")

(frozen, frozen_acc, frozen_s), (tuned, tuned_acc, tuned_s) = results.values()
print(f"fine-tuning: {100 * (tuned_acc - frozen_acc):+.1f} accuracy points for {tuned_s / frozen_s:.0f}x the fit time")

# %%
# The frozen backbone is already strong on a domain this close to ImageNet, at a
# fraction of the cost; fine-tuning buys the rest, and its price grows with every
# epoch and photo. On the full set (720 training and 240 test photos at 224 px) the
# frozen head scored 0.967 and fine-tuning (10 epochs from a random head) 0.988
# (``benchmarks/flowers12.py``, see ``benchmarks/README.md``).

fig, ax = plt.subplots(figsize=(6, 2.5))
names = list(results)
ax.barh(names, [results[n][1] for n in names], color=["tab:blue", "tab:orange"])
for i, n in enumerate(names):
    ax.text(results[n][1] - 0.02, i, f"{results[n][1]:.3f}  ({results[n][2]:.0f} s)",
            va="center", ha="right", color="white")
ax.set_xlim(0, 1)
ax.set_xlabel("test accuracy (60 photos)")
fig.tight_layout()
plt.show()

# %%
# Some test photos and the frozen model's answers
# -----------------------------------------------
clf = results["frozen (strategy='head')"][0]
proba = clf.predict_proba(X_test)
picks = np.arange(0, len(X_test), 5)[:8]
fig, axes = plt.subplots(2, 4, figsize=(9, 5))
for ax, i in zip(axes.ravel(), picks):
    ax.imshow(Image.open(X_test[i]).convert("RGB"))
    predicted = clf.classes_[proba[i].argmax()]
    ax.set_title(f"{predicted} ({proba[i].max():.2f})\ntrue: {y_test[i]}", fontsize=9,
                 color="black" if predicted == y_test[i] else "red")
    ax.axis("off")
fig.tight_layout()
plt.show()
