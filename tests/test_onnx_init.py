"""export_onnx of models fitted with ``init=``: the init= model's own export goes in ``init/``
and the predictor adds its offsets as the estimator does; any other init= is refused.

Tiny models (a 2-layer BERT of width 32, the MLP), CPU only: probabilities and targets
within 1e-4 of the torch estimator, identical labels.
"""

import json

import numpy as np
import pytest
from _onnx_models import LABELS, MAX_LENGTH, SENTENCES, TEXTS, save_tiny_bert, tabular

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer import TransferClassifier, TransferRegressor, export_onnx, load_onnx


def targets(X):
    """Two regression targets of different scales, far from 0."""
    return np.column_stack([X[:, 0] * 3 + X[:, 1] + 50, X[:, 2] * 10 - X[:, 0] * 4 - 200])


def config_of(path):
    return json.loads((path / "sktransfer_onnx.json").read_text())


@pytest.fixture(scope="module")
def data():
    X, y = tabular(80)
    return X, y, targets(X)


@pytest.fixture(scope="module")
def classifiers(data):
    X, y, _ = data
    source = TransferClassifier("mlp", max_epochs=5, lr=1e-2, random_state=0).fit(X, y)
    return source, TransferClassifier("mlp", init=FrozenEstimator(source), max_epochs=5, random_state=1).fit(X, y)


# ------------------------------------------------------------------ what exports, and how close
def test_classifier_with_an_sktransfer_init_matches_torch(classifiers, data, tmp_path):
    source, clf = classifiers
    X, _, _ = data
    path = export_onnx(clf, tmp_path / "clf")
    onnx = load_onnx(path, batch_size=7)  # batches that cut through the rows
    np.testing.assert_allclose(onnx.predict_proba(X), clf.predict_proba(X), rtol=0, atol=1e-4)
    np.testing.assert_array_equal(onnx.predict(X), clf.predict(X))
    # The offsets matter here: without them the graph's answer is another one.
    np.testing.assert_allclose(onnx.init_.predict_proba(X), source.predict_proba(X), rtol=0, atol=1e-4)
    assert np.abs(clf.predict_proba(X) - source.predict_proba(X)).max() > 1e-2
    config = config_of(path)
    assert config["init"] == {"path": "init", "input": "init_offset"} and config["version"] == 2
    assert config_of(path / "init")["init"] is None and config_of(path / "init")["version"] == 1
    assert [i.name for i in onnx.session.get_inputs()] == ["features", "init_offset"]


def test_regressor_with_an_sktransfer_init_predicts_in_target_units(data, tmp_path):
    X, _, Y = data
    source = TransferRegressor("mlp", max_epochs=5, lr=1e-2, random_state=0).fit(X, Y)
    reg = TransferRegressor("mlp", init=source, max_epochs=5, random_state=1).fit(X, Y)
    onnx = load_onnx(export_onnx(reg, tmp_path / "reg"))
    np.testing.assert_allclose(onnx.predict(X), reg.predict(X), rtol=1e-6, atol=1e-4)
    one = TransferRegressor("mlp", init=source.__sklearn_clone__().fit(X, Y[:, 0]), max_epochs=2,
                            random_state=1).fit(X, Y[:, 0])
    onnx = load_onnx(export_onnx(one, tmp_path / "one"))
    assert onnx.predict(X).shape == (len(X),)
    np.testing.assert_allclose(onnx.predict(X), one.predict(X), rtol=1e-6, atol=1e-4)


def test_a_chain_of_init_models_exports_each_inside_the_other(classifiers, data, tmp_path):
    _, middle = classifiers  # itself fitted with init=
    X, y, _ = data
    top = TransferClassifier("mlp", init=FrozenEstimator(middle), max_epochs=3, random_state=2).fit(X, y)
    path = export_onnx(top, tmp_path / "top", quantize=None)
    assert (path / "init" / "init" / "model.onnx").is_file()
    onnx = load_onnx(path)
    assert onnx.init_.init_ is not None and onnx.init_.init_.init_ is None
    np.testing.assert_allclose(onnx.predict_proba(X), top.predict_proba(X), rtol=0, atol=1e-4)


def test_init_cv_models_export_with_the_fitted_init(data, tmp_path):
    X, _, Y = data
    source = TransferRegressor("mlp", max_epochs=3, random_state=0).fit(X, Y)
    reg = TransferRegressor("mlp", init=FrozenEstimator(source), init_cv=3, max_epochs=3, random_state=1).fit(X, Y)
    onnx = load_onnx(export_onnx(reg, tmp_path / "cv"))
    np.testing.assert_allclose(onnx.predict(X), reg.predict(X), rtol=1e-6, atol=1e-4)


def test_text_offsets_follow_the_rows_through_the_length_order(tmp_path):
    tiny = save_tiny_bert(tmp_path / "bert")
    source = TransferClassifier(tiny, max_length=MAX_LENGTH, strategy="head", random_state=0).fit(SENTENCES, LABELS)
    clf = TransferClassifier(tiny, init=source, max_length=MAX_LENGTH, long_text="chunk", max_epochs=2, lr=1e-2,
                             random_state=0).fit(SENTENCES, LABELS)
    onnx = load_onnx(export_onnx(clf, tmp_path / "text"), batch_size=3)
    order = onnx.inputs.order(onnx.inputs.encode(TEXTS))
    assert order.tolist() != list(range(len(TEXTS)))  # texts run longest first: offsets must follow them
    np.testing.assert_allclose(onnx.predict_proba(TEXTS), clf.predict_proba(TEXTS), rtol=0, atol=1e-4)
    np.testing.assert_array_equal(onnx.predict(TEXTS), clf.predict(TEXTS))


def test_a_saved_model_directory_exports_as_the_estimator_it_was_saved_from(classifiers, data, tmp_path, capsys):
    from sktransfer.__main__ import main

    _, clf = classifiers
    X, _, _ = data
    model = clf.save_pretrained(tmp_path / "model")  # its init= model in model/init/
    from_directory = load_onnx(export_onnx(model, tmp_path / "api"))
    assert main(["export", str(model), str(tmp_path / "cli")]) == 0
    assert "model.onnx" in capsys.readouterr().out
    for onnx in (from_directory, load_onnx(tmp_path / "cli")):
        assert onnx.init_ is not None
        np.testing.assert_allclose(onnx.predict_proba(X), clf.predict_proba(X), rtol=0, atol=1e-4)
        np.testing.assert_array_equal(onnx.predict(X), clf.predict(X))


def test_int8_quantizes_the_init_model_too(classifiers, data, tmp_path):
    _, clf = classifiers
    X, _, _ = data
    onnx = load_onnx(export_onnx(clf, tmp_path / "int8", quantize="int8"))
    assert onnx.quantize == onnx.init_.quantize == "int8"
    np.testing.assert_allclose(onnx.predict_proba(X), clf.predict_proba(X), rtol=0, atol=0.05)


def test_re_exporting_without_init_removes_the_old_init_export(classifiers, data, tmp_path):
    source, clf = classifiers
    X, _, _ = data
    path = export_onnx(clf, tmp_path / "out")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_onnx(clf, path)
    export_onnx(source, path, overwrite=True)
    assert not (path / "init").exists()
    np.testing.assert_allclose(load_onnx(path).predict_proba(X), source.predict_proba(X), rtol=0, atol=1e-4)


# ------------------------------------------------------------------ what can't be exported
def test_an_init_that_is_not_an_sktransfer_model_is_refused_with_what_to_do(data, tmp_path):
    X, y, _ = data
    pipeline = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    clf = TransferClassifier("mlp", init=FrozenEstimator(pipeline), max_epochs=1, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match=r"init=Pipeline\(...\).*a Pipeline is not a network that ONNX can hold"
                                         r".*Refit without init=, or with init= an sktransfer model"):
        export_onnx(clf, tmp_path / "pipeline")
    middle = TransferRegressor("mlp", init=Ridge().fit(X, y), max_epochs=1, random_state=0).fit(X, y)
    top = TransferRegressor("mlp", init=middle, max_epochs=1, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match=r"Its init= model \(TransferRegressor\) was fitted with init=Ridge"):
        export_onnx(top, tmp_path / "chain")
    assert not (tmp_path / "pipeline").exists() and not (tmp_path / "chain").exists()  # refused before writing
