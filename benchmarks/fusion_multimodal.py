"""Fusion on a task that needs both columns: a Fashion-MNIST image and a VADER sentence.

    python benchmarks/fusion_multimodal.py                      # 800 train / 800 test rows, 96 px
    python benchmarks/fusion_multimodal.py --n-train 2000 --n-test 2000 --sets tweets amazon nyt

Each row pairs a real Fashion-MNIST image with a real VADER sentence, drawn at random
with a fixed seed and independently of each other:

- A (image): 1 if the garment is outerwear (Pullover, Coat), 0 if it is a shirt
  (T-shirt/top, Shirt).  These four classes are Fashion-MNIST's most confused ones, so
  a frozen backbone leaves room for fine-tuning to help.
- B (text): 1 if the sentence's mean human rating is > 0.5, 0 if it is < -0.5 (sentences
  in between are not used).

The label is ``2*A + B`` (4 classes, balanced).  Either column alone predicts one bit
of the two, so it is right at most about half the time; a linear head on both columns'
features can reach the product of the two attributes' accuracies.  The same rows also
carry ``A XOR B`` (2 classes), which the fused models' linear head cannot represent:
those runs are frozen only, and read their features from the cache.

Models, all ``TransferClassifier`` (frozen ones with ``strategy="head"``):
(a) image column alone, (b) text column alone, (c) frozen fusion, concat and gated,
(d) fused, the image branch fine-tuned (``Branch(strategy="full")``), the text branch
frozen; (d') the same with the image branch at a tenth of the head's lr (``Branch(lr=)``).  Test accuracy and seconds (fit + predict) of each.  Fashion-MNIST training
images feed the training rows and its test images the test rows; VADER sentences are
split into disjoint training and test sentences.  Saves results/fusion_multimodal-<device>.json.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from _common import save_result
from fashion_mnist import DATA_DIR, ensure_data, load_split
from vader import FILES, load_named_set

OUTERWEAR = (2, 4)  # Pullover, Coat -> A = 1
SHIRTS = (0, 6)  # T-shirt/top, Shirt -> A = 0


def polar_sentences(data_dir: str, sets: list[str], threshold: float):
    """VADER sentences with |mean rating| > threshold, and their sign (1 positive)."""
    texts, signs = [], []
    for name in sets:
        t, r = load_named_set(data_dir, name)
        keep = np.abs(r) > threshold
        texts += [s for s, k in zip(t, keep) if k]
        signs.append((r[keep] > 0).astype(int))
    return texts, np.concatenate(signs)


def draw(n: int, rng, pool_a: dict, pool_b: dict):
    """``n`` rows with balanced, independent A and B; each image and sentence used once."""
    a = rng.permutation(np.arange(n) % 2)
    b = rng.permutation(np.arange(n) % 2)
    images, texts = [], []
    for value in (0, 1):
        need_a, need_b = int((a == value).sum()), int((b == value).sum())
        if need_a > len(pool_a[value]) or need_b > len(pool_b[value]):
            raise SystemExit(f"not enough images or sentences for {n} rows: use fewer rows or more --sets")
    ia = {v: iter(rng.permutation(len(pool_a[v]))) for v in (0, 1)}
    ib = {v: iter(rng.permutation(len(pool_b[v]))) for v in (0, 1)}
    for av, bv in zip(a, b):
        images.append(pool_a[av][next(ia[av])])
        texts.append(pool_b[bv][next(ib[bv])])
    return images, texts, a, b


def build(args):
    """The training and test frames, and their A and B."""
    import pandas as pd

    ensure_data(args.data_dir)
    rng = np.random.RandomState(args.seed)
    texts, signs = polar_sentences(args.vader_dir, args.sets, args.threshold)
    order = rng.permutation(len(texts))
    half = len(order) // 2
    text_split = {"train": order[:half], "test": order[half:]}
    frames = {}
    for part, kind, n in (("train", "train", args.n_train), ("test", "t10k", args.n_test)):
        images, labels = load_split(args.data_dir, kind)
        pool_a = {0: images[np.isin(labels, SHIRTS)], 1: images[np.isin(labels, OUTERWEAR)]}
        idx = text_split[part]
        pool_b = {v: [texts[i] for i in idx if signs[i] == v] for v in (0, 1)}
        imgs, sents, a, b = draw(n, rng, pool_a, pool_b)
        frames[part] = (pd.DataFrame({"image": imgs, "text": sents}), a, b)
    return frames


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-train", type=int, default=800)
    parser.add_argument("--n-test", type=int, default=800)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--sets", nargs="+", choices=list(FILES), default=["tweets"])
    parser.add_argument("--threshold", type=float, default=0.5, help="|mean rating| above which a sentence is used")
    parser.add_argument("--epochs", type=int, default=30, help="max_epochs of the frozen models")
    parser.add_argument("--lr", type=float, default=1e-3, help="lr of the frozen models' heads")
    parser.add_argument("--high-lr", type=float, default=1e-2,
                        help="also fit the frozen fusions (4-class) at this lr (0: don't); gated collapses there")
    parser.add_argument("--ft-epochs", type=int, default=8, help="max_epochs of the fine-tuned fusion")
    parser.add_argument("--ft-lr", type=float, default=1e-3, help="lr of the fine-tuned fusion (head and image branch)")
    parser.add_argument("--ft-strategy", choices=["full", "partial"], default="full",
                        help="the image branch's strategy in the fine-tuned fusion")
    parser.add_argument("--skip-finetune", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=DATA_DIR)
    parser.add_argument("--vader-dir", default=os.path.join("..", "shared", "data", "vader"))
    args = parser.parse_args()

    import torch

    from sktransfer import Branch, TransferClassifier
    from sktransfer._features.stores import memory_store

    frames = build(args)
    X_train, a_train, b_train = frames["train"]
    X_test, a_test, b_test = frames["test"]
    labels = {
        "4class": (2 * a_train + b_train, 2 * a_test + b_test),
        "xor": (a_train ^ b_train, a_test ^ b_test),
    }
    print(f"{len(X_train)} training rows, {len(X_test)} test rows, images at {args.image_size} px, "
          f"sentences from {args.sets}; torch threads {torch.get_num_threads()}", flush=True)

    image, text = "efficientnet_lite0", "all-MiniLM-L6-v2"
    common = dict(image_size=args.image_size, random_state=args.seed)
    frozen = dict(strategy="head", max_epochs=args.epochs, lr=args.lr, **common)
    models = {
        "(a) image alone": ("image", lambda: TransferClassifier(image, **frozen)),
        "(b) text alone": ("text", lambda: TransferClassifier(text, **frozen)),
        "(c) frozen fusion, concat": (None, lambda: TransferClassifier({"image": image, "text": text}, **frozen)),
        "(c') frozen fusion, gated": (None, lambda: TransferClassifier({"image": image, "text": text},
                                                                        fusion="gated", **frozen)),
    }
    if args.high_lr:
        high = {**frozen, "lr": args.high_lr}
        for fusion in ("concat", "gated"):
            tag = "(c)" if fusion == "concat" else "(c')"
            models[f"{tag} frozen fusion, {fusion}, lr {args.high_lr:g}"] = (
                None, lambda fusion=fusion: TransferClassifier({"image": image, "text": text}, fusion=fusion, **high))
    finetuned = "(d) fusion, image branch fine-tuned"
    slow = f"(d') fusion, image branch fine-tuned at lr {args.ft_lr / 10:g}"
    if not args.skip_finetune:
        for key, image_lr in ((finetuned, None), (slow, args.ft_lr / 10)):
            models[key] = (None, lambda image_lr=image_lr: TransferClassifier(
                {"image": Branch(image, strategy=args.ft_strategy, lr=image_lr), "text": Branch(text, strategy="head")},
                strategy="head", max_epochs=args.ft_epochs, lr=args.ft_lr, **common))

    memory_store().clear()
    results, predictions = {}, {}
    for task, (y_train, y_test) in labels.items():
        for name, (column, make) in models.items():
            if task == "xor" and (name in (finetuned, slow) or ", lr " in name):
                continue  # the linear head can't represent XOR however the image branch is trained
            Xtr = X_train[column].tolist() if column else X_train
            Xte = X_test[column].tolist() if column else X_test
            clf = make()
            store = memory_store()
            misses = store.misses
            start = time.perf_counter()
            clf.fit(Xtr, y_train)
            fit_s = time.perf_counter() - start
            pred = clf.predict(Xte)
            seconds = time.perf_counter() - start
            row = {"accuracy": float(np.mean(pred == y_test)), "seconds": seconds, "fit_s": fit_s,
                   "cache_misses": store.misses - misses}
            if task == "4class":  # how often each column's attribute is read right from the prediction
                row["image_attribute_accuracy"] = float(np.mean(pred // 2 == a_test))
                row["text_attribute_accuracy"] = float(np.mean(pred % 2 == b_test))
            results.setdefault(task, {})[name] = row
            predictions[task, name] = pred
            extra = (f"  A {row['image_attribute_accuracy']:.3f}  B {row['text_attribute_accuracy']:.3f}"
                     if task == "4class" else "")
            print(f"{task:<7} {name:<40} accuracy {row['accuracy']:.4f}  {seconds:6.1f} s "
                  f"(cache misses {row['cache_misses']}){extra}", flush=True)

    # Late fusion of the two single models, for reference: A read off (a), B off (b).
    late = 2 * (predictions["4class", "(a) image alone"] // 2) + predictions["4class", "(b) text alone"] % 2
    late_accuracy = float(np.mean(late == 2 * a_test + b_test))
    results["4class"]["reference: 2*A from (a) + B from (b), no extra fit"] = {"accuracy": late_accuracy}
    print(f"4class  reference: A read off (a), B off (b), no fit  accuracy {late_accuracy:.4f}")

    save_result("fusion_multimodal", {
        "n_train": len(X_train), "n_test": len(X_test), "image_size": args.image_size, "vader_sets": args.sets,
        "threshold": args.threshold, "seed": args.seed,
        "design": {"A (image)": {"1": "Pullover, Coat", "0": "T-shirt/top, Shirt"},
                   "B (text)": f"VADER mean rating > {args.threshold} (1) or < -{args.threshold} (0)",
                   "labels": {"4class": "2*A + B", "xor": "A XOR B"}},
        "frozen_settings": {"strategy": "head", "max_epochs": args.epochs, "lr": args.lr, "high_lr": args.high_lr,
                            "other": "library defaults (batch 32, AdamW, weight decay 0.01, warmup + cosine)"},
        "finetune_settings": None if args.skip_finetune else {
            "image": f"Branch('efficientnet_lite0', strategy={args.ft_strategy!r})",
            "text": "Branch('all-MiniLM-L6-v2', strategy='head')", "max_epochs": args.ft_epochs, "lr": args.ft_lr,
            "image_branch_lr": {"(d)": "lr (the default backbone_lr for image backbones)", "(d')": args.ft_lr / 10}},
        "torch_threads": torch.get_num_threads(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "results": results,
    })


if __name__ == "__main__":
    main()
