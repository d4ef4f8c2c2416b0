"""Cross-domain knowledge reuse on VADER: a tweets model reused on Amazon reviews and NYT editorials.

    python benchmarks/reuse_vader.py [../shared/data/vader] [--targets amazon nyt] [--sizes 250 500 1000]
                                     [--max-seeds 5 | --seeds 0 1] [--test-size 1000] [--max-length 128]
                                     [--epochs 3] [--methods source finetune backbone init] [--cache DIR]

The source is ``TransferRegressor("all-MiniLM-L6-v2")`` fine-tuned on all 4,200 tweets.
It is trained once and saved with joblib in ``--cache`` (default
``benchmarks/results/cache``, ignored by git); later runs load it.  For each target set,
one fixed held-out test set (the first ``--test-size`` rows of a permutation with seed 0)
serves every method, seed and size; the other rows are the training pool, and the
training subset of seed ``s`` is the first ``n`` rows of the pool permuted with seed
``s`` (so the sizes are nested).  Methods, all scored by Pearson r on the test set:

- ``source``:   the tweets model applied with no adaptation;
- ``finetune``: ``TransferRegressor("all-MiniLM-L6-v2")`` fine-tuned on the ``n`` rows;
- ``backbone``: ``TransferRegressor(FrozenEstimator(source))``: fine-tuning starts from the
  tweets model's backbone, with a new head;
- ``init``:     ``TransferRegressor("all-MiniLM-L6-v2", init=FrozenEstimator(source))``: the
  tweets model's output plus a learned correction that starts at zero.

``finetune``, ``backbone`` and ``init`` share every training setting (``--epochs``,
``--max-length``, ``random_state=seed``, the library's defaults otherwise).  Results go to
``results/reuse_vader-<device>.json``, per-seed r included; a later run with the same
settings adds its seeds to the file, a run with other settings refuses to overwrite it
unless ``--overwrite`` is given.  The data path is an argument; nothing of it is copied.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
from _common import RESULTS, git_commit, save_result
from vader import load_named_set

METHODS = {
    "source": "(a) tweets model, no adaptation",
    "finetune": "(b) plain fine-tune of all-MiniLM-L6-v2",
    "backbone": "(c) backbone=FrozenEstimator(source), new head",
    "init": "(d) init=FrozenEstimator(source), all-MiniLM-L6-v2 backbone",
}
DEFAULT_CACHE = os.path.join(RESULTS, "cache")


def fixed_split(n_rows: int, test_size: int):
    """The held-out test rows (the same for every method and seed) and the training pool."""
    order = np.random.RandomState(0).permutation(n_rows)
    return np.sort(order[:test_size]), np.sort(order[test_size:])


def training_rows(pool: np.ndarray, n: int, seed: int) -> np.ndarray:
    """The first ``n`` rows of the pool permuted with ``seed``: nested across sizes."""
    if n > len(pool):
        raise SystemExit(f"asked for {n} training rows, but the pool holds {len(pool)}.")
    return np.random.RandomState(seed).permutation(pool)[:n]


def pick(texts, rows):
    return [texts[i] for i in rows]


def load_or_train_source(data_dir: str, cache: str, epochs: int, max_length: int):
    """The tweets model, from the cache when a compatible copy is there, else trained and saved."""
    import joblib

    from sktransfer import TransferRegressor

    os.makedirs(cache, exist_ok=True)
    stem = os.path.join(cache, f"source-tweets-all-MiniLM-L6-v2-{epochs}ep-len{max_length}-rs0")
    model_path, info_path = stem + ".joblib", stem + ".json"
    if os.path.isfile(model_path) and os.path.isfile(info_path):
        try:
            source = joblib.load(model_path)
            # A copy saved by an older sktransfer may lack parameters the current class has.
            missing = set(TransferRegressor("all-MiniLM-L6-v2").get_params()) - set(vars(source))
            if missing:
                raise ValueError(f"saved by an older sktransfer (missing {sorted(missing)})")
            source.get_params()
            with open(info_path) as f:
                info = json.load(f)
            print(f"source: loaded {model_path} (trained at commit {info.get('git_commit')}, "
                  f"{info.get('fit_s', float('nan')):.0f}s)", flush=True)
            return source, {**info, "loaded_from_cache": True}
        except Exception as exc:  # noqa: BLE001 - any failure means: train it again
            print(f"source: cached copy not usable ({exc}); training it again", flush=True)
    texts, y = load_named_set(data_dir, "tweets")
    source = TransferRegressor("all-MiniLM-L6-v2", max_epochs=epochs, max_length=max_length, random_state=0)
    print(f"source: fine-tuning all-MiniLM-L6-v2 on all {len(y)} tweets ({epochs} epochs) ...", flush=True)
    start = time.perf_counter()
    source.fit(texts, y)
    fit_s = time.perf_counter() - start
    joblib.dump(source, model_path)
    info = {"rows": len(y), "epochs": epochs, "max_length": max_length, "random_state": 0, "fit_s": fit_s,
            "git_commit": git_commit(), "file": os.path.basename(model_path)}
    with open(info_path, "w") as f:
        json.dump(info, f, indent=2)
    print(f"source: trained in {fit_s:.0f}s, saved to {model_path}", flush=True)
    return source, {**info, "loaded_from_cache": False}


def make_model(method: str, source, epochs: int, max_length: int, seed: int):
    from sklearn.frozen import FrozenEstimator

    from sktransfer import TransferRegressor

    common = dict(max_epochs=epochs, max_length=max_length, random_state=seed)
    if method == "finetune":
        return TransferRegressor("all-MiniLM-L6-v2", **common)
    if method == "backbone":
        return TransferRegressor(FrozenEstimator(source), **common)
    if method == "init":
        return TransferRegressor("all-MiniLM-L6-v2", init=FrozenEstimator(source), **common)
    raise ValueError(method)


def summarise(per_seed: dict) -> dict:
    seeds = sorted(per_seed, key=int)
    rs = np.array([per_seed[s]["r"] for s in seeds])
    return {
        "seeds": [int(s) for s in seeds],
        "pearson_r_per_seed": rs.tolist(),
        "mean": float(rs.mean()),
        "std": float(rs.std(ddof=1)) if len(rs) > 1 else None,
        "fit_s_per_seed": [per_seed[s].get("fit_s") for s in seeds],
        "predict_s_per_seed": [per_seed[s].get("predict_s") for s in seeds],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", nargs="?", default=os.path.join("..", "shared", "data", "vader"))
    parser.add_argument("--targets", nargs="+", choices=["amazon", "nyt"], default=["amazon", "nyt"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[250, 500, 1000])
    parser.add_argument("--max-seeds", type=int, default=5,
                        help="seeds 0 .. max-seeds - 1 (default 5, the full design; 1 fits about 45 minutes at 1 thread)")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="explicit seeds (overrides --max-seeds)")
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    parser.add_argument("--test-size", type=int, default=1000)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    parser.add_argument("--cache", default=DEFAULT_CACHE, help="where the tweets model is saved (gitignored)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a results file that was written with other settings")
    args = parser.parse_args()
    seeds = args.seeds if args.seeds is not None else list(range(args.max_seeds))

    import torch
    from scipy.stats import pearsonr

    torch.set_num_threads(args.threads)
    settings = {
        "backbone": "all-MiniLM-L6-v2", "source_set": "tweets", "test_size": args.test_size,
        "max_length": args.max_length, "epochs": args.epochs, "torch_threads": args.threads,
        "test_rows": "first test_size rows of numpy RandomState(0).permutation(rows)",
        "training_rows": "first n rows of RandomState(seed).permutation(pool), pool = the other rows",
        "training_settings": "max_epochs=epochs, max_length=max_length, random_state=seed, library defaults "
                             "otherwise (lr 1e-3, backbone_lr lr/10 for a pretrained text encoder, batch 32, "
                             "AdamW, warmup + cosine)",
    }
    existing = load_existing(settings, args.overwrite)
    runs = existing.get("runs", []) + [{"command_args": vars(args)}]

    run_start = time.perf_counter()
    source, source_info = load_or_train_source(args.data_dir, args.cache, args.epochs, args.max_length)
    sets = existing.get("sets", {})
    for target in args.targets:
        texts, y = load_named_set(args.data_dir, target)
        test, pool = fixed_split(len(y), args.test_size)
        X_test, y_test = pick(texts, test), y[test]
        entry = sets.setdefault(target, {"rows": len(y), "test_rows": len(test), "pool_rows": len(pool),
                                         "sizes": {}})
        if "source" in args.methods:
            start = time.perf_counter()
            r = float(pearsonr(source.predict(X_test), y_test)[0])
            entry["source_no_adaptation"] = {"pearson_r": r, "predict_s": time.perf_counter() - start,
                                             "note": "one figure per target: it uses no target rows"}
            print(f"{target}: (a) tweets model, no adaptation: r = {r:.3f}", flush=True)
        for seed in seeds:
            for n in args.sizes:
                rows = training_rows(pool, n, seed)
                X_train, y_train = pick(texts, rows), y[rows]
                size = entry["sizes"].setdefault(str(n), {})
                for method in args.methods:
                    if method == "source":
                        continue
                    model = make_model(method, source, args.epochs, args.max_length, seed)
                    start = time.perf_counter()
                    model.fit(X_train, y_train)
                    fit_s = time.perf_counter() - start
                    start = time.perf_counter()
                    pred = model.predict(X_test)
                    predict_s = time.perf_counter() - start
                    r = float(pearsonr(pred, y_test)[0])
                    size.setdefault(method, {"per_seed": {}})["per_seed"][str(seed)] = {
                        "r": r, "fit_s": fit_s, "predict_s": predict_s}
                    size[method].update(summarise(size[method]["per_seed"]))
                    print(f"{target} n={n} seed={seed} {METHODS[method]}: r = {r:.3f} "
                          f"(fit {fit_s:.0f}s, predict {predict_s:.0f}s)", flush=True)
                    del model
                # Saved after every size: a long run that is stopped keeps what it finished.
                save(settings, source_info, sets, runs, run_start)

    save(settings, source_info, sets, runs, run_start)
    print_table(sets)


RESULT_NAME = "reuse_vader"


def results_path() -> str:
    import torch

    return os.path.join(RESULTS, f"{RESULT_NAME}-{'cuda' if torch.cuda.is_available() else 'cpu'}.json")


def load_existing(settings: dict, overwrite: bool) -> dict:
    path = results_path()
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        old = json.load(f)
    if old.get("settings") == settings:
        print(f"adding to {path} (same settings)")
        return old
    if overwrite:
        print(f"{path} was written with other settings; --overwrite: replacing it")
        return {}
    raise SystemExit(f"{path} holds results with other settings ({old.get('settings')}); "
                     "pass --overwrite to replace it, or run with the same settings to add seeds.")


def save(settings, source_info, sets, runs, run_start) -> None:
    """Write the results file; ``runs[-1]`` is this run (its wall time so far and commit)."""
    runs[-1].update({"wall_s": time.perf_counter() - run_start, "git_commit": git_commit()})
    save_result(RESULT_NAME, {"settings": settings, "methods": METHODS, "source": source_info,
                              "sets": sets, "runs": runs})


def print_table(sets: dict) -> None:
    print(f"\n{'target':<7} {'n':>5} " + " ".join(f"{m:>17}" for m in METHODS))
    for target, entry in sets.items():
        a = entry.get("source_no_adaptation", {}).get("pearson_r")
        for n, size in sorted(entry["sizes"].items(), key=lambda kv: int(kv[0])):
            cells = [f"{a:>17.3f}" if a is not None else f"{'-':>17}"]
            for method in ("finetune", "backbone", "init"):
                s = size.get(method)
                if s is None:
                    cells.append(f"{'-':>17}")
                elif s["std"] is None:
                    cells.append(f"{s['mean']:>10.3f} (1 seed)")
                else:
                    cells.append(f"{s['mean']:>8.3f} ± {s['std']:.3f} ({len(s['seeds'])})")
            print(f"{target:<7} {n:>5} " + " ".join(cells))


if __name__ == "__main__":
    main()
