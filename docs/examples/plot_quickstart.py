"""
Getting started: digits with a pretrained image backbone
========================================================

The smallest complete task: scikit-learn's bundled 8x8 digits, classified with a frozen
EfficientNet-Lite0 (``strategy="head"``) and compared with logistic regression on the
raw pixels. ``TransferClassifier`` is an ordinary scikit-learn estimator: it takes
numpy arrays and plain labels and has ``fit``, ``predict``, ``predict_proba`` and
``score``.
"""

# %%
# Data: 300 training and 500 test digits
# --------------------------------------
import time

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import ConfusionMatrixDisplay
from sklearn.model_selection import train_test_split

from sktransfer import TransferClassifier

digits = load_digits()
X = digits.images / 16.0  # floats in [0, 1]: sktransfer rescales them to 0..255 pixels
y = digits.target
X_train, X_test, y_train, y_test = train_test_split(X, y, train_size=300, test_size=500, stratify=y, random_state=0)
print("training images:", X_train.shape, "test images:", X_test.shape)

# %%
# A baseline on the raw pixels
# ----------------------------
baseline = LogisticRegression(max_iter=2000).fit(X_train.reshape(len(X_train), -1), y_train)
baseline_acc = baseline.score(X_test.reshape(len(X_test), -1), y_test)
print(f"pixels + LogisticRegression: test accuracy {baseline_acc:.3f}")

# %%
# A frozen pretrained backbone with a new head
# --------------------------------------------
# ``strategy="head"`` keeps the ImageNet weights as they are and trains only a linear
# head on their features. The 8x8 images are resized to ``image_size`` pixels, made
# 3-channel and normalised for the backbone.
start = time.perf_counter()
clf = TransferClassifier("efficientnet_lite0", strategy="head", image_size=64, random_state=0)
clf.fit(X_train, y_train)
fit_s = time.perf_counter() - start
frozen_acc = clf.score(X_test, y_test)
print(f"efficientnet_lite0, frozen: test accuracy {frozen_acc:.3f} (fit {fit_s:.1f} s)")
proba = clf.predict_proba(X_test[:5])
for label, p in zip(y_test[:5], proba):
    print(f"true {label}: predicted {clf.classes_[p.argmax()]} with probability {p.max():.3f}")

# %%
# Where it goes wrong
# -------------------
fig, ax = plt.subplots(figsize=(5, 5))
ConfusionMatrixDisplay.from_predictions(y_test, clf.predict(X_test), ax=ax, colorbar=False)
ax.set_title(f"Frozen efficientnet_lite0 on digits (accuracy {frozen_acc:.3f})")
plt.show()

# %%
# ImageNet features of upscaled 8x8 digits are far from what the backbone was trained
# on, so a frozen backbone need not beat the raw pixels here. Fine-tuning
# (``strategy="full"``, the default) adapts the backbone to such a far domain: see
# :ref:`sphx_glr_auto_examples_plot_flowers_frozen_vs_finetuned.py` for both on
# photos.
