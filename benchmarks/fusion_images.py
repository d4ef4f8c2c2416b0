"""Two frozen image branches fused, against each alone, on Fashion-MNIST's CPU setting.

    python benchmarks/fusion_images.py                          # 2,000 training images, 128 px, 10,000 test
    python benchmarks/fusion_images.py --second resnet18-random # the second branch a random-init ResNet18
    python benchmarks/fusion_images.py --cold-fused             # also time a fused fit on an empty cache

The CPU setting of ``fashion_mnist.py``: 2,000 stratified training images at 128 px,
the full 10,000-image test set.  Every model is ``TransferClassifier(...,
strategy="head", image_size=128, random_state=0)`` with the defaults otherwise (lr
1e-3, 10 epochs, batch 32), as ``stages.py`` uses.

The only image backbone with pretrained weights on this machine is EfficientNet-Lite0
(the timm plugin's offline weights; torchvision's ImageNet weights and timm's hub are
not here).  So the default second branch is the same pretrained backbone read at
another stage: ``Branch("efficientnet_lite0", layers=[-2])`` (blocks.4, 112 features),
next to the final features (after ``conv_head``, 1,280).  ``--second resnet18-random``
fuses a randomly initialised ResNet18 instead (``pretrained=False``), a weak second
backbone that is about four times slower per image.

Models: each branch alone, and the two fused with ``fusion="concat"`` and ``"gated"``.
Test accuracy and seconds (fit + predict) of each.  The feature cache is cleared at the
start; the fused models then read both branches' features from the cache the single
models filled, and their seconds show that (cache misses are recorded).
``--cold-fused`` also clears the cache before a third concat fit, to time a fused fit
that computes its branches itself.  Saves results/fusion_images-<device>.json.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from _common import save_result
from fashion_mnist import DATA_DIR, ensure_data, load_split


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-test", type=int, default=None, help="use only the first test images (quick checks)")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--second", choices=["lite0-stage", "resnet18-random"], default="lite0-stage")
    parser.add_argument("--cold-fused", action="store_true", help="also time a concat fit on an empty cache")
    parser.add_argument("--data-dir", default=DATA_DIR)
    args = parser.parse_args()

    import torch
    from sklearn.model_selection import train_test_split

    from sktransfer import Branch, TransferClassifier
    from sktransfer._features.stores import memory_store

    ensure_data(args.data_dir)
    X_all, y_all = load_split(args.data_dir, "train")
    X_test, y_test = load_split(args.data_dir, "t10k")
    X_test, y_test = X_test[: args.n_test], y_test[: args.n_test]
    X_train, _, y_train, _ = train_test_split(X_all, y_all, train_size=args.n_train, stratify=y_all, random_state=0)
    print(f"Fashion-MNIST: {len(y_train)} training images, {len(y_test)} test images, {args.image_size} px; "
          f"torch threads {torch.get_num_threads()}", flush=True)

    first = Branch("efficientnet_lite0")
    if args.second == "lite0-stage":
        second = Branch("efficientnet_lite0", layers=[-2])
        names = ("efficientnet_lite0, final features", "efficientnet_lite0, layers=[-2] (blocks.4)")
    else:
        second = Branch("resnet18", pretrained=False)
        names = ("efficientnet_lite0, final features", "resnet18, random init (pretrained=False)")
    settings = dict(strategy="head", image_size=args.image_size, max_epochs=args.epochs, lr=args.lr, random_state=0)

    def single(branch):
        return TransferClassifier(branch.backbone, layers=branch.layers,
                                  pretrained=True if branch.pretrained is None else branch.pretrained, **settings)

    models = {
        f"{names[0]} alone": lambda: single(first),
        f"{names[1]} alone": lambda: single(second),
        "fused, concat": lambda: TransferClassifier([first, second], **settings),
        "fused, gated": lambda: TransferClassifier([first, second], fusion="gated", **settings),
    }
    if args.cold_fused:
        models["fused, concat, on an empty cache"] = lambda: TransferClassifier([first, second], **settings)

    memory_store().clear()
    results = {}
    for name, make in models.items():
        store = memory_store()
        if name.endswith("empty cache"):
            store.clear()
        misses = store.misses
        clf = make()
        start = time.perf_counter()
        clf.fit(X_train, y_train)
        fit_s = time.perf_counter() - start
        accuracy = float(np.mean(clf.predict(X_test) == y_test))
        seconds = time.perf_counter() - start
        features = clf.net_.module_.head.in_features
        results[name] = {"accuracy": accuracy, "seconds": seconds, "fit_s": fit_s, "features": features,
                         "cache_misses": store.misses - misses}
        print(f"{name:<58} accuracy {accuracy:.4f}  {seconds:6.1f} s  ({features} features, "
              f"cache misses {results[name]['cache_misses']})", flush=True)

    save_result("fusion_images", {
        "n_train": len(y_train), "n_test": len(y_test), "image_size": args.image_size, "second": args.second,
        "branches": {"first": "Branch('efficientnet_lite0')", "second": repr(second)},
        "settings": {**settings, "other": "library defaults (batch 32, AdamW, weight decay 0.01, warmup + cosine)"},
        "torch_threads": torch.get_num_threads(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "results": results,
    })


if __name__ == "__main__":
    main()
