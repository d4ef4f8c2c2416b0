"""
Knowledge reuse: a tweets model adapted to Amazon reviews
=========================================================

A model trained on one domain can be the starting point for another. Here a
sentiment regressor trained on 2,000 VADER tweets is adapted to Amazon review snippets,
of which only 250 have ratings. With ``init=`` the new model predicts the tweets
model's rating plus a learned correction, which starts at exactly zero: it only has to
learn how reviews differ from tweets.

Frozen backbones (``strategy="head"``) keep the build short; both models read the same
cached all-MiniLM-L6-v2 features.
"""

# %%
import html
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import pearsonr
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV

from sktransfer import TransferRegressor

# ``$SKTRANSFER_DATA``, else ``../shared/data`` beside the repository (the site's build runs
# this file from docs/examples). Nothing is downloaded.
data = Path(os.environ.get("SKTRANSFER_DATA", "../../../shared/data"))


def load_vader(file_name):
    """``(texts, ratings)`` of one VADER ground-truth file: ``id <TAB> rating <TAB> text``."""
    path = data / "vader" / file_name
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


tweets, tweet_ratings = load_vader("tweets_GroundTruth.txt")
reviews, review_ratings = load_vader("amazonReviewSnippets_GroundTruth.txt")
rng = np.random.default_rng(0)
t = rng.permutation(len(tweets))[:2000]
r = rng.permutation(len(reviews))
train, test = r[:250], r[250:1250]
X_tweets, y_tweets = [tweets[i] for i in t], tweet_ratings[t]
X_train, y_train = [reviews[i] for i in train], review_ratings[train]
X_test, y_test = [reviews[i] for i in test], review_ratings[test]
print(f"source: {len(X_tweets)} tweets; target: {len(X_train)} training and {len(X_test)} test reviews")

# %%
# The source model, and three ways to use it
# ------------------------------------------
# With only 250 target rows, the strength of the head's L2 penalty (``C``, as in
# ``LogisticRegression`` and ``Ridge``) matters, so both target models choose it by
# 5-fold cross-validation on those 250 rows. For the ``init=`` model a small ``C``
# keeps the correction small, that is close to the tweets model.
tweets_model = TransferRegressor("all-MiniLM-L6-v2", strategy="head", random_state=0).fit(X_tweets, y_tweets)

grid = {"C": [0.01, 0.1, 1.0, 10.0]}
models = {
    "tweets model as is": tweets_model,
    "new model, 250 reviews": GridSearchCV(
        TransferRegressor("all-MiniLM-L6-v2", strategy="head", random_state=0), grid, cv=5),
    "init= tweets model, 250 reviews": GridSearchCV(
        TransferRegressor("all-MiniLM-L6-v2", strategy="head", init=FrozenEstimator(tweets_model), random_state=0),
        grid, cv=5),
}
scores = {}
for name, model in models.items():
    if model is not tweets_model:
        model.fit(X_train, y_train)
        print(f"{name}: C={model.best_params_['C']:g} chosen by cross-validation")
    scores[name] = pearsonr(y_test, model.predict(X_test)).statistic
    print(f"{name:>32}: Pearson r on 1,000 reviews {scores[name]:.3f}")

# %%
fig, ax = plt.subplots(figsize=(6, 2.8))
ax.barh(list(scores), list(scores.values()), color=["tab:grey", "tab:blue", "tab:green"])
for i, v in enumerate(scores.values()):
    ax.text(v - 0.01, i, f"{v:.3f}", va="center", ha="right", color="white")
ax.set_xlim(0, 1)
ax.set_xlabel("Pearson r, 1,000 held-out Amazon reviews")
fig.tight_layout()
plt.show()

# %%
# Read these scores together with the benchmark below. With a frozen encoder, a new
# head trained on 250 reviews already reads sentiment from MiniLM's features, while a
# strong penalty (a small ``C``) keeps the ``init=`` model's correction small, so close
# to the tweets model. Reuse pays most when the source model knows what the target rows
# can't teach, as a fine-tuned encoder does.
#
# ``FrozenEstimator`` keeps ``clone`` (and so a search or ``cross_val_score``) from
# handing the new model an unfitted copy of the tweets model.
#
# With fine-tuned models (``benchmarks/reuse_vader.py``, seed 0; see
# ``benchmarks/README.md``) the tweets model scored 0.772 on Amazon reviews as is, a
# plain fine-tune on 250 reviews 0.706, ``init=`` the tweets model 0.781, and
# ``backbone=`` the tweets model (its fine-tuned encoder with a new head) 0.789.
