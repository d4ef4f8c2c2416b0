"""strategy="head", "full" and "lora" side by side: quality, trainable parameters, epoch time, peak memory.

    python benchmarks/lora.py --set tweets [--n 2000] [--epochs 3]    # VADER tweets, all-MiniLM-L6-v2
    python benchmarks/lora.py --set amazon                             # or nyt: the other VADER sets
    python benchmarks/lora.py --set fashion [--n 2000] [--epochs 3]   # Fashion-MNIST, efficientnet_lite0

Each strategy is fitted in a fresh subprocess (one at a time) on the same training
rows and scored on the same held-out rows:

* ``tweets`` (or ``amazon``, ``nyt``): ``TransferRegressor("all-MiniLM-L6-v2")`` on that VADER ground
  truth (``../shared/data/vader``, as ``benchmarks/vader.py``), 80/20 split of the
  ``--n`` first rows after a seeded shuffle; Pearson r of the held-out predictions.
* ``fashion``: ``TransferClassifier("efficientnet_lite0")`` on ``--n`` Fashion-MNIST
  training images (``/usr/share/datasets/fashion-mnist``, as
  ``benchmarks/fashion_mnist.py``), accuracy on ``--n-test`` test images.

Reported per strategy: the metric, trainable parameters (``requires_grad`` after fit),
the backbone's parameters, mean epoch time (skorch's history ``dur``; with
``strategy="head"`` the one backbone pass over the rows happens before the first
epoch and is in ``fit_s`` only), the whole fit's wall time, and peak memory: the
subprocess's peak resident set (``VmHWM`` of ``/proc/self/status``, Linux) and, on
CUDA, ``torch.cuda.max_memory_allocated``.  Results are merged into
results/lora-<device>.json under the set's name (runs of the two sets add up).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
from _common import RESULTS, save_result

HERE = os.path.dirname(os.path.abspath(__file__))
STRATEGIES = ("head", "full", "lora")
VADER_SETS = ("tweets", "amazon", "nyt")
BACKBONES = {**dict.fromkeys(VADER_SETS, "all-MiniLM-L6-v2"), "fashion": "efficientnet_lite0"}
# Learning rates per strategy: the head alone on frozen features takes a larger step;
# "full" uses the library's default (the backbone at lr/10 for text encoders); LoRA's
# adapters train at lr (backbone_lr=None).
LR = dict.fromkeys(BACKBONES, {"head": 1e-2, "full": 1e-3, "lora": 1e-3})


# ------------------------------------------------------------------ data
def load_data(args):
    """``(X_train, y_train, X_test, y_test)`` for ``args.set``."""
    rng = np.random.RandomState(0)
    if args.set in VADER_SETS:
        from vader import load_named_set

        texts, y = load_named_set(args.data_dir or os.path.join("..", "shared", "data", "vader"), args.set)
        order = rng.permutation(len(texts))[: args.n]
        cut = int(round(0.8 * len(order)))
        train, test = order[:cut], order[cut:]
        return [texts[i] for i in train], y[train], [texts[i] for i in test], y[test]
    from fashion_mnist import DATA_DIR, ensure_data, load_split

    directory = args.data_dir or DATA_DIR
    ensure_data(directory)
    X, y = load_split(directory, "train")
    X_test, y_test = load_split(directory, "t10k")
    train = rng.permutation(len(y))[: args.n]
    test = rng.permutation(len(y_test))[: args.n_test]
    return X[train], y[train], X_test[test], y_test[test]


# ------------------------------------------------------------------ one strategy (subprocess)
def peak_rss_mib() -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def run_strategy(args) -> dict:
    import torch

    from sktransfer import TransferClassifier, TransferRegressor

    X, y, X_test, y_test = load_data(args)
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    strategy = args.worker
    params = dict(
        strategy=strategy, max_epochs=args.epochs, batch_size=args.batch_size, random_state=0,
        lr=args.lr if args.lr is not None else LR[args.set][strategy],
    )
    if strategy == "lora":
        params.update(lora_rank=args.lora_rank, lora_alpha=args.lora_alpha)
    if args.set == "fashion":
        model = TransferClassifier(BACKBONES["fashion"], image_size=args.image_size, **params)
    else:
        model = TransferRegressor(BACKBONES[args.set], **params)
    start = time.perf_counter()
    model.fit(X, y)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    predicted = model.predict(X_test)
    predict_s = time.perf_counter() - start
    if args.set == "fashion":
        metric = {"accuracy": float(np.mean(predicted == y_test))}
    else:
        from scipy.stats import pearsonr

        metric = {"pearson_r": float(pearsonr(predicted, y_test)[0])}
    module = model.net_.module_
    durations = [float(d) for d in model.net_.history[:, "dur"]]
    return {
        "strategy": strategy,
        **metric,
        "trainable_parameters": int(sum(p.numel() for p in module.parameters() if p.requires_grad)),
        "backbone_parameters": int(sum(p.numel() for n, p in module.backbone.named_parameters() if "lora_" not in n)),
        "epoch_s": durations,
        "mean_epoch_s": float(np.mean(durations)),
        "fit_s": fit_s,
        "predict_s": predict_s,
        "peak_rss_mib": peak_rss_mib(),
        "cuda_max_allocated_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "params": {k: v for k, v in model.get_params().items() if k in (*params, "backbone", "image_size")},
    }


# ------------------------------------------------------------------ driver
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", choices=list(BACKBONES), default="tweets")
    parser.add_argument("--n", type=int, default=2000, help="training rows (VADER sets: rows before the 80/20 split)")
    parser.add_argument("--n-test", type=int, default=2000, help="fashion: test images scored")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=128, help="fashion: input size in pixels")
    parser.add_argument("--lora-rank", type=int, default=8)
    parser.add_argument("--lora-alpha", type=float, default=None)
    parser.add_argument("--lr", type=float, default=None, help="one learning rate for every strategy")
    parser.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=list(STRATEGIES))
    parser.add_argument("--data-dir", default=None, help="the VADER folder, or the Fashion-MNIST idx folder")
    parser.add_argument("--worker", choices=STRATEGIES, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print("RESULT " + json.dumps(run_strategy(args)), flush=True)
        return

    forwarded = [a for a in sys.argv[1:] if a != "--strategies" and a not in STRATEGIES]
    rows = []
    for strategy in args.strategies:
        print(f"{args.set}: strategy={strategy} ...", flush=True)
        out = subprocess.run(
            [sys.executable, os.path.join(HERE, "lora.py"), *forwarded, "--worker", strategy],
            capture_output=True, text=True,
        )
        lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
        if out.returncode != 0 or not lines:
            sys.stderr.write(out.stderr[-4000:])
            raise SystemExit(f"strategy={strategy} failed (exit {out.returncode})")
        rows.append(json.loads(lines[-1][len("RESULT "):]))

    metric = "accuracy" if args.set == "fashion" else "pearson_r"
    print(f"\n{'strategy':<9} {metric:>10} {'trainable':>12} {'epoch s':>8} {'fit s':>8} {'peak RSS MiB':>13}")
    for row in rows:
        print(f"{row['strategy']:<9} {row[metric]:>10.3f} {row['trainable_parameters']:>12,} "
              f"{row['mean_epoch_s']:>8.1f} {row['fit_s']:>8.1f} {row['peak_rss_mib'] or float('nan'):>13.0f}")
    save_lora(args, rows)


def save_lora(args, rows) -> None:
    """Merge this set's rows into results/lora-<device>.json."""
    import torch

    path = os.path.join(RESULTS, f"lora-{'cuda' if torch.cuda.is_available() else 'cpu'}.json")
    sets = {}
    if os.path.isfile(path):
        with open(path) as f:
            sets = json.load(f).get("sets", {})
    sets[args.set] = {
        "command": " ".join(["python", "benchmarks/lora.py", *sys.argv[1:]]),
        "backbone": BACKBONES[args.set],
        "n": args.n,
        "n_test": args.n_test if args.set == "fashion" else None,
        "epochs": args.epochs,
        "image_size": args.image_size if args.set == "fashion" else None,
        "strategies": rows,
    }
    save_result("lora", {"sets": sets})


if __name__ == "__main__":
    main()
