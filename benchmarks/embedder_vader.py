"""TransferEmbedder against vader.py's frozen baseline, on the same folds, side by side.

    OMP_NUM_THREADS=1 python benchmarks/embedder_vader.py [../shared/data/vader] [--sets tweets amazon nyt]
                                                           [--folds 5] [--max-rows N] [--embedder-first]

For each VADER set, in one process:

(a) the frozen baseline exactly as ``vader.py`` computes it (``frozen_ridge_oof``: one
    ``extract_features`` pass of mean-pooled all-MiniLM-L6-v2 with batch 64, then RidgeCV
    per fold);
(b) ``make_pipeline(TransferEmbedder("all-MiniLM-L6-v2"), RidgeCV(alphas=RIDGE_ALPHAS))``
    through ``cross_val_predict`` on the same folds (``vader_folds``) and the same alphas,
    with the embedder's defaults (batch 32) and a cleared in-memory feature cache: each
    fold's pipeline is a fresh clone, and the cache makes the whole run one backbone pass.

Both out-of-fold predictions are scored by Pearson r against the mean human rating.
The backbone is built and both paths run once on a few texts before anything is timed,
so neither pays for loading the weights. (a) runs first, (b) first with
``--embedder-first`` (a check on the order's effect). Results go to
``results/embedder_vader-<device>.json`` (``embedder_vader-embedder-first-<device>.json``). The data path is an argument; nothing of it
is copied.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from _common import save_result
from vader import FILES, RIDGE_ALPHAS, frozen_ridge_oof, load_named_set, vader_folds


def embedder_ridge_oof(texts, y, folds):
    """Out-of-fold predictions of TransferEmbedder + RidgeCV, and the feature cache's miss count.

    The count is the rows the backbone embedded when every text is distinct. A repeated
    text counts once more per ``transform`` that looks it up twice: the store counts a
    key found once but asked for twice as one hit and one miss."""
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import cross_val_predict
    from sklearn.pipeline import make_pipeline

    from sktransfer import TransferEmbedder
    from sktransfer._features.stores import memory_store

    memory_store().clear()
    model = make_pipeline(TransferEmbedder("all-MiniLM-L6-v2"), RidgeCV(alphas=RIDGE_ALPHAS))
    oof = cross_val_predict(model, texts, y, cv=folds)
    return oof, memory_store().misses


def warm_up(texts, y):
    """Build the backbone and run both paths once, untimed."""
    folds = vader_folds(texts[:64], 2)
    frozen_ridge_oof(texts[:64], y[:64], folds)
    embedder_ridge_oof(texts[:64], y[:64], folds)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", nargs="?", default=os.path.join("..", "shared", "data", "vader"))
    parser.add_argument("--sets", nargs="+", choices=list(FILES), default=list(FILES))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--max-rows", type=int, default=None, help="use only the first rows (quick checks)")
    parser.add_argument("--embedder-first", action="store_true", help="time (b) before (a)")
    args = parser.parse_args()

    import torch
    from scipy.stats import pearsonr

    results = {}
    for name in args.sets:
        texts, y = load_named_set(args.data_dir, name)
        if args.max_rows:
            texts, y = texts[: args.max_rows], y[: args.max_rows]
        if not results:
            warm_up(texts, y)
        folds = vader_folds(texts, args.folds)

        timed = {}

        def run_frozen():
            start = time.perf_counter()
            timed["frozen"] = frozen_ridge_oof(texts, y, folds)
            timed["frozen_s"] = time.perf_counter() - start

        def run_embedder():
            start = time.perf_counter()
            timed["embedder"], timed["misses"] = embedder_ridge_oof(texts, y, folds)
            timed["embedder_s"] = time.perf_counter() - start

        for run in (run_embedder, run_frozen) if args.embedder_first else (run_frozen, run_embedder):
            run()
        frozen, frozen_s = timed["frozen"], timed["frozen_s"]
        embedded, embedder_s, rows_embedded = timed["embedder"], timed["embedder_s"], timed["misses"]

        r_frozen, r_embedder = pearsonr(frozen, y)[0], pearsonr(embedded, y)[0]
        results[name] = {
            "rows": len(y),
            "pearson_r_frozen_baseline": r_frozen,
            "pearson_r_embedder": r_embedder,
            "r_difference": r_embedder - r_frozen,
            "max_abs_prediction_difference": float(np.abs(embedded - frozen).max()),
            "seconds_frozen_baseline": frozen_s,
            "seconds_embedder": embedder_s,
            "time_ratio": embedder_s / frozen_s,
            "feature_cache_misses": int(rows_embedded),
            "distinct_texts": len(set(texts)),
            "within_0.005": bool(abs(r_embedder - r_frozen) <= 0.005),
        }
        print(f"{name} ({len(y)} rows): r frozen baseline {r_frozen:.4f} | TransferEmbedder {r_embedder:.4f} | "
              f"difference {r_embedder - r_frozen:+.5f} | {frozen_s:.1f} s vs {embedder_s:.1f} s "
              f"(ratio {embedder_s / frozen_s:.3f}) | cache misses {rows_embedded}, distinct texts {len(set(texts))}",
              flush=True)
        save_result("embedder_vader-embedder-first" if args.embedder_first else "embedder_vader", {
            "folds": args.folds, "order": "embedder first" if args.embedder_first else "frozen baseline first",
            "max_rows": args.max_rows, "torch_threads": torch.get_num_threads(),
            "baseline": "vader.frozen_ridge_oof: extract_features (batch 64) + RidgeCV(alphas=RIDGE_ALPHAS) per fold",
            "embedder": "cross_val_predict(make_pipeline(TransferEmbedder('all-MiniLM-L6-v2'), "
                        "RidgeCV(alphas=RIDGE_ALPHAS)), cv=vader_folds(texts, folds)), fresh memory cache",
            "ridge_alphas": RIDGE_ALPHAS.tolist(),
            "sets": results,
        })


if __name__ == "__main__":
    main()
