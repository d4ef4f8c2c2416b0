"""A fine-tuning GridSearchCV on a 2-worker Dask LocalCluster against the same search with n_jobs=1.

    python benchmarks/dask_search.py [--n 400] [--backbone efficientnet_lite0] [--image-size 32]
                                     [--workers 2]

Grid: strategy="full", lr x max_epochs = 2 x 2 candidates, cv=2 (8 fits, then the refit
of the best in this process, as GridSearchCV does under either backend), on scikit-learn's
digits as images. Both searches run in this one run, side by side, local first.

Prints and saves (benchmarks/results/dask_search-<device>.json):
- ``local_s`` and ``dask_s``: wall time of each search (the cluster is started and its
  workers have imported torch and sktransfer before the clock starts; ``cluster_start_s``
  is that start);
- ``speedup``: local_s / dask_s;
- ``same_results``: whether both searches found the same scores and best parameters
  (torch uses all cores here, one thread in each worker: float sums in another order
  can flip a borderline prediction);
- pickle sizes: the unfitted estimator, and the fitted ``best_estimator_``, as
  ``len(pickle.dumps(...))``: what travels to (and from) the workers.
"""

from __future__ import annotations

import argparse
import pickle

from _common import Timer, digits_images, save_result


def _warm_up():
    import torch

    import sktransfer  # noqa: F401  (imports torch, skorch, the plugins)

    return torch.get_num_threads()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    import joblib
    import numpy as np
    import torch
    from distributed import Client, LocalCluster
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    from sktransfer import TransferClassifier

    X, y = digits_images(args.n)
    estimator = TransferClassifier(
        args.backbone, strategy="full", image_size=args.image_size, batch_size=32, random_state=0
    )
    grid = {"lr": [3e-3, 1e-2], "max_epochs": [1, 2]}
    cv = StratifiedKFold(2, shuffle=True, random_state=0)

    def search(**kw):
        with Timer() as t:
            gs = GridSearchCV(estimator, grid, cv=cv, **kw).fit(X, y)
        return t.seconds, gs

    local_s, local = search(n_jobs=1)
    print(f"local n_jobs=1 ({torch.get_num_threads()} torch threads): {local_s:.1f}s, "
          f"best {local.best_params_} accuracy {local.best_score_:.3f}")

    with Timer() as start:
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None)
        client = Client(cluster)
        worker_threads = sorted(client.run(_warm_up).values())
    print(f"LocalCluster of {args.workers} workers started and warmed up in {start.seconds:.1f}s")
    try:
        with joblib.parallel_config(backend="dask"):
            dask_s, remote = search(n_jobs=-1)
    finally:
        client.close(timeout=60)
        cluster.close(timeout=60)
    print(f"dask, {args.workers} workers x 1 thread: {dask_s:.1f}s, best {remote.best_params_} "
          f"accuracy {remote.best_score_:.3f}")

    same = remote.best_params_ == local.best_params_ and np.allclose(
        remote.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"], rtol=0, atol=1e-12
    )
    sizes = {
        "unfitted_estimator_bytes": len(pickle.dumps(estimator)),
        "fitted_best_estimator_bytes": len(pickle.dumps(remote.best_estimator_)),
    }
    print(f"speedup {local_s / dask_s:.2f}x; same results: {same}; pickle sizes {sizes}")
    save_result(
        "dask_search",
        {
            "backbone": args.backbone,
            "strategy": "full",
            "n_images": len(X),
            "image_size": args.image_size,
            "grid": grid,
            "folds": 2,
            "fits": 8,
            "workers": args.workers,
            "threads_per_worker": 1,
            "worker_torch_threads": worker_threads,
            "local_s": round(local_s, 2),
            "dask_s": round(dask_s, 2),
            "cluster_start_s": round(start.seconds, 2),
            "speedup": round(local_s / dask_s, 2),
            "local_refit_s": round(local.refit_time_, 2),
            "dask_refit_s": round(remote.refit_time_, 2),
            "same_results": bool(same),
            "local_mean_test_score": local.cv_results_["mean_test_score"].round(4).tolist(),
            "dask_mean_test_score": remote.cv_results_["mean_test_score"].round(4).tolist(),
            "best_params": remote.best_params_,
            **sizes,
        },
    )


if __name__ == "__main__":
    main()
