"""A frozen-backbone GridSearchCV (12 head configurations x 5 folds) against one embedding pass.

    python benchmarks/frozen_search.py [--n 600] [--backbone efficientnet_lite0] [--image-size 224]
                                       [--skip-unshared]

Prints and saves (benchmarks/results/frozen_search-<device>.json):
- ``ratio``: search time with the shared feature cache / time of one embedding pass
  over the same data (target <= 1.5);
- ``speedup``: the same search without sharing (``feature_cache=None``) / with sharing.
All three timings are taken in this one run, side by side.
"""

from __future__ import annotations

import argparse

from _common import Timer, digits_images, save_result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--skip-unshared", action="store_true", help="don't time the search without sharing")
    args = parser.parse_args()

    import torch
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    from sktransfer import TransferClassifier, get_spec
    from sktransfer._estimators.base import resolve_device
    from sktransfer._features.extraction import extract_features
    from sktransfer._features.stores import memory_store
    from sktransfer._inputs import make_adapter
    from sktransfer._nn.backbone_cache import build_backbone
    from sktransfer._training.net import fast_path

    X, y = digits_images(args.n)
    spec = get_spec(args.backbone)
    device = resolve_device("auto")
    fast = fast_path(device, "auto", spec.modality)
    adapter = make_adapter(spec, image_size=args.image_size)
    source = adapter.check(X)

    # One embedding pass: the pretrained backbone over every image, batch by batch
    # (the same preprocessing, batch size and DataLoader an estimator uses).
    from sktransfer._nn.module import TransferModule

    module = TransferModule(build_backbone(spec, True)[0], spec.get_feature_dim(), 1).to(device)
    warm_up = torch.utils.data.Subset(adapter.dataset(source), range(32))
    extract_features(module, warm_up, adapter.collate_fn, 32, device, fast)
    with Timer() as one_pass:
        extract_features(module, adapter.dataset(source), adapter.collate_fn, 32, device, fast)
    print(f"one embedding pass over {len(X)} images at {args.image_size}px: {one_pass.seconds:.2f}s")

    grid = {"lr": [3e-3, 1e-2, 3e-2], "weight_decay": [0.0, 0.01], "max_epochs": [5, 10]}  # 12 configurations
    cv = StratifiedKFold(5, shuffle=True, random_state=0)

    def search(feature_cache):
        memory_store().clear()
        est = TransferClassifier(
            args.backbone, strategy="head", image_size=args.image_size, batch_size=32, random_state=0,
            feature_cache=feature_cache,
        )
        with Timer() as t:
            gs = GridSearchCV(est, grid, cv=cv).fit(X, y)
        return t.seconds, gs

    shared_s, gs = search("memory")
    print(f"GridSearchCV, 12 configurations x 5 folds, shared features: {shared_s:.2f}s "
          f"(best accuracy {gs.best_score_:.3f}, {len(gs.cv_results_['params'])} candidates)")
    result = {
        "backbone": args.backbone,
        "n_images": len(X),
        "image_size": args.image_size,
        "device": device,
        "configurations": 12,
        "folds": 5,
        "one_pass_s": one_pass.seconds,
        "search_shared_s": shared_s,
        "ratio": shared_s / one_pass.seconds,
        "target_ratio": 1.5,
        "best_score": gs.best_score_,
    }
    print(f"ratio search / one pass = {result['ratio']:.2f} (target <= 1.5)")
    if not args.skip_unshared:
        unshared_s, _ = search(None)
        result.update(search_unshared_s=unshared_s, speedup=unshared_s / shared_s)
        print(f"same search without sharing: {unshared_s:.1f}s; speedup {result['speedup']:.1f}x")
    save_result("frozen_search", result)


if __name__ == "__main__":
    main()
