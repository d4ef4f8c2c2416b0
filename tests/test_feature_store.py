"""feature_cache= a store object: the FeatureStore interface, the shipped stores' copies, FsspecFeatureStore."""

import copy
import gc
import os
import pickle
import subprocess
import sys
import uuid
import warnings
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest
from _tiny_backbones import CountingCNN  # tests/ is on sys.path (pytest rootdir import)
from sklearn.model_selection import GridSearchCV
from sklearn.utils._param_validation import InvalidParameterError

from sktransfer import (
    DiskFeatureStore,
    FeatureStore,
    FsspecFeatureStore,
    MemoryFeatureStore,
    TransferClassifier,
    TransferEmbedder,
)
from sktransfer._features.stores import memory_store
from sktransfer.exceptions import FeatureCacheError, FeatureCacheWarning

fsspec = pytest.importorskip("fsspec")

DRY_RUN_ROWS = 2  # every fit checks the backbone's output size on two samples
WIDTH = 8  # CountingCNN's features


@pytest.fixture(autouse=True)
def _fresh(fresh_feature_cache):
    pass


@pytest.fixture
def images(noise_images):
    return noise_images


def head_clf(store, **kw):
    params = dict(strategy="head", image_size=16, max_epochs=2, batch_size=16, random_state=0, feature_cache=store)
    params.update(kw)
    return TransferClassifier(CountingCNN(), **params)


def memory_url():
    return f"memory://sktransfer-test-{uuid.uuid4().hex}"


STORES = {
    "memory": lambda tmp: MemoryFeatureStore(),
    "sqlite": lambda tmp: DiskFeatureStore(tmp / "sqlite"),
    "fsspec-file": lambda tmp: FsspecFeatureStore(f"file://{tmp / 'rows'}"),
    "fsspec-memory": lambda tmp: FsspecFeatureStore(memory_url()),
}


def rows(n, width=WIDTH, seed=0):
    rng = np.random.RandomState(seed)
    return {uuid.uuid4().bytes: rng.normal(size=width).astype(np.float32) for _ in range(n)}


# ------------------------------------------------------------------ the interface
@pytest.mark.parametrize("kind", STORES)
def test_every_shipped_store_is_a_feature_store_and_round_trips_rows(kind, tmp_path):
    store = STORES[kind](tmp_path)
    assert isinstance(store, FeatureStore)
    stored = rows(5)
    store.put_many(stored)
    missing = uuid.uuid4().bytes
    found = store.get_many([*stored, missing])
    assert set(found) == set(stored)
    for key, row in stored.items():
        assert found[key].dtype == np.float32
        np.testing.assert_array_equal(found[key], row)


@pytest.mark.parametrize("kind", STORES)
def test_a_copy_of_a_store_is_a_handle_on_the_same_rows(kind, tmp_path):
    # clone deep-copies parameters; parallel searches pickle them: both must reach the same rows.
    store = STORES[kind](tmp_path)
    copied, unpickled = copy.deepcopy(store), pickle.loads(pickle.dumps(store))
    stored = rows(3)
    copied.put_many(stored)
    assert set(unpickled.get_many(list(stored))) == set(stored)
    assert set(store.get_many(list(stored))) == set(stored)


@pytest.mark.parametrize("kind", STORES)
def test_grid_search_candidates_share_rows_through_a_store_object(kind, images, tmp_path):
    X, y = images
    store = STORES[kind](tmp_path)
    GridSearchCV(head_clf(store), {"lr": [1e-3, 1e-2], "max_epochs": [1, 2]}, cv=2).fit(X, y)
    n_fits = 4 * 2 + 1
    # Every row ran through the backbone once, whichever candidate, fold or refit asked first.
    assert CountingCNN.rows_seen == len(X) + DRY_RUN_ROWS * n_fits
    assert len(memory_store()) == 0  # the rows went to the store passed, not to the default one


def test_a_memory_store_unpickled_in_another_process_is_that_process_s_own(tmp_path):
    store = MemoryFeatureStore(max_bytes=1234)
    blob = pickle.dumps(store)
    store.put_many(rows(2))
    del store
    gc.collect()  # as in a worker process, which never had the original
    first, second = pickle.loads(blob), pickle.loads(blob)
    assert first is second and len(first) == 0 and first.max_bytes == 1234


def test_the_store_object_s_methods_are_checked_at_fit(images):
    X, y = images

    class OnlyGets:
        def get_many(self, keys):
            return {}

    with pytest.raises(InvalidParameterError, match="get_many' and 'put_many"):
        head_clf(OnlyGets()).fit(X, y)
    with pytest.raises(InvalidParameterError, match="get_many' and 'put_many"):
        TransferEmbedder(CountingCNN(), feature_cache=OnlyGets()).fit(X)


class Returns:
    """A store that answers every key with ``make(key)`` and stores nothing."""

    def __init__(self, make):
        self.make = make

    def get_many(self, keys):
        return self.make(keys)

    def put_many(self, rows):
        pass


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda keys: {k: np.zeros(3, np.float32) for k in keys}, ValueError, "rows have 3 features, but the backbone gives 8"),
        (lambda keys: {k: np.zeros(WIDTH, np.int64) for k in keys}, ValueError, "dtype int64"),
        (lambda keys: {k: np.zeros((2, 4), np.float32) for k in keys}, ValueError, r"shape \(2, 4\)"),
        (lambda keys: {k: [0.0] * WIDTH for k in keys}, ValueError, "a list instead of a numpy array"),
        (lambda keys: {b"other": np.zeros(WIDTH, np.float32)}, ValueError, "not asked for"),
        (lambda keys: [np.zeros(WIDTH, np.float32)] * len(keys), TypeError, "not a dict"),
        (lambda keys: {k: np.zeros(WIDTH + (i % 2), np.float32) for i, k in enumerate(keys)}, ValueError,
         r"different lengths \[8, 9\]"),
    ],
    ids=["width", "dtype", "shape", "not-array", "foreign-key", "not-dict", "ragged"],
)
def test_rows_a_store_returns_wrongly_are_a_clear_error(images, make, error, message):
    X, y = images
    with pytest.raises(error, match=message):
        head_clf(Returns(make)).fit(X, y)


def test_rows_of_the_wrong_width_for_part_of_X_are_caught_against_the_computed_ones(images):
    X, y = images
    # Half the keys answered with 3-wide rows, the other half computed (8 wide).
    store = Returns(lambda keys: {k: np.zeros(3, np.float32) for k in keys[::2]})
    with pytest.raises(ValueError, match=r"different lengths \[3, 8\]"):
        head_clf(store).fit(X, y)


# ------------------------------------------------------------------ FsspecFeatureStore
def test_fsspec_store_layout_is_one_file_per_row_under_a_hashed_prefix(tmp_path):
    store = FsspecFeatureStore(tmp_path)
    stored = rows(4)
    store.put_many(stored)
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert files == sorted(f"{k.hex()[:2]}/{k.hex()}.npy" for k in stored)  # no temporary files left
    assert len(store) == 4
    store.clear()
    assert len(store) == 0 and store.get_many(list(stored)) == {}


def test_fsspec_store_on_the_memory_file_system(tmp_path):
    url = memory_url()
    store = FsspecFeatureStore(url)
    stored = rows(3)
    store.put_many(stored)
    # Another handle on the same URL (in this process: memory:// is per process).
    assert set(FsspecFeatureStore(url).get_many(list(stored))) == set(stored)
    assert len(fsspec.filesystem("memory").find(url)) == 3


def test_an_unreadable_row_file_is_a_miss_with_a_warning_and_is_rewritten(images, tmp_path):
    X, y = images
    store = FsspecFeatureStore(tmp_path)
    head_clf(store).fit(X, y)
    victim = next(tmp_path.rglob("*.npy"))
    victim.write_bytes(b"\x93NUMPY garbage")
    CountingCNN.rows_seen = 0
    with pytest.warns(FeatureCacheWarning, match="unreadable row file"):
        head_clf(store).fit(X, y)
    assert CountingCNN.rows_seen == DRY_RUN_ROWS + 1  # only that row was computed again
    with warnings.catch_warnings():
        warnings.simplefilter("error", FeatureCacheWarning)
        head_clf(store).fit(X, y)  # and written whole again


def _write_rows(url, seed):
    # Every writer writes the same 50 keys (the same rows: features depend only on the key).
    rng = np.random.RandomState(0)
    keys = [bytes([i]) * 16 for i in range(50)]
    shared = {k: rng.normal(size=WIDTH).astype(np.float32) for k in keys}
    store = FsspecFeatureStore(url)
    for _ in range(5):
        store.put_many(shared)
        found = store.get_many(keys)
        assert all(np.array_equal(found[k], shared[k]) for k in found)  # never half a row
    return len(found)


def test_concurrent_writers_of_the_same_keys_threads_and_processes(tmp_path):
    url = f"file://{tmp_path}"
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(_write_rows, [url] * 4, range(4))) == [50] * 4
    with ProcessPoolExecutor(2) as pool:
        assert list(pool.map(_write_rows, [url] * 2, range(2))) == [50] * 2
    assert len(FsspecFeatureStore(url)) == 50
    assert not [p for p in tmp_path.rglob("*") if ".tmp-" in p.name]


def test_fsspec_store_bad_arguments_are_clear_errors(tmp_path):
    with pytest.raises(TypeError, match="url must be a str or path"):
        FsspecFeatureStore(42)
    with pytest.raises(ValueError, match="fsspec can't open this URL"):
        FsspecFeatureStore("nosuchprotocol://bucket/features")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    store = FsspecFeatureStore(blocker / "rows")
    with pytest.raises(FeatureCacheError, match="failed while writing rows"):
        store.put_many(rows(1))


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs POSIX permissions and a non-root user")
def test_an_unwritable_fsspec_directory_is_a_feature_cache_error(images, tmp_path):
    X, y = images
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(FeatureCacheError, match="can write there"):
            head_clf(FsspecFeatureStore(tmp_path / "rows")).fit(X, y)
    finally:
        tmp_path.chmod(0o700)


def test_import_sktransfer_imports_neither_dask_nor_fsspec():
    code = "import sktransfer, sys; bad = {'dask', 'distributed', 'fsspec'} & set(sys.modules); assert not bad, bad"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_the_embedder_reads_the_rows_a_classifier_put_in_a_store_object(images, tmp_path):
    X, y = images
    store = FsspecFeatureStore(tmp_path)
    head_clf(store).fit(X, y)
    CountingCNN.rows_seen = 0
    embedded = TransferEmbedder(CountingCNN(), image_size=16, feature_cache=copy.deepcopy(store)).fit_transform(X)
    assert CountingCNN.rows_seen == DRY_RUN_ROWS  # its output-size check; every row came from the store
    fresh = TransferEmbedder(CountingCNN(), image_size=16, feature_cache=None).fit_transform(X)
    np.testing.assert_allclose(embedded, fresh, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("max_bytes", [-1, 1.5, "2GB", True])
def test_a_memory_store_s_bound_must_be_a_whole_number_of_bytes(max_bytes):
    with pytest.raises(ValueError, match="max_bytes must be an int >= 0"):
        MemoryFeatureStore(max_bytes)


def test_save_pretrained_refuses_a_store_object_and_says_what_to_do(tmp_path):
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(30, 5)), np.arange(30) % 2
    clf = TransferClassifier("mlp", max_epochs=1, random_state=0, feature_cache=MemoryFeatureStore()).fit(X, y)
    with pytest.raises(ValueError, match=r"can't store feature_cache=MemoryFeatureStore.*set_params\(feature_cache="):
        clf.save_pretrained(tmp_path / "model")
    clf.set_params(feature_cache="memory").save_pretrained(tmp_path / "model")  # the fix it names works
