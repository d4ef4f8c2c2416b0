"""Text augmentation on small VADER training sets: none, word dropout, span deletion.

    python benchmarks/text_augment.py                         # tweets, 250 and 1,000 training texts
    python benchmarks/text_augment.py --set amazon --sizes 250 1000 --seeds 0 1

For each training size and seed, the same rows (a seeded draw from the set) train
``TransferRegressor("all-MiniLM-L6-v2", max_epochs=--epochs, random_state=seed)`` with
each ``augment`` setting, one after the other in this process; every model is scored
(Pearson r) on the same held-out 1,000 texts, disjoint from every training draw.
Saves results/text_augment-<set>-<device>.json.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from _common import save_result
from vader import load_named_set

AUGMENTS = {"none": None, "word_dropout": "word_dropout", "span_deletion": "span_deletion"}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", default="tweets", choices=["tweets", "amazon", "nyt"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[250, 1000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--augments", nargs="+", choices=list(AUGMENTS), default=list(AUGMENTS))
    parser.add_argument("--data-dir", default=os.path.join("..", "shared", "data", "vader"))
    args = parser.parse_args()

    from scipy.stats import pearsonr

    from sktransfer import TransferRegressor

    texts, y = load_named_set(args.data_dir, args.set)
    order = np.random.RandomState(0).permutation(len(texts))
    test, pool = order[: args.n_test], order[args.n_test:]
    X_test, y_test = [texts[i] for i in test], y[test]
    rows = []
    for size in args.sizes:
        for seed in args.seeds:
            train = np.random.RandomState(seed).choice(pool, size, replace=False)
            X_train, y_train = [texts[i] for i in train], y[train]
            for name in args.augments:
                reg = TransferRegressor("all-MiniLM-L6-v2", augment=AUGMENTS[name], max_epochs=args.epochs,
                                        random_state=seed)
                start = time.perf_counter()
                reg.fit(X_train, y_train)
                r = float(pearsonr(reg.predict(X_test), y_test)[0])
                seconds = time.perf_counter() - start
                rows.append({"n_train": size, "seed": seed, "augment": name, "pearson_r": r, "seconds": seconds})
                print(f"n={size:<5} seed={seed} {name:<14} r={r:.4f}  ({seconds:.0f} s)", flush=True)
                # Saved after every fit: a long run stopped early keeps what it measured.
                save_result(f"text_augment-{args.set}", {"set": args.set, "epochs": args.epochs,
                                                         "n_test": args.n_test, "runs": rows})
    summary = {}
    for size in args.sizes:
        for name in args.augments:
            values = [row["pearson_r"] for row in rows if row["n_train"] == size and row["augment"] == name]
            summary[f"{size}/{name}"] = float(np.mean(values))
    print("\nmean Pearson r over seeds:")
    for key, value in summary.items():
        print(f"  {key:<22} {value:.4f}")
    save_result(f"text_augment-{args.set}", {"set": args.set, "epochs": args.epochs, "n_test": args.n_test,
                                             "runs": rows, "mean_pearson_r": summary})


if __name__ == "__main__":
    main()
