"""export_onnx + load_onnx of fused models: a column mapping over a DataFrame, a list of
backbones on one X, and a fused embedder; the predictor splits the columns as the
estimator does and gives its outputs within 1e-4 (text, tabular) or 1e-3 (with images).
"""

import json

import numpy as np
import pandas as pd
import pytest
from _onnx_models import LABELS, MAX_LENGTH, SENTENCES, TEXTS, save_tiny_bert, tabular
from _tiny_backbones import brightness_images

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from sktransfer import Branch, TransferClassifier, TransferEmbedder, TransferRegressor, export_onnx, load, load_onnx
from sktransfer.exceptions import InvalidInputError


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


def reviews(n=16, seed=0):
    """``n`` rows: a review (short, long and empty ones), a price and a score in the thousands."""
    rng = np.random.RandomState(seed)
    texts = [(TEXTS + SENTENCES)[i % (len(TEXTS) + len(SENTENCES))] for i in range(n)]
    return pd.DataFrame({"review": texts, "price": rng.normal(50, 20, size=n), "score": rng.normal(1000, 100, size=n)})


def test_a_column_mapping_classifier_predicts_from_frames_and_dicts_as_torch(tiny_bert, tmp_path):
    X = reviews()
    y = np.tile(LABELS, 2)
    clf = TransferClassifier({"review": Branch(tiny_bert, strategy="full"), "price": "passthrough", "score": "mlp"},
                             max_length=MAX_LENGTH, long_text="chunk", fusion="gated", max_epochs=3, lr=1e-2,
                             random_state=0).fit(X, y)
    path = export_onnx(clf, tmp_path / "onnx")
    config = json.loads((path / "sktransfer_onnx.json").read_text())
    branches = config["inputs"]["branches"]
    assert config["inputs"]["kind"] == "fused" and config["backbone"] == ["review", "price", "score"]
    assert [(b["column"], b["inputs"]["kind"]) for b in branches] == [("review", "text"), ("price", "tabular"),
                                                                     ("score", "tabular")]
    assert (path / branches[0]["inputs"]["tokenizer"]).is_file()
    onnx = load_onnx(path, batch_size=5)
    expected = clf.predict_proba(X)
    np.testing.assert_allclose(onnx.predict_proba(X), expected, rtol=0, atol=1e-4)
    np.testing.assert_array_equal(onnx.predict(X), clf.predict(X))
    as_dict = {column: X[column].tolist() for column in X.columns}
    np.testing.assert_allclose(onnx.predict_proba(as_dict), expected, rtol=0, atol=1e-4)
    np.testing.assert_allclose(onnx.predict_proba(X[["score", "review", "price"]]), expected, rtol=0, atol=1e-4)
    # the model directory exports the same graph
    clf.save_pretrained(tmp_path / "model")
    np.testing.assert_allclose(load_onnx(export_onnx(str(tmp_path / "model"), tmp_path / "b")).predict_proba(X),
                               load(tmp_path / "model").predict_proba(X), rtol=0, atol=1e-4)


def test_missing_extra_and_bad_columns_are_named(tiny_bert, tmp_path):
    X = reviews()
    reg = TransferRegressor({"review": tiny_bert, "price": "passthrough"}, max_length=MAX_LENGTH, max_epochs=1,
                            remainder="drop", random_state=0).fit(X, X["price"] * 2)
    onnx = load_onnx(export_onnx(reg, tmp_path / "onnx"))
    np.testing.assert_allclose(onnx.predict(X), reg.predict(X), rtol=1e-6, atol=1e-4)  # "score" is dropped
    with pytest.raises(InvalidInputError, match=r"columns \['price'\] are mapped.*missing"):
        onnx.predict(X.drop(columns="price"))
    with pytest.raises(TypeError, match="pass a pandas DataFrame"):
        onnx.predict(X["review"].tolist())
    with pytest.raises(ValueError, match="column 'price'.*numeric"):
        onnx.predict(X.assign(price="cheap"))
    with pytest.raises(InvalidInputError, match="different lengths"):
        onnx.predict({"review": ["a", "b"], "price": [1.0]})
    strict = TransferRegressor({"review": tiny_bert, "price": "passthrough"}, max_length=MAX_LENGTH, max_epochs=1,
                               random_state=0).fit(X[["review", "price"]], X["price"])
    with pytest.raises(InvalidInputError, match=r"columns \['score'\] that are not mapped"):
        load_onnx(export_onnx(strict, tmp_path / "strict")).predict(X)


def test_a_list_of_backbones_on_one_matrix(tmp_path):
    X, _ = tabular()
    Y = np.column_stack([X[:, 3] * 3, X[:, 0]])
    reg = TransferRegressor(["mlp", "passthrough"], max_epochs=5, random_state=0).fit(X, Y)
    onnx = load_onnx(export_onnx(reg, tmp_path / "onnx", quantize="int8"))
    predicted = onnx.predict(X)
    assert predicted.shape == (len(X), 2) and onnx.config["inputs"]["branches"][0]["column"] is None
    # int8 weights: near torch, not equal
    assert np.abs(predicted - reg.predict(X)).max() < 0.1 * np.abs(Y).std()
    exact = load_onnx(export_onnx(reg, tmp_path / "fp32"))
    np.testing.assert_allclose(exact.predict(X), reg.predict(X), rtol=1e-6, atol=1e-4)


def test_images_texts_and_numbers_in_one_frame(tiny_bert, tmp_path):
    images, y = brightness_images(16)
    X = reviews().assign(photo=list(images))
    clf = TransferClassifier({"photo": "example_tinycnn", "review": tiny_bert, "price": "passthrough"},
                             image_size=16, max_length=MAX_LENGTH, remainder="drop", max_epochs=2,
                             random_state=0).fit(X, y)
    onnx = load_onnx(export_onnx(clf, tmp_path / "onnx"), batch_size=4)
    np.testing.assert_allclose(onnx.predict_proba(X), clf.predict_proba(X), rtol=0, atol=1e-3)


def test_a_fused_embedder_gives_each_branchs_features_side_by_side(tiny_bert, tmp_path):
    X = reviews()
    emb = TransferEmbedder({"review": tiny_bert, "price": "passthrough"}, max_length=MAX_LENGTH, long_text="chunk",
                           remainder="drop", feature_cache=None).fit(X)
    onnx = load_onnx(export_onnx(emb, tmp_path / "onnx"))
    features = onnx.transform(X)
    assert features.shape == (len(X), emb.n_features_out_) and features.dtype == np.float32
    np.testing.assert_allclose(features, emb.transform(X), rtol=0, atol=1e-4)
    np.testing.assert_array_equal(onnx.get_feature_names_out(), emb.get_feature_names_out())
    listed = TransferEmbedder([tiny_bert, tiny_bert], max_length=MAX_LENGTH, feature_cache=None).fit(SENTENCES)
    np.testing.assert_allclose(load_onnx(export_onnx(listed, tmp_path / "list")).transform(TEXTS),
                               listed.transform(TEXTS), rtol=0, atol=1e-4)
