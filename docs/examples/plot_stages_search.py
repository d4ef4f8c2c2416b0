"""
Searching over stages at the cost of one backbone pass
======================================================

Which layers of a pretrained network transfer best depends on the task: deep stages
are specialised to the pretraining data, earlier ones are more generic. ``layers=``
picks the stages that feed the head, and with a frozen backbone
(``strategy="head"``) a fit computes *every* stage in one pass and caches each one
separately. A :class:`~sklearn.model_selection.GridSearchCV` over stage lists (and the
head's ``C``) therefore runs the backbone about once per image, however many
candidates and folds it has: the other fits solve their heads on cached features.
"""

# %%
import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import GridSearchCV, StratifiedKFold

import sktransfer
from sktransfer import TransferClassifier

# ``$SKTRANSFER_DATA``, else ``../shared/data`` beside the repository (the site's build runs
# this file from docs/examples). Nothing is downloaded.
data = Path(os.environ.get("SKTRANSFER_DATA", "../../../shared/data"))
flowers = data / "flowers12"
if not (flowers / "train").is_dir():
    raise FileNotFoundError(f"flowers12 not found at {flowers.resolve()}: "
                            "set SKTRANSFER_DATA to the folder that holds flowers12/")
X, y = [], []
for species in sorted(p.name for p in (flowers / "train").iterdir() if p.is_dir()):
    files = sorted((flowers / "train" / species).glob("*.jpg"))[:15]
    X += [str(f) for f in files]
    y += [species] * len(files)
y = np.array(y)
print(f"{len(X)} photos of {len(set(y))} species")
print("stages of efficientnet_lite0, input to output:", sktransfer.list_stages("efficientnet_lite0"))

# %%
# The search
# ----------
# Four stage lists times two values of ``C``, three folds: 24 fits and a refit. The
# feature cache is emptied first, so the search pays for its own backbone pass.
sktransfer.clear_caches("features")
grid = {
    "layers": [["blocks.2"], ["blocks.4"], ["blocks.6"], ["blocks.4", "blocks.6"]],
    "C": [0.1, 1.0],
}
search = GridSearchCV(TransferClassifier("efficientnet_lite0", strategy="head", image_size=128, random_state=0),
                      grid, cv=StratifiedKFold(3, shuffle=True, random_state=0))
start = time.perf_counter()
search.fit(X, y)
search_s = time.perf_counter() - start
n_fits = len(search.cv_results_["params"]) * 3 + 1
print(f"GridSearchCV, {n_fits} fits: {search_s:.1f} s, {search_s / n_fits:.1f} s a fit on average")
print("best:", search.best_params_, f"CV accuracy {search.best_score_:.3f}")

# %%
# For comparison, one fit that runs the backbone itself (``feature_cache=None``):
start = time.perf_counter()
TransferClassifier("efficientnet_lite0", strategy="head", image_size=128, layers=["blocks.4", "blocks.6"],
                   feature_cache=None, random_state=0).fit(X, y)
uncached_s = time.perf_counter() - start
cached_s = search_s / n_fits
print(f"one fit without the cache: {uncached_s:.1f} s; a fit of the search: {cached_s:.1f} s on average")
print(f"{n_fits} fits without the cache would take about {n_fits * uncached_s:.0f} s; the search took {search_s:.0f} s")

# %%
# The search ran the backbone over each photo once, in the first fits that met it; the
# other fits read its stages from the cache, so they cost less than a fit that runs the backbone
# itself. What a cached fit still costs is solving its head (L-BFGS on the pooled
# features) and the estimator's own set-up, which doesn't grow with the size of the
# images. With 180 photos at 128 px the backbone pass is cheap, so the saving here is
# modest; with more or larger images the pass dominates each fit, and a whole search
# approaches the cost of one pass. On Fashion-MNIST (2,000 images at 128 px;
# ``benchmarks/stages.py``, see ``benchmarks/README.md``) a search over four stage
# lists and two learning rates cost 1.28 and 1.39 times one embedding pass in two runs,
# and the last two stages together scored 0.853 against 0.847 for the default
# features. ``layers=None`` (the backbone's own final output) comes from a separate
# pass, so a grid that mixes it with stage lists costs two passes.

# %%
mean = {(tuple(p["layers"]), p["C"]): score
        for p, score in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"])}
scores = np.array([[mean[tuple(layers), c] for c in grid["C"]] for layers in grid["layers"]])
fig, ax = plt.subplots(figsize=(6, 3.5))
im = ax.imshow(scores, cmap="viridis", vmin=scores.min() - 0.05, vmax=1)
ax.set_xticks(range(len(grid["C"])), [f"C={c:g}" for c in grid["C"]])
ax.set_yticks(range(len(grid["layers"])), [" + ".join(layers) for layers in grid["layers"]])
for i in range(scores.shape[0]):
    for j in range(scores.shape[1]):
        ax.text(j, i, f"{scores[i, j]:.3f}", ha="center", va="center", color="white")
ax.set_title("Mean 3-fold CV accuracy")
fig.colorbar(im)
fig.tight_layout()
plt.show()
