"""strategy="contrastive": SetFit's body tuning on label pairs, then the converged head,
as an ordinary strategy (search, model files, pickles, refusals)."""

import pickle

import numpy as np
import pytest
from _tiny_backbones import brightness_images
from sklearn.model_selection import GridSearchCV

import sktransfer
from sktransfer import Branch, TransferClassifier, TransferRegressor


def _fit(**params):
    X, y = brightness_images(24)
    clf = TransferClassifier("example_tinycnn", strategy="contrastive", contrastive_iterations=2, image_size=16,
                             backbone_lr=1e-2, random_state=0, **params)
    return clf.fit(X, y), X, y


def test_contrastive_tunes_the_body_then_solves_the_head():
    clf, X, y = _fit()
    plain = TransferClassifier("example_tinycnn", strategy="head", image_size=16, random_state=0).fit(X, y)
    # The body moved (the head trains on other features than the pretrained ones) ...
    assert clf.feature_fingerprint_ != plain.feature_fingerprint_
    tuned = dict(clf.net_.module_.backbone.named_parameters())
    assert any(not np.allclose(p.detach().numpy(), tuned[name].detach().numpy())
               for name, p in plain.net_.module_.backbone.named_parameters())
    # ... and the head was solved on them by L-BFGS.
    assert type(clf.net_.optimizer_).__name__ == "LBFGS"
    assert clf.predict_proba(X).shape == (len(X), 2)
    again, _, _ = _fit()
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))  # seeded


def test_contrastive_model_files_and_pickles_predict_the_same(tmp_path):
    clf, X, _ = _fit()
    expected = clf.predict_proba(X)
    np.testing.assert_allclose(sktransfer.load(clf.save_pretrained(tmp_path / "m")).predict_proba(X), expected,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pickle.loads(pickle.dumps(clf)).predict_proba(X), expected, rtol=1e-5, atol=1e-6)


def test_contrastive_in_a_search():
    X, y = brightness_images(24)
    search = GridSearchCV(TransferClassifier("example_tinycnn", strategy="contrastive", image_size=16, random_state=0),
                          {"contrastive_iterations": [1, 2]}, cv=2).fit(X, y)
    assert len(search.cv_results_["params"]) == 2


def test_contrastive_refusals():
    X, y = brightness_images(12)
    with pytest.raises(ValueError, match="for classifiers"):
        TransferRegressor("example_tinycnn", strategy="contrastive", image_size=16).fit(X, y.astype(float) + 0.5)
    with pytest.raises(ValueError, match="not supported for fused models"):
        TransferClassifier([Branch("example_tinycnn", strategy="contrastive"), "example_tinycnn"],
                           image_size=16).fit(X, y)


def test_contrastive_model_exports_to_onnx_and_reports(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("matplotlib")
    from sktransfer.report import html_report

    clf, X, y = _fit()
    predictor = sktransfer.load_onnx(sktransfer.export_onnx(clf, tmp_path / "onnx"))
    np.testing.assert_allclose(predictor.predict_proba(X), clf.predict_proba(X), atol=1e-3)
    np.testing.assert_array_equal(predictor.predict(X), clf.predict(X))
    html = open(html_report(clf, X, y, tmp_path / "report.html"), encoding="utf-8").read()
    for section in ("Settings", "Per-class metrics", "Confusion matrix", "Calibration", "Learning curves",
                    "Wrong predictions", "Right but unsure"):
        assert f"<h2>{section}" in html
