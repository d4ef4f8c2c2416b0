"""Searches on a dask.distributed cluster: joblib.parallel_config(backend="dask").

One LocalCluster of two worker processes serves the whole module: starting one costs
seconds, and each worker imports torch once.
"""

import os
import time

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

import joblib  # noqa: E402
from _tiny_backbones import CountingCNN  # noqa: E402  (tests/ is on sys.path: pytest rootdir import)
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_validate  # noqa: E402

import sktransfer  # noqa: E402
from sktransfer import FsspecFeatureStore, TransferClassifier  # noqa: E402

TESTS = os.path.dirname(os.path.abspath(__file__))
DRY_RUN_ROWS = 2  # every fit checks the backbone's output size on two samples


def _add_to_path(path):
    import sys

    if path not in sys.path:
        sys.path.insert(0, path)


def _rows_seen(reset=False):
    from _tiny_backbones import CountingCNN

    seen = CountingCNN.rows_seen
    if reset:
        CountingCNN.rows_seen = 0
    return seen


def _where_sktransfer_is():
    import sktransfer

    return sktransfer.__file__


def _example_and_text_backbones():
    import sktransfer

    return sktransfer.list_backbones(pattern="example_*"), "all-MiniLM-L6-v2" in sktransfer.list_backbones("text")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    )
    client = distributed.Client(cluster)
    client.run(_add_to_path, TESTS)  # the tiny test backbones pickle by reference to this directory
    yield client
    # Nothing may hang on shutdown: both closes are bounded.
    started = time.perf_counter()
    client.close(timeout=30)
    cluster.close(timeout=30)
    assert time.perf_counter() - started < 60
    assert cluster.status.name == "closed"


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    # Dask's nanny starts workers with OMP_NUM_THREADS=1, so torch runs one thread there.
    # The local runs compared with them use one too: another thread count sums floats in
    # another order, and after a few fine-tuning steps a borderline prediction can flip
    # (measured: one digit of 60 in one candidate, with 2 threads here).
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits_small():
    from sklearn.datasets import load_digits

    data = load_digits()
    keep = data.target < 3
    return data.images[keep][:60], data.target[keep][:60]


def test_workers_find_the_plugins_and_the_offline_weights(client):
    answers = client.run(_example_and_text_backbones)
    assert len(answers) == 2
    for examples, has_minilm in answers.values():
        assert examples == ["example_tinycnn"]  # the example plugin's entry point, found in each worker
        assert has_minilm
    # ...and they import this sktransfer, not another installed copy.
    assert set(client.run(_where_sktransfer_is).values()) == {sktransfer.__file__}


def test_grid_search_on_dask_matches_the_local_one(client, digits_small):
    X, y = digits_small
    search = GridSearchCV(
        TransferClassifier("example_tinycnn", image_size=16, max_epochs=2, batch_size=16, random_state=0),
        {"lr": [3e-3, 3e-2], "strategy": ["full", "head"]},
        cv=StratifiedKFold(2, shuffle=True, random_state=0),
    )
    local = GridSearchCV(**search.get_params(deep=False)).set_params(n_jobs=1).fit(X, y)
    with joblib.parallel_config(backend="dask"), distributed.get_task_stream(client) as tasks:
        remote = GridSearchCV(**search.get_params(deep=False)).set_params(n_jobs=-1).fit(X, y)
    assert {task["worker"] for task in tasks.data} == set(client.scheduler_info()["workers"])  # both workers fitted
    assert remote.best_params_ == local.best_params_
    # The same seeds and one torch thread on both sides give the same training in a
    # worker as here: equal scores. The probabilities get a tolerance of float32
    # rounding only, in case a kernel picks another code path in another process.
    for name in ("split0_test_score", "split1_test_score", "mean_test_score"):
        np.testing.assert_array_equal(remote.cv_results_[name], local.cv_results_[name])
    np.testing.assert_allclose(remote.predict_proba(X), local.predict_proba(X), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(remote.predict(X), local.predict(X))


def test_cross_validate_on_dask_matches_the_local_one(client, digits_small):
    X, y = digits_small
    clf = TransferClassifier("example_tinycnn", image_size=16, max_epochs=1, batch_size=16, lr=1e-2, random_state=0)
    local = cross_validate(clf, X, y, cv=2, return_estimator=True)
    with joblib.parallel_config(backend="dask"):
        remote = cross_validate(clf, X, y, cv=2, return_estimator=True, n_jobs=-1)
    np.testing.assert_array_equal(remote["test_score"], local["test_score"])
    for here, there in zip(local["estimator"], remote["estimator"]):
        np.testing.assert_allclose(there.predict_proba(X), here.predict_proba(X), rtol=1e-6, atol=1e-7)


@pytest.mark.slow
def test_frozen_minilm_search_on_dask(client, sentences):
    X, y = sentences
    search = GridSearchCV(
        TransferClassifier("all-MiniLM-L6-v2", strategy="head", max_epochs=5, batch_size=12, random_state=0),
        {"C": [1.0, 10.0]},  # the frozen head is solved by L-BFGS: C is its knob
        cv=StratifiedKFold(2, shuffle=True, random_state=0),
    )
    local = GridSearchCV(**search.get_params(deep=False)).fit(X, y)
    with joblib.parallel_config(backend="dask"):
        remote = GridSearchCV(**search.get_params(deep=False)).set_params(n_jobs=-1).fit(X, y)
    assert remote.best_params_ == local.best_params_
    np.testing.assert_array_equal(remote.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"])
    # The pretrained encoder, loaded offline in each worker, separates these sentences.
    assert remote.best_score_ >= 0.9


def test_a_shared_fsspec_store_lets_every_worker_reuse_the_others_rows(client, tmp_path, noise_images):
    X, y = noise_images
    store = FsspecFeatureStore(f"file://{tmp_path}")
    clf = TransferClassifier(CountingCNN(), strategy="head", image_size=16, max_epochs=1, batch_size=16,
                             random_state=0, feature_cache=store)
    client.run(_rows_seen, True)
    with joblib.parallel_config(backend="dask"):
        search = GridSearchCV(clf, {"lr": [1e-3, 1e-2, 1e-1]}, cv=2, n_jobs=-1).fit(X, y)
    per_worker = client.run(_rows_seen, True)
    assert sum(per_worker.values()) >= len(X)  # the workers ran the backbone, not this process
    assert min(per_worker.values()) >= DRY_RUN_ROWS  # both fitted candidates: both read and wrote the directory
    assert len(store) == len(X)  # the workers' rows all landed in the one directory
    # Every row is in the store now: workers compute none of them again, whichever
    # process wrote them, and only the 2-sample dry run of each fit runs the backbone.
    with joblib.parallel_config(backend="dask"):
        cross_validate(search.best_estimator_, X, y, cv=4, n_jobs=-1)
    assert sum(client.run(_rows_seen, True).values()) == DRY_RUN_ROWS * 4
    assert not [name for _, _, names in os.walk(tmp_path) for name in names if ".tmp-" in name]
