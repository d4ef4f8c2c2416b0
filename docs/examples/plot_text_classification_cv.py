"""
Text classification evaluated by cross-validation
=================================================

A positive/negative classifier on the VADER tweets, evaluated the scikit-learn way:
:func:`~sklearn.model_selection.cross_validate` with accuracy, precision, recall and
F1. Tweets rated between -0.5 and +0.5 are left out, so that each kept tweet has a
clear polarity.

With a frozen backbone (``strategy="head"``) the five folds share the feature cache:
the encoder runs once per tweet, not once per fold.
"""

# %%
import html
import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import StratifiedKFold, cross_validate

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

rng = np.random.default_rng(0)
polar = rng.permutation(np.flatnonzero(np.abs(ratings) > 0.5))[:1000]
X = [texts[i] for i in polar]
y = np.where(ratings[polar] > 0, "positive", "negative")
print(f"{len(X)} tweets: {(y == 'positive').sum()} positive, {(y == 'negative').sum()} negative")

# %%
# Five folds, four metrics
# ------------------------
# Precision, recall and F1 are macro averages over the two classes, since the classes
# are unbalanced.
clf = TransferClassifier("all-MiniLM-L6-v2", strategy="head", random_state=0)
scoring = {"accuracy": "accuracy", "precision": "precision_macro", "recall": "recall_macro", "f1": "f1_macro"}
start = time.perf_counter()
cv = cross_validate(clf, X, y, cv=StratifiedKFold(5, shuffle=True, random_state=0), scoring=scoring)
print(f"5-fold cross-validation in {time.perf_counter() - start:.1f} s")
for metric in scoring:
    scores = cv[f"test_{metric}"]
    print(f"{metric:>9}: {scores.mean():.3f} +- {scores.std():.3f}   folds: {np.round(scores, 3)}")

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
for k, metric in enumerate(scoring):
    scores = cv[f"test_{metric}"]
    ax.scatter(np.full(len(scores), k), scores, color="tab:blue", alpha=0.6)
    ax.errorbar(k + 0.15, scores.mean(), yerr=scores.std(), fmt="o", color="tab:orange", capsize=4)
ax.set_xticks(range(len(scoring)), list(scoring))
ax.set_ylabel("score per fold")
ax.set_title("Frozen all-MiniLM-L6-v2, 5-fold CV on 1,000 polar tweets")
fig.tight_layout()
plt.show()

# %%
# The first fold computed every tweet's features; the other four read them from the
# process-wide feature cache (``feature_cache="memory"``, the default), which is why
# the five fits cost little more than one pass of the encoder over the tweets.
