"""Fashion-MNIST: fine-tuned EfficientNet-Lite0 against published and measured anchors.

    python benchmarks/fashion_mnist.py            # CPU budget: 2,000 training images, 128 px
    python benchmarks/fashion_mnist.py --full     # GPU: all 60,000 training images, 224 px

Data: the Debian package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist);
the script installs it with apt-get when it can and says what to do when it can't.
Test accuracy is measured on the full 10,000-image test set.  Anchors: Zalando's best
scikit-learn baseline (SVC, 0.897) and their ResNet18 entry (0.949), from the
benchmark table of the Fashion-MNIST README; plus, measured in the same run on the
same training images, pixels + LogisticRegression and frozen EfficientNet-Lite0
features + LogisticRegression.  Saves results/fashion_mnist[-full]-<device>.json and a
learning-curve PNG.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import subprocess
import time

import numpy as np
from _common import RESULTS, parse_param, save_result
from _plots import save_learning_curve

DATA_DIR = "/usr/share/datasets/fashion-mnist"
PUBLISHED = {"Zalando SVC (best scikit-learn baseline)": 0.897, "Zalando ResNet18 entry": 0.949}


def ensure_data(directory: str) -> None:
    if os.path.isfile(os.path.join(directory, "t10k-labels-idx1-ubyte.gz")):
        return
    if shutil.which("apt-get") and os.geteuid() == 0:
        print("installing the Debian package dataset-fashion-mnist ...")
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "dataset-fashion-mnist"], check=False)
    if not os.path.isfile(os.path.join(directory, "t10k-labels-idx1-ubyte.gz")):
        raise SystemExit(
            f"Fashion-MNIST not found in {directory}. Install it with "
            "`sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or pass --data-dir with the four "
            "idx .gz files."
        )


def load_split(directory: str, kind: str):
    with gzip.open(os.path.join(directory, f"{kind}-labels-idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read(), dtype=np.uint8, offset=8).astype(np.int64)
    with gzip.open(os.path.join(directory, f"{kind}-images-idx3-ubyte.gz")) as f:
        images = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(len(labels), 28, 28)
    return images, labels


def frozen_features(X, image_size: int, batch_size: int = 64):
    """Pooled EfficientNet-Lite0 features, computed by sktransfer's own frozen path."""
    from sktransfer import get_spec
    from sktransfer._estimators.base import resolve_device
    from sktransfer._features.extraction import extract_features
    from sktransfer._inputs import make_adapter
    from sktransfer._nn.backbone_cache import build_backbone
    from sktransfer._nn.module import TransferModule
    from sktransfer._training.net import fast_path

    spec = get_spec("efficientnet_lite0")
    device = resolve_device("auto")
    adapter = make_adapter(spec, image_size=image_size)
    module = TransferModule(build_backbone(spec, True)[0], spec.get_feature_dim(), 1).to(device)
    fast = fast_path(device, "auto", "image")
    return extract_features(module, adapter.dataset(adapter.check(X)), adapter.collate_fn, batch_size, device, fast)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="all 60k training images at 224 px (for a GPU)")
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--n-test", type=int, default=None, help="use only the first test images (quick checks)")
    parser.add_argument("--data-dir", default=DATA_DIR)
    parser.add_argument("--skip-baselines", action="store_true")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="an estimator setting on top of the defaults, e.g. --param head_epochs=5 (repeatable)")
    parser.add_argument("--tag", default="", help="suffix of the result file's name, for a run with --param")
    args = parser.parse_args()
    if args.full:
        args.n_train, args.image_size, args.batch_size = 60000, 224, 128
        args.epochs = max(args.epochs, 10)

    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sktransfer import TransferClassifier

    ensure_data(args.data_dir)
    X_all, y_all = load_split(args.data_dir, "train")
    X_test, y_test = load_split(args.data_dir, "t10k")
    X_test, y_test = X_test[: args.n_test], y_test[: args.n_test]
    if args.n_train < len(y_all):
        X_train, _, y_train, _ = train_test_split(
            X_all, y_all, train_size=args.n_train, stratify=y_all, random_state=0
        )
    else:
        X_train, y_train = X_all, y_all
    print(f"Fashion-MNIST: {len(y_train)} training images, {len(y_test)} test images, {args.image_size} px")

    rows = {}
    if not args.skip_baselines:
        start = time.perf_counter()
        pixels = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
        pixels.fit(X_train.reshape(len(X_train), -1), y_train)
        rows["pixels + LogisticRegression (measured here)"] = (
            pixels.score(X_test.reshape(len(X_test), -1), y_test), time.perf_counter() - start)
        start = time.perf_counter()
        frozen = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
        frozen.fit(frozen_features(X_train, args.image_size).numpy(), y_train)
        rows["frozen EfficientNet-Lite0 + LogisticRegression (measured here)"] = (
            frozen.score(frozen_features(X_test, args.image_size).numpy(), y_test), time.perf_counter() - start)

    # The library's defaults (full fine-tuning, AdamW, warmup + cosine), with the
    # budget's image size and epochs, and a validation split for the learning curve.
    clf = TransferClassifier(
        "efficientnet_lite0", image_size=args.image_size, max_epochs=args.epochs, batch_size=args.batch_size,
        validation_fraction=0.1, random_state=0,
    )
    clf.set_params(**dict(parse_param(p) for p in args.param))
    start = time.perf_counter()
    clf.fit(X_train, y_train)
    fit_s = time.perf_counter() - start
    accuracy = clf.score(X_test, y_test)
    total_s = time.perf_counter() - start
    extra = ", ".join(args.param)
    ours = f"sktransfer TransferClassifier('efficientnet_lite0'{', ' + extra if extra else ''}), fine-tuned"
    rows[ours] = (accuracy, total_s)

    print(f"\n{'model':<66} {'test accuracy':>13} {'seconds':>8}")
    for name, value in PUBLISHED.items():
        print(f"{name + ' (published)':<66} {value:>13.3f} {'':>8}")
    for name, (acc, seconds) in rows.items():
        print(f"{name:<66} {acc:>13.3f} {seconds:>8.0f}")
    target = 0.95 if args.full else 0.89
    print(f"\ntarget {target}: {'met' if accuracy >= target else 'NOT met'} (measured {accuracy:.4f}; "
          f"fit {fit_s:.0f}s, fit + predict {total_s:.0f}s)")
    tag = ("fashion_mnist-full" if args.full else "fashion_mnist") + (f"-{args.tag}" if args.tag else "")
    os.makedirs(RESULTS, exist_ok=True)
    device = str(clf.device_)
    png = save_learning_curve(clf.net_.history, os.path.join(RESULTS, f"{tag}-{device.split(':')[0]}-curve.png"),
                              f"Fashion-MNIST, EfficientNet-Lite0, {len(y_train)} images, {args.image_size}px")
    save_result(tag, {
        "n_train": len(y_train), "n_test": len(y_test), "image_size": args.image_size, "epochs": args.epochs,
        "batch_size": args.batch_size, "device": device, "published": PUBLISHED,
        "measured": {k: {"accuracy": a, "seconds": s} for k, (a, s) in rows.items()},
        "accuracy": accuracy, "target": target, "met": accuracy >= target, "fit_s": fit_s,
        "fit_and_predict_s": total_s, "learning_curve": os.path.basename(png),
        "params": {k: v for k, v in clf.get_params().items() if k != "net_params"},
    })


if __name__ == "__main__":
    main()
