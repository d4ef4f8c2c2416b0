"""Knowledge reuse: chosen stages (layers=), fitted estimators as backbones, init= residuals."""

import pickle

import numpy as np
import pytest
import torch
import torch.nn as nn
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

import sktransfer
from sktransfer import TransferClassifier, TransferRegressor


def tiny_cnn(seed=0):
    """Three named stages (fx-traceable), counting the rows its first conv sees."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()),
        nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.ReLU()),
        nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.ReLU()),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )


pytestmark = pytest.mark.usefixtures("fresh_feature_cache")


@pytest.fixture(scope="module")
def images(digits):
    X, y = digits
    return X, y


@pytest.fixture(scope="module")
def source(images):
    X, y = images
    return TransferClassifier(tiny_cnn(), image_size=16, max_epochs=3, lr=1e-2, random_state=0).fit(X, y)


# --------------------------------------------------------------------------- layers=
def test_layers_concatenate_pooled_stages(images):
    X, y = images
    clf = TransferClassifier(tiny_cnn(), image_size=16, max_epochs=1, layers=["1", -5], random_state=0).fit(X, y)
    assert clf.layers_ == ["0", "1"]  # names, input to output, whatever order they came in
    assert clf.net_.module_.head.in_features == 4 + 8  # GAP of each stage's channels
    assert clf.predict_proba(X).shape == (len(X), 4)
    assert TransferClassifier(tiny_cnn(), image_size=16, max_epochs=1).fit(X, y).layers_ is None


def test_last_stage_alone_is_the_default_features_for_a_pooling_cnn(images):
    X, y = images
    kwargs = dict(image_size=16, max_epochs=2, strategy="head", random_state=0, feature_cache=None)
    default = TransferClassifier(tiny_cnn(), **kwargs).fit(X, y)
    last = TransferClassifier(tiny_cnn(), layers="2", **kwargs).fit(X, y)  # GAP of the last conv stage
    np.testing.assert_allclose(default.predict_proba(X), last.predict_proba(X), rtol=1e-5, atol=1e-6)


def test_final_features_join_chosen_stages(images):
    X, y = images
    kwargs = {"image_size": 16, "max_epochs": 2, "strategy": "head", "random_state": 0, "feature_cache": None}
    both = TransferClassifier(tiny_cnn(), layers=["final", "0"], **kwargs).fit(X, y)
    assert both.layers_ == ["0", "final"]  # the final features come after every stage
    module = both.net_.module_
    assert module.head.in_features == 4 + 16
    x = torch.rand(3, 3, 16, 16)
    with torch.no_grad():  # the stage, then exactly the backbone's own output
        torch.testing.assert_close(module.features(x)[:, 4:], module.backbone(x))
    alone = TransferClassifier(tiny_cnn(), layers=sktransfer.FINAL_FEATURES, **kwargs).fit(X, y)
    default = TransferClassifier(tiny_cnn(), **kwargs).fit(X, y)
    np.testing.assert_allclose(alone.predict_proba(X), default.predict_proba(X), rtol=1e-5, atol=1e-6)
    loaded = pickle.loads(pickle.dumps(both))
    np.testing.assert_allclose(loaded.predict_proba(X), both.predict_proba(X), rtol=1e-5, atol=1e-6)


def test_final_features_among_stages_share_the_cached_rows_of_layers_none(images):
    X, y = images
    seen = []
    cnn = tiny_cnn()
    cnn[0][0].register_forward_hook(lambda module, args, out: seen.append(args[0].shape[0]))
    kwargs = {"image_size": 16, "max_epochs": 1, "strategy": "head", "random_state": 0}
    TransferClassifier(cnn, layers=["0", "final"], **kwargs).fit(X, y)
    seen.clear()
    TransferClassifier(cnn, **kwargs).fit(X, y)
    assert sum(seen) == 2  # the dry run's two rows: the final features came from the cache


@pytest.mark.parametrize(
    "layers, error, message",
    [
        ("nope", ValueError, "Unknown stage 'nope'.*stages, input to output: 0, 1, 2, 3, 4"),
        (-9, ValueError, "counted from the top with negative integers: -1"),
        (2, ValueError, "counted from the top with negative integers"),
        ([], ValueError, "layers is empty"),
        (["0", -5], ValueError, "names stage '0' twice"),
        ([1.5], TypeError, "stage name, a negative integer"),
        (["final", "final"], ValueError, "names stage 'final' twice"),
    ],
)
def test_bad_layers_are_rejected_with_the_valid_stages(images, layers, error, message):
    X, y = images
    clf = TransferClassifier(tiny_cnn(), image_size=16, max_epochs=1, layers=layers)
    with pytest.raises(error, match=message):
        clf.fit(X, y)
    assert not hasattr(clf, "net_")


def test_layers_on_a_backbone_without_stages_says_so():
    X = np.random.RandomState(0).normal(size=(20, 3))
    for layers in (-1, "final"):
        with pytest.raises(ValueError, match="'mlp' declares no stages.*layers=None"):
            TransferRegressor("mlp", layers=layers, max_epochs=1).fit(X, X[:, 0])


def test_frozen_search_over_layers_runs_the_backbone_once_per_row(images):
    X, y = images
    seen = []
    cnn = tiny_cnn()
    cnn[0][0].register_forward_hook(lambda module, args, out: seen.append(args[0].shape[0]))
    grid = {"layers": [[-1], [-2, -1], ["0"], ["0", "2"]], "lr": [1e-2, 3e-2]}
    search = GridSearchCV(
        TransferClassifier(cnn, strategy="head", image_size=16, max_epochs=2, random_state=0), grid, cv=3
    ).fit(X, y)
    # Probe runs (2 rows per fit, to learn the feature size) aside, every image is embedded
    # once for all 8 candidates x 3 folds and the refit.
    n_fits = len(search.cv_results_["params"]) * 3 + 1
    assert sum(seen) - 2 * n_fits == len(X)
    assert search.best_estimator_.layers_ in (["4"], ["3", "4"], ["0"], ["0", "2"])


# --------------------------------------------------------------------------- backbone=fitted
def test_fitted_estimator_as_backbone_reuses_its_trained_backbone(images, source):
    X, y = images
    before = {k: v.clone() for k, v in source.net_.module_.state_dict().items()}
    predictions = source.predict_proba(X)
    head = TransferClassifier(FrozenEstimator(source), strategy="head", max_epochs=1, random_state=0).fit(X, y)
    src_backbone = source.net_.module_.backbone.state_dict()
    for name, value in head.net_.module_.backbone.state_dict().items():
        torch.testing.assert_close(value, src_backbone[name])  # the fine-tuned weights, not fresh ones
    assert head.adapter_.preprocessing == source.adapter_.preprocessing  # image_size=16 carried over
    full = TransferClassifier(source, max_epochs=2, random_state=0).fit(X, y)
    assert full.net_.module_.backbone is not source.net_.module_.backbone
    # The source is never modified.
    for name, value in source.net_.module_.state_dict().items():
        assert torch.equal(value, before[name]), name
    np.testing.assert_array_equal(source.predict_proba(X), predictions)


def test_fitted_source_estimator_pickles_clones_and_searches(images, source):
    X, y = images
    clf = TransferClassifier(FrozenEstimator(source), max_epochs=1, random_state=0).fit(X, y)
    loaded = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), rtol=1e-6)
    search = GridSearchCV(
        TransferClassifier(FrozenEstimator(source), strategy="head", max_epochs=2), {"lr": [1e-2, 1e-1]}, cv=2
    ).fit(X, y)
    assert search.best_estimator_.spec_.name.endswith("(fine-tuned by TransferClassifier)")


def test_source_layers_are_inherited_unless_given(images):
    X, y = images
    staged = TransferClassifier(tiny_cnn(), image_size=16, max_epochs=1, layers=[-3, -2], random_state=0).fit(X, y)
    inherits = TransferClassifier(FrozenEstimator(staged), max_epochs=1, random_state=0).fit(X, y)
    assert inherits.layers_ == ["2", "3"]
    chooses = TransferClassifier(FrozenEstimator(staged), layers="0", max_epochs=1, random_state=0).fit(X, y)
    assert chooses.layers_ == ["0"] and chooses.net_.module_.head.in_features == 4


def test_unfitted_or_cloned_source_says_to_fit_it_or_freeze_it(images, source):
    X, y = images
    with pytest.raises(NotFittedError, match="is not fitted.*FrozenEstimator"):
        TransferClassifier(TransferClassifier("mlp"), max_epochs=1).fit(X, y)
    cloned = clone(TransferClassifier(source, max_epochs=1))  # clone() unfits a bare source
    with pytest.raises(NotFittedError, match="FrozenEstimator"):
        cloned.fit(X, y)
    with pytest.raises(TypeError, match="pass it as init= instead"):
        TransferClassifier(FrozenEstimator(LogisticRegression().fit(X.reshape(len(X), -1), y))).fit(X, y)


def test_frozen_features_of_different_sources_are_never_shared(images):
    X, y = images
    sources = [
        TransferClassifier(tiny_cnn(seed), image_size=16, max_epochs=1, random_state=seed).fit(X, y)
        for seed in (0, 1)
    ]
    fits = [TransferClassifier(FrozenEstimator(s), strategy="head", max_epochs=1).fit(X, y) for s in sources]
    assert fits[0].feature_fingerprint_ != fits[1].feature_fingerprint_
    again = TransferClassifier(FrozenEstimator(sources[0]), strategy="head", max_epochs=1).fit(X, y)
    assert again.feature_fingerprint_ == fits[0].feature_fingerprint_  # the same source shares


def test_text_source_fine_tuned_then_reused(sentences):
    texts, labels = sentences
    y = np.where(labels == "pos", 1.0, -1.0)
    src = TransferRegressor("all-MiniLM-L6-v2", max_epochs=2, random_state=0).fit(texts, y)
    reuse = TransferRegressor(FrozenEstimator(src), strategy="head", max_epochs=20, lr=1e-2, random_state=0)
    reuse.fit(texts, y)
    assert reuse.adapter_.pooling == "mean" and reuse.spec_.modality == "text"
    assert reuse.score(texts, y) > 0.8


# --------------------------------------------------------------------------- init=
class CountingPredictor(Ridge):
    """A Ridge that counts its predict calls."""

    calls = 0

    def predict(self, X):
        type(self).calls += 1
        return super().predict(X)


def test_init_regressor_starts_exactly_at_the_source_and_runs_it_once_per_fit():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(80, 5))
    y = X @ rng.normal(size=5) + 0.3 * np.sin(3 * X[:, 0]) + 10.0
    base = CountingPredictor(alpha=1.0).fit(X, y)
    CountingPredictor.calls = 0
    start = TransferRegressor("mlp", init=base, max_epochs=1, lr=1e-12, random_state=0).fit(X, y)
    assert CountingPredictor.calls == 1  # one pass of the source per fit, not per epoch
    np.testing.assert_allclose(start.predict(X), base.predict(X), rtol=1e-5, atol=1e-5)
    trained = TransferRegressor("mlp", init=base, max_epochs=60, lr=1e-2, random_state=0).fit(X, y)
    assert trained.score(X, y) > base.score(X, y)  # the correction learns what Ridge missed


def test_init_classifier_starts_at_a_pipelines_probabilities(sentences):
    texts, labels = sentences
    tfidf = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(texts, labels)
    clf = TransferClassifier("all-MiniLM-L6-v2", strategy="head", init=tfidf, max_epochs=1, lr=1e-12,
                             head_solver="optimizer", random_state=0).fit(texts, labels)
    np.testing.assert_array_equal(clf.predict(texts), tfidf.predict(texts))
    np.testing.assert_allclose(clf.predict_proba(texts), tfidf.predict_proba(texts), rtol=1e-4, atol=1e-6)
    tuned = TransferClassifier("all-MiniLM-L6-v2", strategy="head", init=FrozenEstimator(tfidf), max_epochs=10,
                               lr=1e-2, random_state=0).fit(texts, labels)
    assert tuned.score(texts, labels) == 1.0


def test_init_with_decision_function_only():
    from sklearn.svm import LinearSVC

    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 4))
    y = (X[:, 0] > 0).astype(int)
    svm = LinearSVC().fit(X, y)
    clf = TransferClassifier("mlp", init=svm, max_epochs=1, lr=1e-12, random_state=0).fit(X, y)
    np.testing.assert_array_equal(clf.predict(X), svm.predict(X))


def test_init_errors_name_the_problem():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, 3))
    y = np.array(["a", "b"] * 20)
    other = LogisticRegression().fit(X, np.array(["a", "c"] * 20))
    with pytest.raises(ValueError, match=r"predicts the classes \['a', 'c'\], but y holds the classes \['a', 'b'\]"):
        TransferClassifier("mlp", init=other, max_epochs=1).fit(X, y)
    with pytest.raises(NotFittedError, match="init=LogisticRegression.*not fitted.*FrozenEstimator"):
        TransferClassifier("mlp", init=LogisticRegression(), max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="predicts 1 output.*y has 2"):
        TransferRegressor("mlp", init=Ridge().fit(X, X[:, 0]), max_epochs=1).fit(X, X[:, :2])
    with pytest.raises(ValueError, match="mixes samples, but init="):
        TransferClassifier("resnet18", init=other, augment="mixup").fit(np.zeros((4, 8, 8)), [0, 1, 0, 1])


def test_init_in_a_search_needs_frozen_estimator():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 3))
    y = X[:, 0] + 0.1 * rng.normal(size=60)
    base = Ridge().fit(X, y)
    search = GridSearchCV(TransferRegressor("mlp", init=FrozenEstimator(base), max_epochs=5), {"lr": [1e-3, 1e-2]},
                          cv=2).fit(X, y)
    assert search.best_estimator_.init_ is not None
    with pytest.raises(Exception, match="FrozenEstimator"):
        GridSearchCV(TransferRegressor("mlp", init=base, max_epochs=1), {"lr": [1e-3]}, cv=2,
                     error_score="raise").fit(X, y)


# --------------------------------------------------------------------------- real weights
def test_efficientnet_lite0_stages_feed_the_head(images):
    X, y = images
    clf = TransferClassifier("efficientnet_lite0", strategy="head", layers=["blocks.2", -1], image_size=64,
                             max_epochs=5, lr=1e-2, random_state=0).fit(X, y)
    assert clf.layers_ == ["blocks.2", "blocks.6"]
    assert clf.net_.module_.head.in_features == 40 + 320
    assert clf.score(X, y) > 0.8  # 4 classes: chance is 0.25
    tuned = TransferClassifier("efficientnet_lite0", layers=[-2], image_size=64, max_epochs=1, random_state=0)
    assert tuned.fit(X, y).predict(X[:5]).shape == (5,)  # fine-tuning through forward_intermediates


def test_text_stages_are_cached_per_stage_so_a_search_over_layers_embeds_once(sentences, monkeypatch):
    import sktransfer._features.extraction as features

    texts, labels = sentences
    computed = []
    original = features.extract_features

    def counting(module, dataset, *args, **kwargs):
        computed.append(len(dataset))
        return original(module, dataset, *args, **kwargs)

    monkeypatch.setattr(features, "extract_features", counting)
    grid = {"layers": [[-1], ["embeddings", "layer.2"], [-2, -1]]}
    search = GridSearchCV(TransferClassifier("all-MiniLM-L6-v2", strategy="head", max_epochs=5, lr=1e-2,
                                             random_state=0), grid, cv=2).fit(texts, labels)
    assert sum(computed) == len(texts)  # every stage of every text, in one pass
    assert search.best_score_ > 0.7
    assert search.best_estimator_.net_.module_.head.in_features in (384, 768)


def test_text_model_pickles_after_its_stages_were_read(sentences):
    texts, labels = sentences
    staged = TransferClassifier("all-MiniLM-L6-v2", layers=[-2, -1], max_epochs=1, random_state=0).fit(texts, labels)
    loaded = pickle.loads(pickle.dumps(staged))  # transformers' hidden-state hooks would not pickle
    np.testing.assert_allclose(loaded.predict_proba(texts), staged.predict_proba(texts), rtol=1e-5)
    np.testing.assert_allclose(staged.predict_proba(texts), loaded.predict_proba(texts), rtol=1e-5)  # hooks back


def test_partial_strategy_counts_blocks_from_the_deepest_chosen_stage(images):
    X, y = images
    clf = TransferClassifier("efficientnet_lite0", strategy="partial", trainable_blocks=1, layers=["blocks.2"],
                             image_size=32, max_epochs=1, random_state=0).fit(X, y)
    module = clf.net_.module_
    assert module.blocks[-1] == "blocks.2"  # conv_head and the blocks above never see a gradient
    trainable = {n.split(".")[0] + "." + n.split(".")[1] for n, p in module.backbone.named_parameters() if p.requires_grad}
    assert trainable == {"blocks.2"}
    from sktransfer._spec.stages import blocks_feeding

    assert blocks_feeding(["model.embeddings", "model.encoder.layer.0", "model.encoder.layer.1"], "layer.0") == [
        "model.embeddings", "model.encoder.layer.0"]
    assert blocks_feeding(["a", "b"], "unmatched") == ["a", "b"]


def test_init_cv_trains_the_correction_on_out_of_fold_predictions():
    from sklearn.model_selection import KFold, cross_val_predict

    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 20))
    y = X[:, 0] + rng.normal(size=60)
    base = CountingPredictor(alpha=1e-3).fit(X, y)  # overfits its own rows
    CountingPredictor.calls = 0
    cv = KFold(3, shuffle=True, random_state=0)
    est = TransferRegressor("mlp", init=base, init_cv=cv, max_epochs=1, lr=1e-12, random_state=0).fit(X, y)
    assert CountingPredictor.calls == 3  # one per fold, on clones: the fitted init is not asked in fit
    np.testing.assert_allclose(est.predict(X), base.predict(X), rtol=1e-5, atol=1e-5)  # predict uses the fitted init
    # The first epoch's loss is that of the out-of-fold predictions, not of the in-sample ones.
    oof = cross_val_predict(Ridge(alpha=1e-3), X, y, cv=cv)
    scale = y.std()
    expected = np.mean(((oof - y) / scale) ** 2)
    in_sample = np.mean(((base.predict(X) - y) / scale) ** 2)
    assert est.net_.history[0, "train_loss"] == pytest.approx(expected, rel=1e-3)
    assert expected > 2 * in_sample


def test_init_cv_for_a_classifier_pipeline(sentences):
    texts, labels = sentences
    tfidf = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(texts, labels)
    clf = TransferClassifier("all-MiniLM-L6-v2", strategy="head", init=FrozenEstimator(tfidf), init_cv=3,
                             max_epochs=1, lr=1e-12, random_state=0).fit(texts, labels)
    np.testing.assert_array_equal(clf.predict(texts), tfidf.predict(texts))
