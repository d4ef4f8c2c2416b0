"""Screening for issue 21 on images: a linear probe on frozen features of augmented views.

    python benchmarks/image_views.py --views 8

On flowers12 (EfficientNet-Lite0 by default), the frozen features of every training photo, of its
horizontal flip and of ``--views`` random crops and flips of it (RandomResizedCrop at 35-100 % of the
area, as ``augment="default"`` crops, seeded) are computed once. Then, for the draws of
``few_shot.py`` (k photos per species, seeds), ``LogisticRegression`` is fitted on

  lr          the photos' features (the baseline of few_shot.py)
  flip        the photos and their flips
  views<v>    the photos and v of their views, equal weights
  views<v>_w  the same, each photo weighing as much as its v views together
  views<v>_C<c>  equal weights, C = c

and scored on the 240 test photos. With ``--stages blocks.4 blocks.6`` every method is also fitted
(prefixed ``stages_``) on the final features followed by those stages' pooled outputs (``layers=``),
as ``image_layers.py`` screens them; ``lr`` stays the final features alone. Results: results/<name>-<device>.json, with the difference to
``lr`` per draw in photos.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
from _common import save_result
from few_shot import draw, load_image_set


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flowers-dir", default=os.path.join("..", "shared", "data", "flowers12"))
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--views", type=int, default=8)
    parser.add_argument("--k", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--stages", nargs="*", default=[], help="stages to add to the final features")
    parser.add_argument("--name", default="image_views")
    args = parser.parse_args()

    import torch
    from PIL import Image
    from sklearn.linear_model import LogisticRegression
    from torchvision.transforms import v2

    from sktransfer import TransferEmbedder

    X_test, y_test, X_pool, y_pool = load_image_set(args.flowers_dir)
    embedders = [TransferEmbedder(args.backbone).fit(X_pool[:2])]
    if args.stages:
        embedders.append(TransferEmbedder(args.backbone, layers=args.stages).fit(X_pool[:2]))

    def embed(images):
        return np.hstack([e.transform(images) for e in embedders])

    start = time.perf_counter()
    F_pool, F_test = embed(X_pool), embed(X_test)
    photos = [Image.open(p).convert("RGB") for p in X_pool]
    F_flip = embed([im.transpose(Image.FLIP_LEFT_RIGHT) for im in photos])
    crop = v2.Compose([v2.RandomResizedCrop(224, scale=(0.35, 1.0), antialias=True), v2.RandomHorizontalFlip()])
    torch.manual_seed(0)
    F_views = np.stack([embed([crop(im) for im in photos]) for _ in range(args.views)])  # (views, n, d)
    feature_s = time.perf_counter() - start
    print(f"features of {len(X_pool)} photos, their flips and {args.views} views each: {feature_s:.0f} s", flush=True)

    final_dim = embedders[0].transform(X_pool[:1]).shape[1]
    columns = {"": slice(0, final_dim)}
    if args.stages:
        columns["stages_"] = slice(None)
    index = {p: i for i, p in enumerate(X_pool)}
    v = args.views
    rows = []
    for k in args.k:
        for seed in args.seeds:
            X_train, y_train = draw(X_pool, y_pool, k, seed)
            idx = np.array([index[p] for p in X_train])
            n = len(idx)
            row = {"k": k, "seed": seed}

            for prefix, cols in columns.items():
                test = F_test[:, cols]

                def score(F, y, C=1.0, sample_weight=None, test=test):
                    clf = LogisticRegression(C=C, max_iter=2000).fit(F, y, sample_weight=sample_weight)
                    return float(clf.score(test, y_test))

                pool, flip, views = F_pool[:, cols], F_flip[:, cols], F_views[:, :, cols]
                row[prefix + "lr"] = score(pool[idx], y_train)
                row[prefix + "flip"] = score(np.r_[pool[idx], flip[idx]], np.r_[y_train, y_train])
                for used in sorted({2, 4, v}):
                    F = np.r_[pool[idx], views[:used, idx].reshape(-1, pool.shape[1])]
                    y = np.r_[y_train, np.tile(y_train, used)]
                    row[f"{prefix}views{used}"] = score(F, y)
                    if used == v:
                        weight = np.r_[np.full(n, float(used)), np.ones(used * n)]
                        row[f"{prefix}views{used}_w"] = score(F, y, sample_weight=weight)
                        for C in (0.3, 3.0):
                            row[f"{prefix}views{used}_C{C}"] = score(F, y, C=C)
            print(json.dumps(row), flush=True)
            rows.append(row)

    summary = {}
    for k in args.k:
        cell = [r for r in rows if r["k"] == k]
        lr = np.array([r["lr"] for r in cell])
        for method in cell[0]:
            if method in ("k", "seed"):
                continue
            acc = np.array([r[method] for r in cell])
            summary[f"k={k} {method}"] = {"mean": float(acc.mean()), "sd": float(acc.std(ddof=1)),
                                          "minus_lr_photos": np.round((acc - lr) * len(y_test)).astype(int).tolist()}
            print(f"k={k} {method:12s} {acc.mean():.4f} ± {acc.std(ddof=1):.3f}  minus lr, photos: "
                  f"{summary[f'k={k} {method}']['minus_lr_photos']}")
    save_result(args.name, {"backbone": args.backbone, "stages": args.stages, "views": v, "feature_seconds": feature_s,
                            "n_test": len(y_test), "summary": summary, "runs": rows})


if __name__ == "__main__":
    main()
