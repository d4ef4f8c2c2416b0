"""
Calibrated probabilities and a reliability diagram
==================================================

A classifier's ``predict_proba`` is calibrated when, among the texts it gives a
probability of 0.8, about 80 % are in that class. scikit-learn's
:class:`~sklearn.calibration.CalibratedClassifierCV` works around any classifier, a
``TransferClassifier`` included. ``method="temperature"`` fits one temperature that
rescales the logits of all classes; with a frozen backbone, the cross-validation folds
read their features from the cache, so calibration costs one backbone pass.

The task is positive against negative VADER tweets, learnt from 300 of them. Three
models are compared: the default frozen head (``C=1.0``, the L2 penalty of
``LogisticRegression``), a head with almost no penalty (``C=1000``), which fits the
300 tweets too closely and becomes overconfident, and that head calibrated.
"""

# %%
import html
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.calibration import CalibratedClassifierCV, CalibrationDisplay
from sklearn.metrics import brier_score_loss, log_loss

from sktransfer import TransferClassifier

# ``$SKTRANSFER_DATA``, else ``../shared/data`` beside the repository (the site's build runs
# this file from docs/examples). Nothing is downloaded.
data = Path(os.environ.get("SKTRANSFER_DATA", "../../../shared/data"))
path = data / "vader" / "tweets_GroundTruth.txt"
if not path.is_file():
    raise FileNotFoundError(f"{path} not found: set SKTRANSFER_DATA to the folder that holds vader/")
texts, ratings = [], []
with open(path, encoding="ascii", errors="replace", newline="") as f:
    for line in f:
        parts = line.rstrip("\r\n").split("\t", 2)
        if len(parts) == 3:
            ratings.append(float(parts[1]))
            texts.append(html.unescape(parts[2]))
ratings = np.asarray(ratings)
keep = np.random.default_rng(1).permutation(np.flatnonzero(np.abs(ratings) > 0.05))
X = [texts[i] for i in keep]
y = (ratings[keep] > 0).astype(int)  # 1: positive
X_train, y_train, X_test, y_test = X[:300], y[:300], X[300:1800], y[300:1800]
print(f"{len(X_train)} training and {len(X_test)} test tweets, {y_test.mean():.0%} of the test tweets positive")

# %%
# The plain and the calibrated classifier
# ---------------------------------------
default = TransferClassifier("all-MiniLM-L6-v2", strategy="head", random_state=0).fit(X_train, y_train)
weak_penalty = TransferClassifier("all-MiniLM-L6-v2", strategy="head", C=1000.0, random_state=0).fit(X_train, y_train)
calibrated = CalibratedClassifierCV(
    TransferClassifier("all-MiniLM-L6-v2", strategy="head", C=1000.0, random_state=0), method="temperature", cv=5
).fit(X_train, y_train)

models = {"C=1 (default)": default, "C=1000": weak_penalty, "C=1000, calibrated": calibrated}
probabilities = {}
for name, model in models.items():
    p = model.predict_proba(X_test)[:, 1]
    probabilities[name] = p
    print(f"{name:>18}: accuracy {((p > 0.5) == y_test).mean():.3f}, "
          f"log loss {log_loss(y_test, p):.3f}, Brier score {brier_score_loss(y_test, p):.3f}")

# %%
# The reliability diagram
# -----------------------
# Each point is a bin of test tweets: the mean predicted probability of "positive"
# against the share that is positive. A calibrated model lies on the diagonal.
fig, ax = plt.subplots(figsize=(5.5, 5.5))
for name, p in probabilities.items():
    CalibrationDisplay.from_predictions(y_test, p, n_bins=10, name=name, ax=ax)
ax.set_title("Reliability on 1,500 held-out tweets")
plt.show()

# %%
# A temperature changes how confident a model is, not which class it picks (it keeps
# the order of the logits); accuracy can still move a little, since
# ``CalibratedClassifierCV`` averages five models fitted on four fifths of the rows
# each (``ensemble=True``). Compare the log loss and Brier score above: they measure the quality of
# the probabilities. The default head, solved to convergence with ``LogisticRegression``'s
# penalty, is the one to start from; calibrate when a model's probabilities will be
# read as probabilities, and check on held-out data as here. ``method="sigmoid"``
# (Platt's scaling, per class) and ``"isotonic"`` work the same way.
