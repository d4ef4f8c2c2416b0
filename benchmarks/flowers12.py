"""flowers12: image defaults on a small near-ImageNet photo set, beside Fashion-MNIST.

    python benchmarks/flowers12.py                       # every configuration below
    python benchmarks/flowers12.py --configs head,default

Data: ../shared/data/flowers12 (12 species of the Oxford 17 Flowers, 60 training and
20 test photos each, 224 px JPEGs), given to the estimators as file paths, as a new
user would. Each configuration is EfficientNet-Lite0 with the library's defaults plus
the settings listed in CONFIGS; all run one after the other in the same process, so
their accuracies and times compare side by side. Saves results/flowers12-<device>.json.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from _common import save_result

DATA_DIR = os.path.join("..", "shared", "data", "flowers12")

#: Settings on top of TransferClassifier("efficientnet_lite0", random_state=0).
CONFIGS = {
    "head": {"strategy": "head", "max_epochs": 5},
    "default": {},
    "backbone_lr=1e-4": {"backbone_lr": 1e-4},
    "head_epochs=5": {"head_epochs": 5},
    "head_epochs=5+layer_decay=0.7": {"head_epochs": 5, "layer_decay": 0.7},
}


def image_folder(directory: Path):
    paths, labels = [], []
    for species in sorted(p for p in directory.iterdir() if p.is_dir()):
        for image in sorted(species.glob("*.jpg")):
            paths.append(str(image))
            labels.append(species.name)
    return paths, np.array(labels)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=DATA_DIR)
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated names from CONFIGS")
    parser.add_argument("--backbone", default="efficientnet_lite0")
    args = parser.parse_args()

    from sktransfer import TransferClassifier

    root = Path(args.data_dir)
    if not (root / "train").is_dir():
        raise SystemExit(f"flowers12 not found in {root}; pass --data-dir (see ../shared/data/README.md).")
    X_train, y_train = image_folder(root / "train")
    X_test, y_test = image_folder(root / "test")
    print(f"flowers12: {len(X_train)} training photos, {len(X_test)} test photos, {len(set(y_train))} species")
    names = [name.strip() for name in args.configs.split(",") if name.strip()]
    unknown = sorted(set(names) - set(CONFIGS))
    if unknown:
        raise SystemExit(f"unknown configurations {unknown}; choose from {list(CONFIGS)}")

    rows = {}
    for name in names:
        clf = TransferClassifier(args.backbone, random_state=0, **CONFIGS[name])
        start = time.perf_counter()
        clf.fit(X_train, y_train)
        fit_s = time.perf_counter() - start
        accuracy = clf.score(X_test, y_test)
        total_s = time.perf_counter() - start
        rows[name] = {"settings": CONFIGS[name], "accuracy": accuracy, "fit_s": fit_s, "total_s": total_s,
                      "train_loss": [float(v) for v in clf.net_.history[:, "train_loss"]]}
        print(f"{name:<42} accuracy {accuracy:.4f}   fit {fit_s:6.0f} s   fit + predict {total_s:6.0f} s", flush=True)
        # Saved after every configuration: a long run stopped early keeps what it measured.
        save_result("flowers12", {"backbone": args.backbone, "n_train": len(X_train), "n_test": len(X_test),
                                  "device": str(clf.device_), "results": rows})


if __name__ == "__main__":
    main()
