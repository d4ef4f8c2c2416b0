"""The frozen head against scikit-learn on the same frozen features, at every size.

    python benchmarks/head_bar.py                      # text sets and flowers12, 5 seeds
    python benchmarks/head_bar.py --sets tweets --seeds 0

For each set, the frozen backbone's features of the whole training pool and the test set
are computed once (one shared feature store), then for k = 8, 16 and 64 examples per class
(5 seeds; the draws of ``few_shot.py``) and for the whole pool:

- classification: ``TransferClassifier(backbone, strategy="head")`` against
  ``LogisticRegression(C=1.0)`` on ``TransferEmbedder(backbone)`` features: test accuracy;
- regression (text sets): ``TransferRegressor(backbone, strategy="head")`` against
  ``Ridge(alpha=1.0)`` on the standardised target (the regressor standardises its target),
  mapped back: test R², on the VADER mean rating, with n = 16, 32, 128 training rows and
  the whole pool.

The bar (issue 21): accuracy within 0.5 point of ``LogisticRegression`` and R² within 0.01
of ``Ridge`` on every draw. Sets, draws and test sets are few_shot.py's (flowers12: k = 1,
4, 8 and the whole train/ folder). Saves results/head_bar-<device>.json.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from _common import save_result
from few_shot import TEST_SEED, TEXT_BACKBONE, draw, load_image_set, load_text_set

SIZES = {"text": [8, 16, 64, None], "image": [1, 4, 8, None]}
REGRESSION_SIZES = [16, 32, 128, None]


def classification_rows(set_name, backbone, X_pool, y_pool, X_test, y_test, store, sizes, seeds):
    from sklearn.linear_model import LogisticRegression

    from sktransfer import TransferClassifier, TransferEmbedder

    rows = []
    for k in sizes:
        for seed in seeds if k is not None else [None]:
            X_train, y_train = (X_pool, y_pool) if k is None else draw(X_pool, y_pool, k, seed)
            embedder = TransferEmbedder(backbone, feature_cache=store).fit(X_train[:2])
            lr = LogisticRegression(C=1.0, max_iter=1000).fit(embedder.transform(X_train), y_train)
            lr_acc = float(lr.score(embedder.transform(X_test), y_test))
            head = TransferClassifier(backbone, strategy="head", random_state=seed or 0, feature_cache=store)
            head_acc = float(head.fit(X_train, y_train).score(X_test, y_test))
            rows.append({"set": set_name, "task": "classification", "k": k, "n_train": len(X_train),
                         "seed": seed, "lr": lr_acc, "head": head_acc, "gap": head_acc - lr_acc})
            print(f"  {set_name} k={k or 'all'} seed={seed} LogisticRegression {lr_acc:.4f}  head {head_acc:.4f}",
                  flush=True)
    return rows


def regression_rows(set_name, X_pool, r_pool, X_test, r_test, store, seeds):
    from sklearn.linear_model import Ridge
    from sklearn.metrics import r2_score

    from sktransfer import TransferEmbedder, TransferRegressor

    rows = []
    for n in REGRESSION_SIZES:
        for seed in seeds if n is not None else [None]:
            chosen = np.arange(len(X_pool)) if n is None else np.random.RandomState(seed).permutation(len(X_pool))[:n]
            X_train, r_train = [X_pool[i] for i in chosen], r_pool[chosen]
            embedder = TransferEmbedder(TEXT_BACKBONE, feature_cache=store).fit(X_train[:2])
            mean, scale = r_train.mean(), r_train.std()
            ridge = Ridge(alpha=1.0).fit(embedder.transform(X_train), (r_train - mean) / scale)
            ridge_r2 = float(r2_score(r_test, ridge.predict(embedder.transform(X_test)) * scale + mean))
            head = TransferRegressor(TEXT_BACKBONE, strategy="head", random_state=seed or 0, feature_cache=store)
            head_r2 = float(head.fit(X_train, r_train).score(X_test, r_test))
            rows.append({"set": set_name, "task": "regression", "n_train": len(X_train), "seed": seed,
                         "ridge": ridge_r2, "head": head_r2, "gap": head_r2 - ridge_r2})
            print(f"  {set_name} n={len(X_train)} seed={seed} Ridge R2 {ridge_r2:.4f}  head {head_r2:.4f}", flush=True)
    return rows


def text_ratings(data_dir, name, X_test, X_pool):
    """The mean ratings of the test and pool texts (few_shot.py keeps only the binary label)."""
    from vader import load_named_set

    texts, ratings = load_named_set(data_dir, name)
    rating = dict(zip(texts, ratings))
    return np.array([rating[t] for t in X_test]), np.array([rating[t] for t in X_pool])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", default=["tweets", "amazon", "nyt", "flowers12"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--vader-dir", default=os.path.join("..", "shared", "data", "vader"))
    parser.add_argument("--flowers-dir", default=os.path.join("..", "shared", "data", "flowers12"))
    args = parser.parse_args()

    from sktransfer import MemoryFeatureStore, TransferEmbedder

    rows = []
    for set_name in args.sets:
        start = time.perf_counter()
        store = MemoryFeatureStore()
        if set_name == "flowers12":
            X_test, y_test, X_pool, y_pool = load_image_set(args.flowers_dir)
            backbone = "efficientnet_lite0"
        else:
            X_test, y_test, X_pool, y_pool = load_text_set(args.vader_dir, set_name, 1000)
            backbone = TEXT_BACKBONE
        TransferEmbedder(backbone, feature_cache=store).fit(X_test[:2]).transform(list(X_pool) + list(X_test))
        print(f"{set_name}: features of {len(X_pool) + len(X_test)} rows in {time.perf_counter() - start:.0f} s",
              flush=True)
        modality = "image" if set_name == "flowers12" else "text"
        rows += classification_rows(set_name, backbone, X_pool, y_pool, X_test, y_test, store, SIZES[modality],
                                    args.seeds)
        if modality == "text":
            r_test, r_pool = text_ratings(args.vader_dir, set_name, X_test, X_pool)
            rows += regression_rows(set_name, X_pool, r_pool, X_test, r_test, store, args.seeds)
    worst = {task: min((r for r in rows if r["task"] == task), key=lambda r: r["gap"], default=None)
             for task in ("classification", "regression")}
    save_result("head_bar", {"test_seed": TEST_SEED, "runs": rows, "worst": worst})
    for task, row in worst.items():
        if row is not None:
            print(f"worst {task} gap: {row['gap']:+.4f} ({row['set']}, n_train={row['n_train']}, seed={row['seed']})")


if __name__ == "__main__":
    main()
