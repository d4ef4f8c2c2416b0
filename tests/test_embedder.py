"""TransferEmbedder: frozen features as a transformer, sharing the estimators' feature cache;
and stacking over the estimators (issue 11, items 3 and 4)."""

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from _tiny_backbones import (  # tests/ is on sys.path (pytest rootdir import)
    CountingCNN,
    brightness_images,
)
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_classification
from sklearn.ensemble import StackingClassifier
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from sktransfer import TransferClassifier, TransferEmbedder
from sktransfer._features.stores import memory_store
from sktransfer.exceptions import InputModalityError

MINILM = "all-MiniLM-L6-v2"
DRY_RUN_ROWS = 2  # every fit checks the backbone's output size on two samples




pytestmark = pytest.mark.usefixtures("fresh_feature_cache")


@pytest.fixture(scope="module")
def images():
    return brightness_images(30)


@pytest.fixture(scope="module")
def table():
    X, y = make_classification(n_samples=60, n_features=6, n_informative=4, random_state=0)
    return X, y


def embedder(backbone=None, **kw):
    return TransferEmbedder(backbone if backbone is not None else CountingCNN(), image_size=16, **kw)


# ---------------------------------------------------------------- fit and transform
def test_fit_runs_only_a_dry_run_and_trains_nothing(images):
    X, _ = images
    module = CountingCNN()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    emb = embedder(module).fit(X)
    assert CountingCNN.rows_seen == DRY_RUN_ROWS
    assert len(memory_store()) == 0
    assert emb.n_features_out_ == 8 and emb.layers_ is None
    assert not any(p.requires_grad for p in emb.module_.parameters())
    Z = emb.transform(X)
    assert Z.shape == (len(X), 8) and Z.dtype == np.float32
    assert CountingCNN.rows_seen == DRY_RUN_ROWS + len(X)
    # The caller's module is copied, never changed.
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())
    np.testing.assert_array_equal(emb.fit_transform(X), Z)


def test_classifier_after_embedder_reads_the_same_cache_rows(images):
    X, y = images
    emb = embedder(CountingCNN(seed=0)).fit(X)
    Z = emb.transform(X)
    seen, misses = CountingCNN.rows_seen, memory_store().misses
    clf = TransferClassifier(CountingCNN(seed=0), strategy="head", image_size=16, max_epochs=2,
                             random_state=0).fit(X, y)
    # Only the classifier's own dry run: every feature row came from the embedder's transform.
    assert CountingCNN.rows_seen == seen + DRY_RUN_ROWS
    assert memory_store().misses == misses
    assert clf.feature_fingerprint_ == emb.feature_fingerprint_
    # ...and the other way round: the embedder reads rows that a frozen prediction added.
    X_new = X.copy()
    X_new[:, 0, 0, 0] ^= 1
    clf.predict(X_new)
    seen = CountingCNN.rows_seen
    assert emb.transform(X_new).shape == Z.shape
    assert CountingCNN.rows_seen == seen


def test_minilm_embedder_and_frozen_classifier_share_rows(sentences):
    X, y = sentences
    emb = TransferEmbedder(MINILM)
    Z = emb.fit_transform(X)
    assert Z.shape == (len(X), 384) and memory_store().misses == len(X)
    TransferClassifier(MINILM, strategy="head", max_epochs=2, random_state=0).fit(X, y)
    assert memory_store().misses == len(X)  # the classifier computed no row
    assert TransferEmbedder(MINILM, pooling="cls").fit(X).transform(X).shape == (len(X), 384)
    assert memory_store().misses == 2 * len(X)  # other pooling, other rows


def test_fitted_estimator_as_backbone(images):
    X, y = images
    source = TransferClassifier(CountingCNN(), strategy="full", image_size=16, max_epochs=1, random_state=0)
    source.fit(X, y)
    weights = {k: v.clone() for k, v in source.net_.module_.state_dict().items()}
    emb = TransferEmbedder(FrozenEstimator(source)).fit(X)
    Z = emb.transform(X)
    dataset = source.adapter_.dataset(source.adapter_.check(X))
    batch, _ = source.adapter_.collate_fn([dataset[i] for i in range(len(X))])
    with torch.no_grad():
        expected = source.net_.module_.features(batch).numpy()  # the fine-tuned backbone's features
    np.testing.assert_allclose(Z, expected, rtol=1e-5, atol=1e-6)
    assert emb.adapter_.preprocessing == source.adapter_.preprocessing  # image_size=16, inherited
    assert all(torch.equal(weights[k], v) for k, v in source.net_.module_.state_dict().items())
    # Fine-tuned weights are another backbone: no rows shared with the original module.
    assert emb.feature_fingerprint_ != embedder(CountingCNN()).fit(X).feature_fingerprint_


# ---------------------------------------------------------------- names and pandas
def test_feature_names_and_pandas_output(sentences):
    X, _ = sentences
    emb = TransferEmbedder(MINILM).fit(X)
    names = emb.get_feature_names_out()
    assert names[0] == "all_minilm_l6_v2_0" and names[-1] == "all_minilm_l6_v2_383" and len(names) == 384
    series = pd.Series(X, index=np.arange(100, 100 + len(X)), name="text")
    out = emb.set_output(transform="pandas").transform(series)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == list(names)
    assert list(out.index) == list(series.index)

    staged = TransferEmbedder(MINILM, layers=[-1, "layer.3"]).fit(X)
    assert staged.layers_ == ["layer.3", "layer.5"]
    names = staged.get_feature_names_out()
    assert staged.transform(X).shape == (len(X), 768) == (len(X), len(names))
    assert [names[0], names[383], names[384], names[767]] == [
        "all_minilm_l6_v2_layer_3_0", "all_minilm_l6_v2_layer_3_383",
        "all_minilm_l6_v2_layer_5_0", "all_minilm_l6_v2_layer_5_383",
    ]


def test_tabular_names_follow_feature_names_in(table):
    X, _ = table
    df = pd.DataFrame(X, columns=[f"c{i}" for i in range(X.shape[1])])
    emb = TransferEmbedder("mlp", random_state=0).fit(df)
    assert list(emb.feature_names_in_) == list(df.columns) and emb.n_features_in_ == 6
    assert emb.get_feature_names_out(list(df.columns))[0] == "mlp_0"
    with pytest.raises(ValueError, match="input_features"):
        emb.get_feature_names_out(["a", "b"])
    # Seeded random backbones are reproducible; another seed is another backbone.
    np.testing.assert_array_equal(TransferEmbedder("mlp", random_state=0).fit_transform(df), emb.transform(df))
    assert not np.allclose(TransferEmbedder("mlp", random_state=1).fit_transform(df), emb.transform(df))


def test_tags(sentences):
    tags = TransferEmbedder(MINILM).__sklearn_tags__()
    assert tags.input_tags.string and not tags.input_tags.two_d_array
    assert tags.transformer_tags is not None and tags.requires_fit
    assert TransferEmbedder("mlp").__sklearn_tags__().input_tags.two_d_array


# ---------------------------------------------------------------- scikit-learn tools
def test_column_transformer_on_a_dataframe(sentences):
    X, y = sentences
    rng = np.random.RandomState(0)
    df = pd.DataFrame({"text": X, "price": rng.lognormal(size=len(X)), "other": rng.randint(0, 5, len(X))})
    before = pickle.dumps(df)
    model = Pipeline([
        ("features", ColumnTransformer([("text", TransferEmbedder(MINILM), "text"),
                                        ("num", StandardScaler(), ["price"])])),
        ("clf", LogisticRegression(max_iter=1000)),
    ])
    model.fit(df, y)
    assert (model.predict(df) == y).mean() >= 0.9
    names = model[:-1].get_feature_names_out()
    assert names[0] == "text__all_minilm_l6_v2_0" and names[-1] == "num__price" and len(names) == 385
    model[:-1].set_output(transform="pandas")
    assert model[:-1].transform(df).shape == (len(X), 385)
    assert pickle.dumps(df) == before
    assert memory_store().misses == len(X)  # one backbone pass over the texts


def test_grid_search_runs_the_backbone_once_per_row(images):
    X, y = images
    search = GridSearchCV(make_pipeline(embedder(), LogisticRegression()),
                          {"logisticregression__C": [0.1, 1.0, 10.0]}, cv=3)
    search.fit(X, y)
    n_fits = 3 * 3 + 1
    assert CountingCNN.rows_seen == len(X) + DRY_RUN_ROWS * n_fits
    assert memory_store().misses == len(X)


def test_stacking_an_estimator_and_an_embedder_pipeline_on_text(sentences):
    X, y = sentences
    stack = StackingClassifier(
        estimators=[
            ("head", TransferClassifier(MINILM, strategy="head", max_epochs=3, lr=1e-2, random_state=0)),
            ("emb", make_pipeline(TransferEmbedder(MINILM), LogisticRegression(max_iter=1000))),
        ],
        final_estimator=LogisticRegression(),
        cv=3,
    )
    stack.fit(X, y)
    assert stack.predict(["a joyful and lovely film", "a cruel, miserable experience"]).shape == (2,)
    assert stack.predict_proba(X).shape == (len(X), 2)
    assert memory_store().misses == len(X) + 2  # both members share one pass (+ the new sentences)


def test_stacking_over_two_transfer_classifiers(table):
    X, y = table
    stack = StackingClassifier(
        estimators=[
            ("a", TransferClassifier("mlp", max_epochs=5, random_state=0)),
            ("b", TransferClassifier("mlp", max_epochs=5, lr=1e-2, random_state=1)),
            ("c", make_pipeline(TransferEmbedder("mlp", random_state=0), LogisticRegression())),
        ],
        final_estimator=LogisticRegression(),
        cv=3,
    )
    stack.fit(X, y)
    assert stack.predict(X).shape == (len(X),)
    assert stack.score(X, y) > 0.7


# ---------------------------------------------------------------- errors
def test_errors_are_clear(sentences, table):
    X, _ = sentences
    with pytest.raises(InvalidParameterError, match="batch_size"):
        TransferEmbedder(MINILM, batch_size=0).fit(X)
    with pytest.raises(InputModalityError, match="takes text"):
        TransferEmbedder(MINILM).fit(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="Unknown stage 'nope'"):
        TransferEmbedder(MINILM, layers="nope").fit(X)
    with pytest.raises(ValueError, match="pooling='cls' applies to text"):
        TransferEmbedder("mlp", pooling="cls").fit(table[0])
    with pytest.raises(NotFittedError):
        TransferEmbedder(MINILM).transform(X)
    with pytest.raises(TypeError, match="fitted TransferClassifier"):
        TransferEmbedder(LogisticRegression()).fit(X)
    with pytest.raises(NotFittedError, match="FrozenEstimator"):
        TransferEmbedder(TransferClassifier(MINILM)).fit(X)

    emb = TransferEmbedder("mlp", random_state=0).fit(table[0])
    with pytest.raises(ValueError, match="features"):
        emb.transform(table[0][:, :3])
    # A failed refit leaves the fitted embedder as it was.
    Z = emb.transform(table[0])
    with pytest.raises(InputModalityError):
        emb.set_params(backbone=MINILM).fit(np.zeros((4, 3)))
    emb.set_params(backbone="mlp")
    np.testing.assert_array_equal(emb.transform(table[0]), Z)


def test_a_column_mapping_embeds_each_column_with_its_backbone(sentences):
    import pandas as pd

    from sktransfer import Branch, TransferEmbedder
    from sktransfer.exceptions import InvalidInputError

    texts, _ = sentences
    X = pd.DataFrame({"caption": texts, "price": np.arange(len(texts), dtype=float)})
    before = pickle.dumps(X)
    embedder = TransferEmbedder({"caption": "all-MiniLM-L6-v2", "price": "passthrough"}).fit(X)
    out = embedder.transform(X)
    assert out.shape == (len(texts), 384 + 1) and embedder.n_features_out_ == 385
    single = TransferEmbedder("all-MiniLM-L6-v2").fit(texts)
    np.testing.assert_array_equal(out[:, :384], single.transform(texts))
    names = embedder.get_feature_names_out()
    assert names[0] == "caption__all_minilm_l6_v2_0" and names[-1] == "price__passthrough_0"
    frame = embedder.set_output(transform="pandas").transform(X)
    assert list(frame.columns) == list(names)
    assert list(embedder.feature_names_in_) == ["caption", "price"]
    with pytest.raises(InvalidInputError, match=r"\['price'\] are mapped.*missing"):
        embedder.transform(X[["caption"]])
    assert pickle.dumps(X) == before
    stages = TransferEmbedder([Branch("all-MiniLM-L6-v2", layers=[-2]), "all-MiniLM-L6-v2"]).fit(texts)
    assert stages.transform(texts).shape == (len(texts), 2 * 384)
    assert stages.get_feature_names_out()[0].startswith("all-MiniLM-L6-v2__all_minilm_l6_v2_layer_4")
