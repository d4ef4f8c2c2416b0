"""
Fusion: a DataFrame with text and numeric columns
=================================================

A table often mixes free text with numbers. A dict ``{column: backbone}`` makes one
model of it: each column goes through its own branch (a text encoder, or
``"passthrough"`` for standardised numbers), the branches' features are
layer-normalised and concatenated, and one head is trained on them.

The task: predict the human sentiment rating of snippets pooled from the three VADER
sets (tweets, Amazon reviews, NYT editorials). Besides the text, the table has numeric
columns: where the snippet comes from (one 0/1 column per source), its number of words
and of exclamation marks.
"""

# %%
import html
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy.stats import pearsonr
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import train_test_split

from sktransfer import TransferRegressor

# ``$SKTRANSFER_DATA``, else ``../shared/data`` beside the repository (the site's build runs
# this file from docs/examples). Nothing is downloaded.
data = Path(os.environ.get("SKTRANSFER_DATA", "../../../shared/data"))
FILES = {"tweet": "tweets_GroundTruth.txt", "review": "amazonReviewSnippets_GroundTruth.txt",
         "editorial": "nytEditorialSnippets_GroundTruth.txt"}
rng = np.random.default_rng(0)
rows = []
for source, file_name in FILES.items():
    path = data / "vader" / file_name
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: set SKTRANSFER_DATA to the folder that holds vader/")
    with open(path, encoding="ascii", errors="replace", newline="") as f:
        lines = [line.rstrip("\r\n").split("\t", 2) for line in f]
    lines = [p for p in lines if len(p) == 3]
    for i in rng.permutation(len(lines))[:600]:
        text = html.unescape(lines[i][2])
        rows.append({"text": text, "source": source, "rating": float(lines[i][1])})
table = pd.DataFrame(rows)
for source in FILES:
    table[f"is_{source}"] = (table["source"] == source).astype(float)
table["n_words"] = table["text"].str.split().str.len().astype(float)
table["n_exclamations"] = table["text"].str.count("!").astype(float)
numeric = ["is_tweet", "is_review", "is_editorial", "n_words", "n_exclamations"]
X = table[["text", *numeric]]
y = table["rating"].to_numpy()
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=600, random_state=0)
print(X_train.head(3).to_string(max_colwidth=40))
print(f"{len(X_train)} training and {len(X_test)} test rows")

# %%
# One model over all the columns
# ------------------------------
# Every numeric column maps to ``"passthrough"``; a column of ``X`` that the mapping
# leaves out would be an error (or dropped with ``remainder="drop"``).
fused = TransferRegressor({"text": "all-MiniLM-L6-v2", **{c: "passthrough" for c in numeric}},
                          strategy="head", random_state=0).fit(X_train, y_train)
text_only = TransferRegressor("all-MiniLM-L6-v2", strategy="head", random_state=0).fit(
    X_train["text"].tolist(), y_train)
numbers_only = RidgeCV().fit(X_train[numeric], y_train)

scores = {
    "numbers only (RidgeCV)": pearsonr(y_test, numbers_only.predict(X_test[numeric])).statistic,
    "text only": pearsonr(y_test, text_only.predict(X_test["text"].tolist())).statistic,
    "text + numbers, fused": pearsonr(y_test, fused.predict(X_test)).statistic,
}
for name, r in scores.items():
    print(f"{name:>24}: Pearson r {r:.3f}")
print("columns the fused model was fitted on:", list(fused.feature_names_in_))

# %%
fig, ax = plt.subplots(figsize=(6, 2.6))
ax.barh(list(scores), list(scores.values()), color=["tab:grey", "tab:blue", "tab:green"])
for i, v in enumerate(scores.values()):
    ax.text(v - 0.01, i, f"{v:.3f}", va="center", ha="right", color="white")
ax.set_xlim(0, 1)
ax.set_xlabel("Pearson r, 600 held-out snippets")
fig.tight_layout()
plt.show()

# %%
# The fused model is only as good as what its columns add to each other: numbers that
# carry little the text doesn't already say (as the weak "numbers only" score shows)
# add little to it. Per source, the fused model's scores:
pred = fused.predict(X_test)
for source in FILES:
    mask = (X_test[f"is_{source}"] == 1).to_numpy()
    print(f"{source:>10}: Pearson r {pearsonr(y_test[mask], pred[mask]).statistic:.3f} on {mask.sum()} rows")

# %%
# Each column can also take its own settings through :class:`sktransfer.Branch`
# (``Branch("all-MiniLM-L6-v2", strategy="full")`` fine-tunes one branch while the
# others stay frozen), and a search can tune them as ``branch__text__strategy``.
