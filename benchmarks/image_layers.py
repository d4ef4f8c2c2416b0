"""Screening: does a linear probe on more stages of the image backbone beat the final features?

    python benchmarks/image_layers.py

On flowers12 (EfficientNet-Lite0), ``LogisticRegression()`` on the frozen final features (``lr`` of
few_shot.py), on the pooled outputs of stages ``blocks.4`` and ``blocks.6`` (``layers=``), and on
both concatenated, for the draws of few_shot.py (k photos per species, seeds 0-9), scored on the
240 test photos. Prints the difference to the final features per draw, in photos, and writes
results/<name>-<device>.json.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
from _common import save_result
from few_shot import draw, load_image_set


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flowers-dir", default=os.path.join("..", "shared", "data", "flowers12"))
    parser.add_argument("--stages", nargs="+", default=["blocks.4", "blocks.6"])
    parser.add_argument("--k", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--name", default="image_layers")
    args = parser.parse_args()

    from sklearn.linear_model import LogisticRegression

    from sktransfer import TransferEmbedder

    X_test, y_test, X_pool, y_pool = load_image_set(args.flowers_dir)
    features = {}
    for name, layers in (("final", None), ("stages", args.stages)):
        embedder = TransferEmbedder("efficientnet_lite0", layers=layers).fit(X_pool[:2])
        features[name] = (embedder.transform(X_pool), embedder.transform(X_test))
    features["final+stages"] = tuple(np.hstack([features["final"][i], features["stages"][i]]) for i in (0, 1))
    index = {p: i for i, p in enumerate(X_pool)}
    summary = {}
    for k in args.k:
        accuracy = {name: [] for name in features}
        for seed in args.seeds:
            X_train, y_train = draw(X_pool, y_pool, k, seed)
            idx = np.array([index[p] for p in X_train])
            for name, (F_pool, F_test) in features.items():
                clf = LogisticRegression(max_iter=3000).fit(F_pool[idx], y_train)
                accuracy[name].append(float(clf.score(F_test, y_test)))
        base = np.array(accuracy["final"])
        for name, values in accuracy.items():
            values = np.array(values)
            diff = np.round((values - base) * len(y_test)).astype(int).tolist()
            summary[f"k={k} {name}"] = {"mean": float(values.mean()), "per_seed": values.tolist(),
                                        "minus_final_photos": diff}
            print(f"k={k} {name:13s} {values.mean():.4f}  minus final, photos: {diff}", flush=True)
    save_result(args.name, {"stages": args.stages, "seeds": args.seeds, "summary": summary})


if __name__ == "__main__":
    main()
