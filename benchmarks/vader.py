"""VADER ground truth (Hutto & Gilbert, ICWSM 2014): fine-tuned all-MiniLM-L6-v2 against the paper.

    python benchmarks/vader.py [../shared/data/vader] [--sets tweets amazon nyt] [--epochs 3]

For each set, 5-fold out-of-fold predictions of ``TransferRegressor("all-MiniLM-L6-v2")``
(fine-tuned) are compared with the mean human rating by Pearson r, next to the
paper's Table 4 (VADER, individual humans) and, measured in the same run on the same
folds, frozen all-MiniLM-L6-v2 embeddings + RidgeCV.  3-class F1 (positive, negative,
neutral at +-0.05 on the rating scale, support-weighted) is reported next to the
paper's VADER F1.  Saves results/vader-<device>.json and one learning-curve PNG per set
(from the first fold).  The data path is an argument; nothing of it is copied.
"""

from __future__ import annotations

import argparse
import html
import os
import time

import numpy as np
from _common import RESULTS, parse_param, save_result
from _plots import save_learning_curve

FILES = {
    "tweets": "tweets_GroundTruth.txt",
    "amazon": "amazonReviewSnippets_GroundTruth.txt",
    "nyt": "nytEditorialSnippets_GroundTruth.txt",
}
PAPER_R = {"tweets": {"VADER": 0.881, "individual humans": 0.888},
           "amazon": {"VADER": 0.565, "individual humans": 0.911},
           "nyt": {"VADER": 0.492, "individual humans": 0.745}}
PAPER_F1 = {"tweets": 0.96, "amazon": 0.63, "nyt": 0.55}
TARGET_R = {"tweets": 0.90, "amazon": 0.85, "nyt": 0.75}
RIDGE_ALPHAS = np.logspace(-3, 3, 13)  # the frozen baseline's RidgeCV grid


def load_set(path: str):
    texts, ratings = [], []
    with open(path, encoding="ascii", errors="replace", newline="") as f:
        for line in f:
            parts = line.rstrip("\r\n").split("\t", 2)
            if len(parts) != 3:
                continue
            ratings.append(float(parts[1]))
            texts.append(html.unescape(parts[2]))
    return texts, np.asarray(ratings)


def load_named_set(data_dir: str, name: str):
    """``(texts, ratings)`` of the VADER set ``name`` in ``data_dir``, or exit saying where to look."""
    path = os.path.join(data_dir, FILES[name])
    if not os.path.isfile(path):
        raise SystemExit(f"{path} not found: pass the folder holding the VADER ground-truth files.")
    return load_set(path)


def vader_folds(texts, n_folds: int = 5) -> list:
    """The benchmark's folds: ``KFold(n_folds, shuffle=True, random_state=0)`` over ``texts``."""
    from sklearn.model_selection import KFold

    return list(KFold(n_folds, shuffle=True, random_state=0).split(texts))


def three_class(values, threshold=0.05):
    return np.where(values > threshold, 1, np.where(values < -threshold, -1, 0))


def frozen_ridge_oof(texts, y, folds):
    """Out-of-fold predictions of RidgeCV on frozen, mean-pooled all-MiniLM-L6-v2 embeddings."""
    from sklearn.linear_model import RidgeCV

    from sktransfer import get_spec
    from sktransfer._estimators.base import resolve_device
    from sktransfer._features.extraction import extract_features
    from sktransfer._inputs import make_adapter
    from sktransfer._nn.backbone_cache import build_backbone
    from sktransfer._nn.module import TransferModule

    spec = get_spec("all-MiniLM-L6-v2")
    adapter = make_adapter(spec)
    module = TransferModule(build_backbone(spec, True)[0], 384, 1, pooling="mean")
    device = resolve_device("auto")
    module.to(device)
    emb = extract_features(module, adapter.dataset(texts), adapter.collate_fn, 64, device).numpy()
    oof = np.zeros_like(y)
    for train, test in folds:
        oof[test] = RidgeCV(alphas=RIDGE_ALPHAS).fit(emb[train], y[train]).predict(emb[test])
    return oof


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", nargs="?", default=os.path.join("..", "shared", "data", "vader"))
    parser.add_argument("--sets", nargs="+", choices=list(FILES), default=list(FILES))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--max-folds", type=int, default=None,
                        help="fine-tune only the first folds (a quicker check); scored on their rows, saved apart")
    parser.add_argument("--max-rows", type=int, default=None, help="use only the first rows (quick checks)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="a TransferRegressor setting on top of the defaults, e.g. --param head_epochs=1 "
                             "(repeatable); the run is saved under its own key")
    args = parser.parse_args()

    from scipy.stats import pearsonr
    from sklearn.metrics import f1_score

    from sktransfer import TransferRegressor

    results = {}
    for name in args.sets:
        texts, y = load_named_set(args.data_dir, name)
        if args.max_rows:
            texts, y = texts[: args.max_rows], y[: args.max_rows]
        folds = vader_folds(texts, args.folds)
        start = time.perf_counter()
        frozen = frozen_ridge_oof(texts, y, folds)
        frozen_s = time.perf_counter() - start
        run = folds[: args.max_folds] if args.max_folds else folds
        scored = np.sort(np.concatenate([test for _, test in run]))
        key = name if len(run) == len(folds) else f"{name}, first {len(run)} of {len(folds)} folds, {args.epochs} epochs"
        if args.param:
            key += ", " + ", ".join(args.param)
        params = dict(parse_param(p) for p in args.param)

        oof = np.zeros_like(y)
        start = time.perf_counter()
        history = None
        per_fold = []
        for k, (train, test) in enumerate(run):
            reg = TransferRegressor(
                "all-MiniLM-L6-v2", max_epochs=args.epochs, validation_fraction=0.1 if k == 0 else None,
                random_state=0, **params,
            )
            reg.fit([texts[i] for i in train], y[train])
            oof[test] = reg.predict([texts[i] for i in test])
            if k == 0:
                history = reg.net_.history
            per_fold.append(float(pearsonr(oof[test], y[test])[0]))
            print(f"  {name} fold {k + 1}/{args.folds}: r = {per_fold[-1]:.3f}", flush=True)
        ours_s = time.perf_counter() - start

        oof, frozen, y_scored = oof[scored], frozen[scored], y[scored]
        r_ours, r_frozen = pearsonr(oof, y_scored)[0], pearsonr(frozen, y_scored)[0]
        truth = three_class(y_scored)
        f1_ours = f1_score(truth, three_class(oof), average="weighted")
        f1_frozen = f1_score(truth, three_class(frozen), average="weighted")
        results[key] = {
            "rows": len(y_scored), "pearson_r": r_ours, "pearson_r_frozen_ridge": r_frozen,
            "f1_3class_weighted": f1_ours, "f1_3class_weighted_frozen_ridge": f1_frozen,
            "paper_r": PAPER_R[name], "paper_vader_f1": PAPER_F1[name], "target_r": TARGET_R[name],
            "met": bool(r_ours >= TARGET_R[name]), "seconds": ours_s, "frozen_seconds": frozen_s,
            "epochs": args.epochs, "lr": reg.lr, "params": args.param,
            "pearson_r_per_fold": per_fold,
        }
        curve = f"vader-{name}-curve.png" if key == name else f"vader-{name}-{len(run)}of{len(folds)}-{args.epochs}ep-curve.png"
        if args.param:
            curve = curve.replace("-curve.png", "-" + "-".join(p.replace("=", "") for p in args.param) + "-curve.png")
        png = save_learning_curve(history, os.path.join(RESULTS, curve),
                                  f"VADER {name}: all-MiniLM-L6-v2 fine-tuned, fold 1")
        results[key]["learning_curve"] = os.path.basename(png)
        print(f"{key}: Pearson r fine-tuned {r_ours:.3f} | frozen + RidgeCV {r_frozen:.3f} | "
              f"VADER {PAPER_R[name]['VADER']} | humans {PAPER_R[name]['individual humans']} | "
              f"target {TARGET_R[name]} {'met' if r_ours >= TARGET_R[name] else 'NOT met'}")
        print(f"{key}: 3-class F1 fine-tuned {f1_ours:.3f} | frozen + RidgeCV {f1_frozen:.3f} | "
              f"VADER (paper) {PAPER_F1[name]} | {ours_s:.0f}s", flush=True)
        # Saved after every set: a long run that is stopped keeps what it finished.
        save_vader(results, args)


def save_vader(results: dict, args) -> None:
    """Merge this run's sets into results/vader-<device>.json (sets run separately add up)."""
    import json

    import torch

    path = os.path.join(RESULTS, f"vader-{'cuda' if torch.cuda.is_available() else 'cpu'}.json")
    sets = {}
    if os.path.isfile(path):
        with open(path) as f:
            sets = json.load(f).get("sets", {})
    sets.update(results)
    # Epochs and lr are recorded per set: sets run separately may have used different ones.
    save_result("vader", {"folds": args.folds, "max_rows": args.max_rows,
                          "model": "TransferRegressor('all-MiniLM-L6-v2')", "sets": sets})


if __name__ == "__main__":
    main()
