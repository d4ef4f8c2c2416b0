"""A fine-tuned text encoder as a residual correction on a classic model (VADER ground truth).

    python benchmarks/residual_vader.py [../shared/data/vader] [--sets tweets amazon nyt]
                                        [--n-train 1000] [--test-size 1000] [--max-length 128] [--epochs 3]
    python benchmarks/residual_vader.py --classic-only   # the TF-IDF + Ridge pipeline in and out of sample

For each set, one split: the held-out test rows are those of ``reuse_vader.py`` (the first
``--test-size`` rows of a permutation with seed 0), and the training rows are the first
``--n-train`` rows of the remaining pool permuted with seed 0 (for Amazon and NYT they
are the rows of ``reuse_vader.py``'s seed 0 at that size).  Every model is fitted on the
training rows only and scored by Pearson r on the test rows:

- ``tfidf_ridge``:  ``make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True,
  min_df=2), RidgeCV(alphas=np.logspace(-2, 3, 11)))``;
- ``finetune``:     ``TransferRegressor("all-MiniLM-L6-v2")`` fine-tuned;
- ``init``:         ``TransferRegressor("all-MiniLM-L6-v2", init=<the fitted TF-IDF + Ridge
  pipeline>)``: the pipeline's output plus a learned correction that starts at zero;
- ``average`` (a reference that costs no fit): the mean of the ``tfidf_ridge`` and
  ``finetune`` predictions.

Both transfer models use ``max_epochs=--epochs``, ``max_length=--max-length``,
``random_state=0`` and the library's defaults otherwise.  Saves
``results/residual_vader-<device>.json``.  The data path is an argument; nothing of it is copied.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from _common import git_commit, save_result
from reuse_vader import fixed_split, pick, training_rows
from vader import FILES, load_named_set


def tfidf_ridge():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline

    return make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2),
                         RidgeCV(alphas=np.logspace(-2, 3, 11)))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", nargs="?", default=os.path.join("..", "shared", "data", "vader"))
    parser.add_argument("--sets", nargs="+", choices=list(FILES), default=list(FILES))
    parser.add_argument("--n-train", type=int, default=1000)
    parser.add_argument("--test-size", type=int, default=1000)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    parser.add_argument("--init-cv", type=int, default=None,
                        help="only TF-IDF + Ridge and init= it with init_cv=K (out-of-fold offsets); "
                             "saved apart as residual_vader_init_cv-<device>.json")
    parser.add_argument("--classic-only", action="store_true",
                        help="only the TF-IDF + Ridge pipeline, on its training rows (in-sample and 5-fold "
                             "out-of-fold) and on the test rows; saved apart (residual_vader-classic-<device>.json)")
    args = parser.parse_args()
    if args.classic_only:
        return classic_only(args)

    import torch
    from scipy.stats import pearsonr

    from sktransfer import TransferRegressor

    torch.set_num_threads(args.threads)
    run_start = time.perf_counter()
    results = {}
    for name in args.sets:
        texts, y = load_named_set(args.data_dir, name)
        test, pool = fixed_split(len(y), args.test_size)
        rows = training_rows(pool, args.n_train, 0)
        X_train, y_train, X_test, y_test = pick(texts, rows), y[rows], pick(texts, test), y[test]
        entry = {"rows": len(y), "train_rows": len(rows), "test_rows": len(test), "models": {}}
        preds = {}

        def record(key, model, fit_s, pred, predict_s):
            preds[key] = pred
            r = float(pearsonr(pred, y_test)[0])
            entry["models"][key] = {"pearson_r": r, "fit_s": fit_s, "predict_s": predict_s}
            print(f"{name} {key}: r = {r:.3f} (fit {fit_s:.1f}s, predict {predict_s:.1f}s)", flush=True)

        def timed(model):
            start = time.perf_counter()
            model.fit(X_train, y_train)
            fit_s = time.perf_counter() - start
            start = time.perf_counter()
            pred = model.predict(X_test)
            return model, fit_s, pred, time.perf_counter() - start

        classic, fit_s, pred, predict_s = timed(tfidf_ridge())
        record("tfidf_ridge", classic, fit_s, pred, predict_s)
        entry["models"]["tfidf_ridge"]["ridge_alpha"] = float(classic[-1].alpha_)
        entry["models"]["tfidf_ridge"]["vocabulary"] = len(classic[0].vocabulary_)

        common = dict(max_epochs=args.epochs, max_length=args.max_length, random_state=0)
        if args.init_cv:
            # The same fitted pipeline; the training rows' offsets come from K-fold clones of it.
            record("init_cv", *timed(TransferRegressor("all-MiniLM-L6-v2", init=classic, init_cv=args.init_cv,
                                                       **common)))
        else:
            record("finetune", *timed(TransferRegressor("all-MiniLM-L6-v2", **common)))
            # init: the pipeline fitted above, on the training rows only.
            record("init", *timed(TransferRegressor("all-MiniLM-L6-v2", init=classic, **common)))
            start = time.perf_counter()
            record("average", None, 0.0, (preds["tfidf_ridge"] + preds["finetune"]) / 2,
                   time.perf_counter() - start)
        results[name] = entry
        save_result("residual_vader_init_cv" if args.init_cv else "residual_vader", {
            "settings": {"backbone": "all-MiniLM-L6-v2", "n_train": args.n_train, "test_size": args.test_size,
                         "max_length": args.max_length, "epochs": args.epochs, "random_state": 0,
                         "torch_threads": args.threads,
                         "tfidf_ridge": "make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, "
                                        "min_df=2), RidgeCV(alphas=np.logspace(-2, 3, 11)))",
                         "test_rows": "first test_size rows of numpy RandomState(0).permutation(rows)",
                         "training_rows": "first n_train rows of RandomState(0).permutation(pool)"},
            "sets": results, "wall_s": time.perf_counter() - run_start, "git_commit": git_commit(),
            "command_args": vars(args),
        })

    keys = ("tfidf_ridge", "init_cv") if args.init_cv else ("tfidf_ridge", "finetune", "init", "average")
    print(f"\n{'set':<7} " + " ".join(f"{k:>12}" for k in keys))
    for name, entry in results.items():
        print(f"{name:<7} " + " ".join(f"{entry['models'][k]['pearson_r']:>12.3f}" for k in keys))
    print(f"wall time {time.perf_counter() - run_start:.0f}s")


def classic_only(args) -> None:
    """What ``init=`` sees: the pipeline's predictions on its own training rows are in-sample.

    ``init`` is fitted on the training rows, so the offsets a fit trains against are
    its in-sample predictions, and the residuals left to correct are those of the
    training rows, not the (larger) ones of new rows.  This measures both, with 5-fold
    out-of-fold predictions on the training rows for comparison.
    """
    from scipy.stats import pearsonr
    from sklearn.model_selection import KFold, cross_val_predict

    results = {}
    for name in args.sets:
        texts, y = load_named_set(args.data_dir, name)
        test, pool = fixed_split(len(y), args.test_size)
        rows = training_rows(pool, args.n_train, 0)
        X_train, y_train, X_test, y_test = pick(texts, rows), y[rows], pick(texts, test), y[test]
        model = tfidf_ridge().fit(X_train, y_train)
        in_sample, on_test = model.predict(X_train), model.predict(X_test)
        oof = cross_val_predict(tfidf_ridge(), X_train, y_train, cv=KFold(5, shuffle=True, random_state=0))
        results[name] = {
            "ridge_alpha": float(model[-1].alpha_),
            "pearson_r_train_in_sample": float(pearsonr(in_sample, y_train)[0]),
            "pearson_r_train_5fold_oof": float(pearsonr(oof, y_train)[0]),
            "pearson_r_test": float(pearsonr(on_test, y_test)[0]),
            "residual_std_train_in_sample": float(np.std(y_train - in_sample)),
            "residual_std_train_5fold_oof": float(np.std(y_train - oof)),
            "residual_std_test": float(np.std(y_test - on_test)),
            "y_std_train": float(np.std(y_train)),
        }
        print(name, {k: round(v, 3) for k, v in results[name].items()}, flush=True)
    save_result("residual_vader-classic", {
        "settings": {"n_train": args.n_train, "test_size": args.test_size,
                     "tfidf_ridge": "make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, "
                                    "min_df=2), RidgeCV(alphas=np.logspace(-2, 3, 11)))",
                     "oof": "cross_val_predict, KFold(5, shuffle=True, random_state=0), on the training rows"},
        "sets": results, "git_commit": git_commit(), "command_args": vars(args),
    })


if __name__ == "__main__":
    main()
