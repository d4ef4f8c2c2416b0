"""The report's sections against scikit-learn's metrics: per-class scores, calibration (ECE
and the confidence warning), ROC AUC and average precision, regression errors, settings, and
the wrong / right-but-unsure split."""

import html
import re

import numpy as np
import pytest
from sklearn.metrics import (
    average_precision_score,
    classification_report,
    mean_absolute_error,
    r2_score,
    roc_auc_score,
)

from sktransfer import TransferClassifier, TransferRegressor, __version__, load
from sktransfer.report import html_report

pytest.importorskip("matplotlib")


def tables(page: str, heading: str) -> list[list[str]]:
    """The rows (cells as text) of the first table after the ``<h2>`` that starts with ``heading``."""
    section = page.split(f"<h2>{heading}", 1)[1]
    table = section.split("<table>", 1)[1].split("</table>", 1)[0]
    return [[html.unescape(c) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row)]
            for row in re.findall(r"<tr>(.*?)</tr>", table)]


def data(n=90, classes=3, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 5).astype(np.float32)
    return X, np.array(["a", "b", "c", "d"][:classes])[rng.randint(0, classes, n)]


@pytest.fixture(scope="module")
def clf():
    X, y = data()
    return TransferClassifier("mlp", max_epochs=2, head_epochs=0, random_state=0).fit(X, y)


def scores(y, classes, seed=1, sharpness=3.0):
    """Probabilities that mostly favour the true class (a softmax of noisy scores)."""
    rng = np.random.RandomState(seed)
    logits = rng.randn(len(y), len(classes)) + sharpness * (y[:, None] == classes[None, :])
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def ece_by_hand(proba, y, classes, bins=15):
    confidence, right = proba.max(axis=1), classes[proba.argmax(axis=1)] == y
    total = 0.0
    for lo, hi in zip(np.linspace(0, 1, bins + 1)[:-1], np.linspace(0, 1, bins + 1)[1:]):
        inside = (confidence > lo) & (confidence <= hi)
        if inside.any():
            total += inside.sum() / len(y) * abs(right[inside].mean() - confidence[inside].mean())
    return total


def report(estimator, X, y, tmp_path, **kwargs):
    return open(html_report(estimator, X, y, tmp_path / "r.html", overwrite=True, **kwargs), encoding="utf-8").read()


def test_per_class_scores_calibration_and_curves_match_sklearn(clf, tmp_path):
    X, y = data()
    proba = scores(y, clf.classes_)
    page = report(clf, X, y, tmp_path, y_score=proba)
    predicted = clf.classes_[proba.argmax(axis=1)]
    expected = classification_report(y, predicted, output_dict=True, zero_division=0)
    for row in tables(page, "Per-class metrics")[1:]:
        if row[0] != "accuracy":
            assert [float(v) for v in row[1:4]] == pytest.approx(
                [expected[row[0]][k] for k in ("precision", "recall", "f1-score")], abs=5e-4)
    accuracy, confidence, ece, n = tables(page, "Calibration")[1]
    assert float(accuracy) == pytest.approx((predicted == y).mean(), abs=5e-4)
    assert float(confidence) == pytest.approx(proba.max(axis=1).mean(), abs=5e-4)
    assert float(ece) == pytest.approx(ece_by_hand(proba, y, clf.classes_), abs=5e-4) and int(n) == len(y)
    curve_rows = tables(page, "ROC and precision-recall")[1:]
    assert [r[0] for r in curve_rows] == list(clf.classes_)  # one-vs-rest, every class
    for i, (label, auc, ap, support) in enumerate(curve_rows):
        assert float(auc) == pytest.approx(roc_auc_score(y == label, proba[:, i]), abs=5e-4)
        assert float(ap) == pytest.approx(average_precision_score(y == label, proba[:, i]), abs=5e-4)
        assert int(support) == (y == label).sum()
    assert np.mean([float(r[1]) for r in curve_rows]) == pytest.approx(
        roc_auc_score(y, proba, multi_class="ovr", labels=clf.classes_), abs=2e-3)


def test_binary_curves_are_on_the_positive_class(tmp_path):
    X, y = data(80, classes=2)
    binary = TransferClassifier("mlp", max_epochs=2, head_epochs=0, random_state=0).fit(X, y)
    proba = scores(y, binary.classes_, sharpness=1.0)
    page = report(binary, X, y, tmp_path, y_score=proba)
    ((label, auc, ap, support),) = tables(page, "ROC and precision-recall")[1:]
    assert label == "b" and int(support) == (y == "b").sum()
    assert float(auc) == pytest.approx(roc_auc_score(y, proba[:, 1]), abs=5e-4)
    assert float(ap) == pytest.approx(average_precision_score(y == "b", proba[:, 1]), abs=5e-4)
    assert "one-vs-rest" not in page


def test_flat_and_sharp_probabilities_are_flagged_in_words(clf, tmp_path):
    X, y = data()
    index = np.searchsorted(clf.classes_, y)
    flat = np.full((len(y), 3), 0.3)
    flat[np.arange(len(y)), index] = 0.4  # always right, at 0.4
    page = report(clf, X, y, tmp_path, y_score=flat)
    assert ("mean top-class probability 0.40 with accuracy 1.00: probabilities are too flat (under-confident)"
            in html.unescape(page))
    sharp = np.full((len(y), 3), 0.005)
    wrong = np.arange(len(y)) % 2 == 0
    sharp[np.arange(len(y)), np.where(wrong, (index + 1) % 3, index)] = 0.99  # half wrong, all at 0.99
    page = html.unescape(report(clf, X, y, tmp_path, y_score=sharp))
    assert "mean top-class probability 0.99 with accuracy 0.50: probabilities are too sharp" in page
    fair = scores(y, clf.classes_, sharpness=1.0)
    gap = (clf.classes_[fair.argmax(axis=1)] == y).mean() - fair.max(axis=1).mean()
    assert abs(gap) < 0.10  # within the threshold: no warning
    assert 'class="warn"' not in report(clf, X, y, tmp_path, y_score=fair)


def test_wrong_and_unsure_predictions_are_split(clf, tmp_path):
    X, y = data()
    proba = scores(y, clf.classes_, sharpness=1.0)
    predicted = clf.classes_[proba.argmax(axis=1)]
    page = report(clf, X, y, tmp_path, y_score=proba, k=5)
    wrong_rows = tables(page, "Wrong predictions")[1:]
    unsure_rows = tables(page, "Right but unsure")[1:]
    assert len(wrong_rows) == min(5, (predicted != y).sum()) and all(r[2] != r[3] for r in wrong_rows)
    assert len(unsure_rows) == 5 and all(r[2] == r[3] for r in unsure_rows)
    right = np.sort(proba.max(axis=1)[predicted == y])[:5]
    assert [float(r[4]) for r in unsure_rows] == pytest.approx(right, abs=5e-4)  # least sure first


def test_regressor_errors_match_sklearn_and_are_plotted(tmp_path):
    X, _ = data()
    y = X[:, 0] * 3 + 1
    reg = TransferRegressor("mlp", max_epochs=2, head_epochs=0, random_state=0).fit(X, y)
    page = report(reg, X, y, tmp_path)
    (_, r2, mae, _, _) = tables(page, "Metrics")[1]
    assert float(r2) == pytest.approx(r2_score(y, reg.predict(X)), abs=5e-4)
    assert float(mae) == pytest.approx(mean_absolute_error(y, reg.predict(X)), rel=1e-3)
    assert "<h2>Predictions against the truth</h2>\n<img" in page


def test_settings_name_the_training_and_survive_model_files(clf, tmp_path):
    assert clf.n_samples_fit_ == 90
    clf.save_pretrained(tmp_path / "model")
    loaded = load(tmp_path / "model")
    assert loaded.n_samples_fit_ == 90
    X, y = data()
    settings = dict(tables(report(loaded, X, y, tmp_path), "Settings")[1:])
    assert settings["backbone"] == "mlp" and settings["strategy"] == "full"
    assert settings["training samples"] == "90" and settings["sktransfer"] == __version__
    assert settings["epochs"] == "2 run (max_epochs=2)" and settings["learning rates"].startswith("lr=0.001")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", settings["report written"])


def test_confusion_matrices_read_well_with_many_classes(clf):
    from sktransfer._report.figures import _confusion, _confusion_pair

    X, y = data(200, classes=3)
    small = _confusion_pair(clf, y, clf.predict(X))
    counts = _confusion(clf, y, clf.predict(X))
    assert all(float(t).is_integer() for t in counts.im_.colorbar.get_ticks())

    class Many:
        classes_ = np.array([f"class {i:02d}" for i in range(14)])

    rng = np.random.RandomState(0)
    y_many = Many.classes_[rng.randint(0, 14, 300)]
    many = _confusion_pair(Many, y_many, Many.classes_[rng.randint(0, 14, 300)])
    assert many.get_figwidth() > small.get_figwidth() and many.get_figheight() > small.get_figheight()
    ax = many.axes[0]
    assert {label.get_rotation() for label in ax.get_xticklabels()} == {45}
    assert ax.get_xticklabels()[0].get_fontsize() < 10
    assert all(float(t).is_integer() for t in ax.images[0].colorbar.get_ticks())
