"""Intermediate stages (``layers=``) of a frozen EfficientNet-Lite0 on Fashion-MNIST, and what a search over them costs.

    python benchmarks/stages.py [--n-train 2000] [--image-size 128] [--n-test N] [--skip-accuracy]

The CPU setting of ``fashion_mnist.py`` (the same 2,000 stratified training images,
128 px, the full 10,000-image test set) with ``strategy="head"``:

1. test accuracy of ``TransferClassifier("efficientnet_lite0", strategy="head",
   layers=...)`` for each stage set of ``STAGE_SETS`` (the last stage alone, the
   default ``None`` = the backbone's final features, the top two and three stages, a
   middle stage alone), each with the library's defaults otherwise (``random_state=0``);
2. the search cost ratio: a ``GridSearchCV`` over ``layers`` x ``lr`` (2 values), ``cv=3``,
   on the training images with a fresh feature cache, divided by one plain embedding
   pass (the pretrained backbone's final features) over the same images, both timed in
   this run as in ``frozen_search.py`` (target <= 1.3).  Two grids, each on its own
   fresh cache: A, every stage set above (``layers=None`` included); B, the explicit
   stage lists only.  ``layers=None`` reads the final features, which the cache keeps
   apart from the stages, so grid A needs a second backbone pass.

The searches run first; the accuracies come after them and reuse the training
features of the last one.  ``--skip-accuracy`` measures the ratio alone (a repeat on a
noisy machine) and saves it apart, in ``results/stages-ratio-<device>.json``.  Saves ``results/stages-<device>.json``.
"""

from __future__ import annotations

import argparse
import time

from _common import Timer, git_commit, save_result
from fashion_mnist import DATA_DIR, ensure_data, load_split

LRS = [1e-3, 1e-2]


def stage_sets(stages: list[str]) -> list:
    """The stage sets compared: [-1], None, [-2, -1], [-3, -2, -1] and a middle stage alone."""
    middle = stages[len(stages) // 2 - (1 if len(stages) % 2 == 0 else 0)]
    return [[-1], None, [-2, -1], [-3, -2, -1], [middle]]


def one_pass_seconds(X, backbone: str, image_size: int) -> float:
    """One plain embedding pass (final features) over X, as frozen_search.py measures it."""
    import torch

    from sktransfer import get_spec
    from sktransfer._estimators.base import resolve_device
    from sktransfer._features.extraction import extract_features
    from sktransfer._inputs import make_adapter
    from sktransfer._nn.backbone_cache import build_backbone
    from sktransfer._nn.module import TransferModule
    from sktransfer._training.net import fast_path

    spec = get_spec(backbone)
    device = resolve_device("auto")
    fast = fast_path(device, "auto", spec.modality)
    adapter = make_adapter(spec, image_size=image_size)
    source = adapter.check(X)
    module = TransferModule(build_backbone(spec, True)[0], spec.get_feature_dim(), 1).to(device)
    warm_up = torch.utils.data.Subset(adapter.dataset(source), range(32))
    extract_features(module, warm_up, adapter.collate_fn, 32, device, fast)
    with Timer() as t:
        extract_features(module, adapter.dataset(source), adapter.collate_fn, 32, device, fast)
    return t.seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--n-test", type=int, default=None, help="use only the first test images (quick checks)")
    parser.add_argument("--data-dir", default=DATA_DIR)
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    parser.add_argument("--skip-accuracy", action="store_true",
                        help="only the search cost ratio, saved apart (results/stages-ratio-<device>.json)")
    args = parser.parse_args()

    import torch
    from sklearn.model_selection import GridSearchCV, train_test_split

    import sktransfer
    from sktransfer import TransferClassifier
    from sktransfer._features.stores import memory_store

    torch.set_num_threads(args.threads)
    name = "stages-ratio" if args.skip_accuracy else "stages"
    backbone = "efficientnet_lite0"
    stages = sktransfer.list_stages(backbone)
    sets = stage_sets(stages)
    print(f"{backbone} stages: {stages}; stage sets compared: {sets}")

    ensure_data(args.data_dir)
    X_all, y_all = load_split(args.data_dir, "train")
    X_test, y_test = load_split(args.data_dir, "t10k")
    X_test, y_test = X_test[: args.n_test], y_test[: args.n_test]
    X, _, y, _ = train_test_split(X_all, y_all, train_size=args.n_train, stratify=y_all, random_state=0)
    print(f"Fashion-MNIST: {len(y)} training images, {len(y_test)} test images, {args.image_size} px")
    run_start = time.perf_counter()

    def estimator(**params):
        return TransferClassifier(backbone, strategy="head", image_size=args.image_size, random_state=0, **params)

    # 1. The search cost ratio, each search on a fresh cache.  Grid A holds every stage set,
    # the default layers=None (the final features) included; grid B only the explicit
    # stage lists, which one backbone pass serves together.
    memory_store().clear()
    one_pass_s = one_pass_seconds(X, backbone, args.image_size)
    print(f"one embedding pass over {len(y)} images at {args.image_size}px: {one_pass_s:.2f}s", flush=True)
    result = {
        "backbone": backbone, "stages": stages, "stage_sets": sets, "n_train": len(y), "n_test": len(y_test),
        "image_size": args.image_size, "torch_threads": args.threads, "one_pass_s": one_pass_s,
        "target_ratio": 1.3, "searches": {}, "git_commit": git_commit(),
    }
    searches = {}
    for label, layer_sets in (("A: all stage sets, layers=None included", sets),
                              ("B: explicit stage lists only (no layers=None)", [s for s in sets if s is not None])):
        memory_store().clear()
        grid = {"layers": layer_sets, "lr": LRS}
        with Timer() as t:
            gs = GridSearchCV(estimator(), grid, cv=3).fit(X, y)
        searches[label] = gs
        n_candidates = len(gs.cv_results_["params"])
        ratio = t.seconds / one_pass_s
        print(f"GridSearchCV {label}: {n_candidates} candidates x 3 folds: {t.seconds:.2f}s; ratio {ratio:.2f} "
              f"(target <= 1.3); best {gs.best_params_} cv accuracy {gs.best_score_:.3f}", flush=True)
        result["searches"][label] = {
            "grid": grid, "cv": 3, "candidates": n_candidates, "fits": n_candidates * 3 + 1,
            "search_s": t.seconds, "ratio": ratio, "met": ratio <= 1.3, "best_params": gs.best_params_,
            "best_cv_accuracy": gs.best_score_,
            "cv_results": [{"params": p, "mean_cv_accuracy": float(m), "std_cv_accuracy": float(s)}
                           for p, m, s in zip(gs.cv_results_["params"], gs.cv_results_["mean_test_score"],
                                              gs.cv_results_["std_test_score"])],
        }
        result["device"] = str(gs.best_estimator_.device_)
    save_result(name, result)

    # 2. Test accuracy per stage set (library defaults otherwise), and the search's refit best model.
    if not args.skip_accuracy:
        accuracies = []
        for layers in sets:
            clf = estimator(layers=layers)
            with Timer() as fit:
                clf.fit(X, y)
            with Timer() as score:
                accuracy = clf.score(X_test, y_test)
            accuracies.append({"layers": layers, "resolved": clf.layers_,
                               "feature_dim": clf.net_.module_.head.in_features, "lr": clf.lr,
                               "test_accuracy": accuracy, "fit_s": fit.seconds, "score_s": score.seconds})
            print(f"layers={layers!r}: test accuracy {accuracy:.4f} (fit {fit.seconds:.1f}s, "
                  f"score {score.seconds:.1f}s)", flush=True)
        result["accuracy"] = accuracies
        for label, gs in searches.items():
            best_accuracy = gs.score(X_test, y_test)
            result["searches"][label]["best_test_accuracy"] = best_accuracy
            print(f"search {label}: best {gs.best_params_}, test accuracy {best_accuracy:.4f}")
    result["wall_s"] = time.perf_counter() - run_start
    save_result(name, result)


if __name__ == "__main__":
    main()
