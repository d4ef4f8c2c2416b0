"""
Sentiment as regression on the VADER ground truth
=================================================

The VADER ground-truth sets (Hutto & Gilbert, 2014) give each text the mean sentiment
rating of human raters, from -4 (most negative) to +4 (most positive). Predicting that
rating is a regression task: ``TransferRegressor`` puts a linear head on
all-MiniLM-L6-v2 and is scored by Pearson r against the human mean, as in the paper.

To keep the build short, this example uses a frozen backbone (``strategy="head"``) on
1,500 tweets. Fine-tuning does better: see the figures at the end.
"""

# %%
# Loading a VADER set
# -------------------
# Each line of a ground-truth file is ``id <TAB> mean rating <TAB> text``.
import html
import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import pearsonr
from sklearn.model_selection import train_test_split

from sktransfer import TransferRegressor

# ``$SKTRANSFER_DATA``, else ``../shared/data`` beside the repository (the site's build runs
# this file from docs/examples). Nothing is downloaded.
data = Path(os.environ.get("SKTRANSFER_DATA", "../../../shared/data"))
FILES = {"tweets": "tweets_GroundTruth.txt", "amazon": "amazonReviewSnippets_GroundTruth.txt",
         "nyt": "nytEditorialSnippets_GroundTruth.txt"}


def load_vader(name):
    """``(texts, ratings)`` of one VADER ground-truth set."""
    path = data / "vader" / FILES[name]
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: set SKTRANSFER_DATA to the folder that holds vader/")
    texts, ratings = [], []
    with open(path, encoding="ascii", errors="replace", newline="") as f:
        for line in f:
            parts = line.rstrip("\r\n").split("\t", 2)
            if len(parts) == 3:
                ratings.append(float(parts[1]))
                texts.append(html.unescape(parts[2]))
    return texts, np.asarray(ratings)


texts, ratings = load_vader("tweets")
print(f"{len(texts)} tweets, ratings from {ratings.min():.2f} to {ratings.max():.2f}")
X_train, X_test, y_train, y_test = train_test_split(texts, ratings, train_size=1000, test_size=500, random_state=0)

# %%
# A frozen MiniLM with a ridge head
# ---------------------------------
# With ``strategy="head"`` the text encoder runs once per tweet; the head is then
# solved to convergence (it is ``Ridge(alpha=1/C)`` on the same features).
start = time.perf_counter()
reg = TransferRegressor("all-MiniLM-L6-v2", strategy="head", random_state=0).fit(X_train, y_train)
print(f"fit on {len(X_train)} tweets in {time.perf_counter() - start:.1f} s")
predicted = reg.predict(X_test)
r = pearsonr(y_test, predicted).statistic
print(f"held-out Pearson r: {r:.3f}, R^2: {reg.score(X_test, y_test):.3f}")

# %%
fig, ax = plt.subplots(figsize=(5, 5))
ax.scatter(y_test, predicted, s=8, alpha=0.5)
ax.plot([-4, 4], [-4, 4], color="grey", lw=1)
ax.set_xlabel("mean human rating")
ax.set_ylabel("predicted rating")
ax.set_title(f"500 held-out tweets, Pearson r = {r:.3f}")
ax.set_aspect("equal")
plt.show()

# %%
# What fine-tuning adds
# ---------------------
# Fine-tuning the encoder (``strategy="full"``, the default) costs minutes rather than
# seconds on a CPU, so it is not run here. Measured in ``benchmarks/vader.py`` (5-fold
# out-of-fold Pearson r, ``TransferRegressor("all-MiniLM-L6-v2", max_epochs=3)``, see
# ``benchmarks/README.md``): tweets 0.928 against 0.817 for frozen embeddings with
# RidgeCV, Amazon reviews 0.872 against 0.715, NYT editorials 0.761 against 0.618.
