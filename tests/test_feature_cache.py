"""Frozen features: one backbone pass per fit, shared across fits, never stale."""

import contextlib
import math
import os
import sqlite3
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from _tiny_backbones import (  # tests/ is on sys.path (pytest rootdir import)
    CountingCNN,
    brightness_images,
)
from sklearn.model_selection import GridSearchCV, cross_val_score

from sktransfer import TransferClassifier
from sktransfer._features.stores import (
    DiskFeatureStore,
    MemoryFeatureStore,
    memory_store,
)
from sktransfer.exceptions import FeatureCacheError, FeatureCacheWarning

pytestmark = pytest.mark.usefixtures("fresh_feature_cache")


@pytest.fixture(scope="module")
def images():
    return brightness_images(60)


DRY_RUN_ROWS = 2  # every fit checks the backbone's output size on two samples


def head_clf(backbone=None, **kw):
    params = dict(strategy="head", image_size=16, max_epochs=5, batch_size=16, random_state=0)
    params.update(kw)
    return TransferClassifier(backbone if backbone is not None else CountingCNN(), **params)


def test_one_backbone_pass_per_fit_whatever_the_epochs(images):
    X, y = images
    clf = head_clf(feature_cache=None, max_epochs=7, head_solver="optimizer").fit(X, y)
    assert CountingCNN.rows_seen == DRY_RUN_ROWS + len(X)
    assert len(clf.net_.history) == 7
    # ...and it trained on those features: 4 batches of 16 in every epoch.
    assert len(clf.net_.history[-1, "batches"]) == math.ceil(len(X) / 16)
    # The converged head (L-BFGS, the default) takes all the rows in one batch per epoch, from the same pass.
    CountingCNN.rows_seen = 0
    converged = head_clf(feature_cache=None, max_epochs=7).fit(X, y)
    assert CountingCNN.rows_seen == DRY_RUN_ROWS + len(X)
    assert 1 <= len(converged.net_.history) <= 7
    assert all(len(batches) == 1 for batches in converged.net_.history[:, "batches"])


def test_grid_search_shares_features_across_candidates_and_folds(images):
    X, y = images
    search = GridSearchCV(head_clf(), {"lr": [1e-3, 1e-2, 1e-1], "max_epochs": [2, 4]}, cv=3)
    search.fit(X, y)
    n_fits = 6 * 3 + 1
    # Every row ran through the backbone exactly once; test folds are predicted from the cache too.
    assert CountingCNN.rows_seen == len(X) + DRY_RUN_ROWS * n_fits
    assert memory_store().hits > 0


def test_cached_features_predict_exactly_like_fresh_ones(images):
    X, y = images
    cached = head_clf().fit(X, y)
    cached_again = head_clf().fit(X, y)  # fully from the cache
    fresh = head_clf(feature_cache=None).fit(X, y)
    np.testing.assert_allclose(cached_again.predict_proba(X), fresh.predict_proba(X), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cached.predict_proba(X), fresh.predict_proba(X), rtol=1e-5, atol=1e-6)


def test_only_new_or_changed_rows_are_computed(images):
    X, y = images
    clf = head_clf().fit(X[:40], y[:40])
    seen = CountingCNN.rows_seen
    clf.predict(X)  # 20 new rows
    assert CountingCNN.rows_seen == seen + 20
    changed = X.copy()
    changed[3, 0, 0, 0] ^= 1  # one pixel of one image
    seen = CountingCNN.rows_seen
    proba = clf.predict_proba(changed)
    assert CountingCNN.rows_seen == seen + 1
    fresh = head_clf(feature_cache=None).fit(X[:40], y[:40])
    np.testing.assert_allclose(proba, fresh.predict_proba(changed), rtol=1e-5, atol=1e-6)


def test_changed_weights_preprocessing_or_backbone_are_never_stale(images):
    X, y = images
    head_clf(CountingCNN(seed=0)).fit(X, y)
    seen = CountingCNN.rows_seen
    head_clf(CountingCNN(seed=0)).fit(X, y)  # same weights: all cached
    assert CountingCNN.rows_seen == seen + DRY_RUN_ROWS
    seen = CountingCNN.rows_seen
    head_clf(CountingCNN(seed=1)).fit(X, y)  # other weights
    assert CountingCNN.rows_seen == seen + DRY_RUN_ROWS + len(X)
    seen = CountingCNN.rows_seen
    head_clf(CountingCNN(seed=0), image_size=20).fit(X, y)  # other preprocessing
    assert CountingCNN.rows_seen == seen + DRY_RUN_ROWS + len(X)


def test_registered_backbones_are_keyed_by_name_and_initialisation(images):
    X, y = images
    a = head_clf("resnet18", pretrained=False, max_epochs=1).fit(X, y)
    misses = memory_store().misses
    head_clf("resnet18", pretrained=False, max_epochs=1).fit(X, y)  # same seed, same random weights
    assert memory_store().misses == misses
    head_clf("resnet18", pretrained=False, max_epochs=1, random_state=1).fit(X, y)
    assert memory_store().misses == misses + len(X)
    head_clf("mobilenet_v3_small", pretrained=False, max_epochs=1).fit(X, y)
    assert memory_store().misses == misses + 2 * len(X)
    assert a.feature_fingerprint_ is not None


def test_cache_is_bypassed_when_the_backbone_trains_or_augments(images):
    X, y = images
    head_clf(augment="default", max_epochs=1).fit(X, y)
    head_clf(strategy="full", max_epochs=1, head_epochs=0).fit(X, y)
    head_clf(strategy="partial", max_epochs=1, head_epochs=0).fit(X, y)
    assert len(memory_store()) == 0
    assert memory_store().hits == memory_store().misses == 0


def test_the_probe_before_fine_tuning_reads_the_cache(images):
    X, y = images
    head_clf(strategy="full", max_epochs=1).fit(X, y)  # head_epochs="auto": a converged probe first
    assert len(memory_store()) == len(X)  # the probe's frozen features, once per row
    head_clf(strategy="full", max_epochs=1).fit(X, y)
    assert memory_store().hits == len(X)  # the second fit's probe reads them back


def test_memory_store_is_bounded_and_evicts_least_recently_used():
    store = MemoryFeatureStore(max_bytes=3 * 4 * 10)  # three rows of 10 float32
    rows = {bytes([i]): np.full(10, i, dtype=np.float32) for i in range(3)}
    store.put_many(rows)
    store.get_many([bytes([0])])  # row 0 is now the most recent
    store.put_many({bytes([9]): np.zeros(10, dtype=np.float32)})
    assert len(store) == 3 and store.nbytes <= store.max_bytes
    assert set(store.get_many([bytes([i]) for i in (0, 1, 2, 9)])) == {bytes([0]), bytes([2]), bytes([9])}


def test_disk_cache_is_shared_by_worker_processes(images, tmp_path):
    X, y = images
    scores = cross_val_score(head_clf(feature_cache=str(tmp_path)), X, y, cv=3, n_jobs=2)
    assert scores.shape == (3,)
    assert not list(tmp_path.glob("*corrupt*"))  # concurrent writers wait for each other: no spurious rebuild
    store = DiskFeatureStore(tmp_path)
    assert len(store.get_many([b"nothing"])) == 0
    # Every row was written by the workers; a new fit here computes none of them.
    CountingCNN.rows_seen = 0
    head_clf(feature_cache=str(tmp_path)).fit(X, y)
    assert CountingCNN.rows_seen == DRY_RUN_ROWS


@pytest.mark.slow
def test_text_features_are_shared(sentences):
    X, y = sentences
    TransferClassifier("all-MiniLM-L6-v2", strategy="head", max_epochs=1).fit(X, y)
    misses = memory_store().misses
    assert misses == len(X)
    TransferClassifier("all-MiniLM-L6-v2", strategy="head", max_epochs=3, lr=0.1).fit(X[::2], y[::2])
    assert memory_store().misses == misses
    TransferClassifier("all-MiniLM-L6-v2", strategy="head", max_length=4, max_epochs=1).fit(X, y)
    assert memory_store().misses == 2 * misses  # truncation changes the features


@pytest.mark.slow
def test_frozen_fits_share_one_backbone_and_training_fits_copy_it(digits):
    X, y = digits
    params = dict(image_size=32, max_epochs=1, random_state=0)
    a = TransferClassifier("efficientnet_lite0", strategy="head", **params).fit(X, y)
    b = TransferClassifier("efficientnet_lite0", strategy="head", lr=0.1, **params).fit(X, y)
    assert a.net_.module_.backbone is b.net_.module_.backbone  # one read-only copy for frozen fits
    before = a.predict_proba(X)
    c = TransferClassifier("efficientnet_lite0", strategy="full", **params).fit(X, y)
    assert c.net_.module_.backbone is not a.net_.module_.backbone
    assert all(p.requires_grad for p in c.net_.module_.backbone.parameters())
    assert not any(p.requires_grad for p in a.net_.module_.backbone.parameters())
    np.testing.assert_array_equal(a.predict_proba(X), before)  # fine-tuning c left a untouched


def _write_ppm(path, pixels):
    # Uncompressed: every 12x12 image has the same byte size.
    from PIL import Image

    Image.fromarray(pixels).save(path, format="PPM")


def _ppm_files(folder, images) -> list[str]:
    paths = [str(folder / f"{i}.ppm") for i in range(len(images))]
    for path, pixels in zip(paths, images):
        _write_ppm(path, pixels)
    return paths


def test_a_file_rewritten_with_the_same_size_and_timestamps_is_not_stale(images, tmp_path):
    X, y = images
    paths = _ppm_files(tmp_path, X[:12])
    clf = head_clf(max_epochs=1).fit(paths, y[:12])
    before = clf.predict_proba(paths)
    stat = os.stat(paths[0])
    _write_ppm(paths[0], X[40])  # other pixels, same size...
    os.utime(paths[0], ns=(stat.st_atime_ns, stat.st_mtime_ns))  # ...and the old timestamps
    assert (os.stat(paths[0]).st_size, os.stat(paths[0]).st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    seen = CountingCNN.rows_seen
    after = clf.predict_proba(paths)
    assert CountingCNN.rows_seen == seen + 1  # only the rewritten file runs the backbone again
    assert not np.allclose(after[0], before[0])
    np.testing.assert_allclose(after[1:], before[1:])
    fresh = clf.set_params(feature_cache=None).predict_proba(paths)  # the backbone on every file
    np.testing.assert_allclose(after, fresh, rtol=1e-5, atol=1e-6)


def test_the_same_bytes_under_two_names_share_a_row(images, tmp_path):
    X, y = images
    paths = _ppm_files(tmp_path, X[:12])
    clf = head_clf(max_epochs=1).fit(paths, y[:12])
    copy = tmp_path / "sub" / "copy.ppm"
    copy.parent.mkdir()
    copy.write_bytes(open(paths[3], "rb").read())
    keys = clf.adapter_.sample_keys(clf.feature_fingerprint_, clf.adapter_.check([paths[3], str(copy), paths[4]]))
    assert keys[0] == keys[1] != keys[2]
    seen = CountingCNN.rows_seen
    np.testing.assert_allclose(clf.predict_proba([str(copy)]), clf.predict_proba([paths[3]]))
    assert CountingCNN.rows_seen == seen


def test_a_feature_cache_path_that_is_a_file_is_a_clear_error(images, tmp_path):
    X, y = images
    file = tmp_path / "cache.txt"
    file.write_text("not a directory")
    with pytest.raises(FeatureCacheError, match=r"feature_cache='.*cache.txt' is a file; pass a directory path "
                                                r"\(created if missing\), 'memory' or None"):
        head_clf(feature_cache=str(file)).fit(X, y)
    assert CountingCNN.rows_seen <= DRY_RUN_ROWS  # raised before the feature pass and training
    with pytest.raises(ValueError, match="could not be created"):  # a FeatureCacheError is a ValueError too
        head_clf(feature_cache=str(file / "sub")).fit(X, y)
    assert file.read_text() == "not a directory"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes anywhere")
def test_an_unwritable_feature_cache_directory_is_a_clear_error(images, tmp_path):
    X, y = images
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(FeatureCacheError, match=f"feature_cache='{tmp_path}' is a directory this process can't"):
            head_clf(feature_cache=str(tmp_path)).fit(X, y)
    finally:
        tmp_path.chmod(0o700)


def _garbage(file):
    file.write_bytes(np.random.RandomState(0).bytes(5000))


def _truncated(file):
    store = DiskFeatureStore(file.parent)
    store.put_many({bytes([i, j]): np.zeros(100, np.float32) for i in range(30) for j in range(10)})
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2])


def _other_schema(file):
    with contextlib.closing(sqlite3.connect(file)) as db, db:
        db.execute("CREATE TABLE rows (name TEXT, age INTEGER)")
        db.execute("INSERT INTO rows VALUES ('someone', 42)")


@pytest.mark.parametrize("spoil", [_garbage, _truncated, _other_schema])
def test_a_corrupt_disk_cache_is_moved_aside_and_rebuilt(images, tmp_path, spoil):
    X, y = images
    file = tmp_path / "features.sqlite"
    spoil(file)
    spoiled = file.read_bytes()
    with pytest.warns(FeatureCacheWarning, match=r"features.sqlite' was unreadable \(.+\); moved it to '.*corrupt-"):
        clf = head_clf(feature_cache=str(tmp_path)).fit(X, y)
    [aside] = tmp_path.glob("features.sqlite.corrupt-*")
    assert aside.read_bytes() == spoiled  # kept for inspection, never deleted
    assert len(DiskFeatureStore(tmp_path).get_many(clf.adapter_.sample_keys(clf.feature_fingerprint_, clf.adapter_.check(X)))) == len(X)
    fresh = head_clf(feature_cache=None).fit(X, y)
    np.testing.assert_allclose(clf.predict_proba(X), fresh.predict_proba(X), rtol=1e-5, atol=1e-6)


def test_a_disk_cache_spoiled_while_open_is_rebuilt_at_get_or_put(tmp_path):
    store = DiskFeatureStore(tmp_path)
    rows = {bytes([i]): np.full(4, i, np.float32) for i in range(5)}
    store.put_many(rows)
    _garbage(tmp_path / "features.sqlite")
    with pytest.warns(FeatureCacheWarning, match="moved it to"):
        assert store.get_many(list(rows)) == {}
    _garbage(tmp_path / "features.sqlite")
    with pytest.warns(FeatureCacheWarning, match="moved it to"):
        store.put_many(rows)
    found = store.get_many(list(rows))
    assert set(found) == set(rows) and all(np.array_equal(found[k], rows[k]) for k in rows)
    assert len(list(tmp_path.glob("features.sqlite.corrupt-*"))) == 2


def test_a_locked_disk_cache_is_waited_for_not_rebuilt(tmp_path):
    store = DiskFeatureStore(tmp_path)
    store.put_many({b"k": np.ones(3, np.float32)})
    store.TIMEOUT = 0.2
    with contextlib.closing(sqlite3.connect(store.file, isolation_level=None)) as other:
        other.execute("BEGIN EXCLUSIVE")  # another process in the middle of a write
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(FeatureCacheError, match=r"features.sqlite' failed: another process held it locked"):
                store.get_many([b"k"])
        other.execute("COMMIT")
    assert not list(tmp_path.glob("*corrupt*"))
    assert list(store.get_many([b"k"])) == [b"k"]


def test_memory_store_is_consistent_under_concurrent_use():
    store = MemoryFeatureStore(max_bytes=50 * 40)  # 50 rows of 10 float32

    def work(seed):
        rng = np.random.RandomState(seed)
        for _ in range(200):
            keys = [bytes([k]) for k in rng.randint(0, 120, size=8)]
            store.put_many({k: np.full(10, k[0], np.float32) for k in keys})
            for key, row in store.get_many(keys).items():
                assert row[0] == key[0]

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(4)))
    assert store.nbytes == sum(row.nbytes for row in store._rows.values()) <= store.max_bytes


def test_concurrent_predictions_from_the_memory_cache_match_serial_ones(images):
    X, y = images
    clf = head_clf(max_epochs=1).fit(X[:30], y[:30])
    slices = [slice(0, 40), slice(20, 60), slice(10, 50), slice(0, 60)]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(lambda s: clf.predict_proba(X[s]), slices))
    for s, proba in zip(slices, parallel):
        np.testing.assert_allclose(proba, clf.predict_proba(X[s]), rtol=1e-5, atol=1e-6)


def test_a_sample_repeated_in_X_runs_the_backbone_once(sentences):
    from sktransfer import TransferEmbedder

    texts, _ = sentences
    repeated = [texts[0]] * 5 + texts[1:4]
    embedder = TransferEmbedder("all-MiniLM-L6-v2", feature_cache="memory").fit(repeated)
    memory_store().clear()
    out = embedder.transform(repeated)
    assert memory_store().misses == 4 and len(memory_store()) == 4  # 4 distinct texts, each computed once
    np.testing.assert_array_equal(out[:5], np.repeat(out[:1], 5, axis=0))


@pytest.mark.parametrize("size", [0, 5, (1 << 18) + 7, 3 << 20])
def test_file_digest_is_the_hash_of_the_files_bytes(tmp_path, size):
    import hashlib

    from sktransfer._hashing import file_digest

    data = np.random.RandomState(size % 1000).bytes(size)
    (tmp_path / "f.bin").write_bytes(data)
    assert file_digest(tmp_path / "f.bin") == hashlib.blake2b(data, digest_size=16).digest()
    assert file_digest(str(tmp_path / "f.bin")) == file_digest(tmp_path / "f.bin")
