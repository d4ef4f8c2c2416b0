"""sktransfer.report: learning curves, confusion, worst predictions and the HTML report."""

import base64
import io
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.metrics import confusion_matrix, log_loss

from sktransfer import TransferClassifier, TransferRegressor
from sktransfer.report import (
    html_report,
    most_confused,
    plot_confusion_matrix,
    plot_learning_curves,
    plot_top_losses,
    top_losses,
)

pytest.importorskip("matplotlib")
from PIL import Image  # noqa: E402

SCRIPT = "<script>alert(1)</script>"
LABELS = {"pos": "good <i>", "neg": "bad & sad"}  # labels that must be escaped too


@pytest.fixture(scope="module")
def image_clf(digits):
    X, y = digits
    clf = TransferClassifier("resnet18", pretrained=False, image_size=16, max_epochs=2, validation_fraction=0.25,
                             random_state=0)
    return clf.fit(X, y)


@pytest.fixture(scope="module")
def text_data(sentences):
    texts, y = sentences
    return texts + [SCRIPT], np.array([LABELS[label] for label in y] + [LABELS["neg"]])


@pytest.fixture(scope="module")
def text_clf(text_data):
    texts, y = text_data
    return TransferClassifier("all-MiniLM-L6-v2", strategy="head", max_epochs=3, random_state=0).fit(texts, y)


@pytest.fixture(scope="module")
def regressor(digits):
    X, y = digits
    return TransferRegressor("mlp", max_epochs=3, random_state=0).fit(X.reshape(len(X), -1), y.astype(float))


def _table_rows(section: str) -> int:
    return section.count("<tr>")


# ---------------------------------------------------------------------------- analyses
def test_learning_curves_one_point_per_epoch(image_clf, regressor):
    ax = plot_learning_curves(image_clf)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"training", "validation"}
    for label, key in (("training", "train_loss"), ("validation", "valid_loss")):
        assert list(lines[label].get_xdata()) == [1, 2]
        np.testing.assert_allclose(lines[label].get_ydata(), image_clf.net_.history[:, key])
    # No validation split: one curve.
    assert [line.get_label() for line in plot_learning_curves(regressor).get_lines()] == ["training"]


def test_most_confused_matches_the_confusion_matrix(image_clf, digits):
    X, y = digits
    matrix = confusion_matrix(y, image_clf.predict(X), labels=image_clf.classes_)
    by_hand = sorted(
        ((int(t), int(p), int(matrix[i, j])) for i, t in enumerate(image_clf.classes_)
         for j, p in enumerate(image_clf.classes_) if i != j and matrix[i, j] > 0),
        key=lambda item: (-item[2], str(item[0]), str(item[1])),
    )
    assert by_hand, "the 2-epoch model should make mistakes"
    assert most_confused(image_clf, X, y) == by_hand
    assert most_confused(image_clf, X, y.astype(str)) == by_hand  # '1' is the class 1
    cut = by_hand[0][2]
    assert most_confused(image_clf, X, y, min_count=cut) == [row for row in by_hand if row[2] >= cut]


def test_top_losses_are_per_sample_cross_entropy(text_clf, text_data):
    texts, y = text_data
    proba = text_clf.predict_proba(texts)
    by_hand = np.array([log_loss([y[i]], proba[i:i + 1], labels=text_clf.classes_) for i in range(len(y))])
    worst = top_losses(text_clf, texts, y, k=5)
    np.testing.assert_array_equal(worst.index, np.argsort(-by_hand, kind="stable")[:5])
    np.testing.assert_allclose(worst.loss, by_hand[worst.index], rtol=1e-6)
    assert list(worst.true) == list(y[worst.index])
    assert list(worst.predicted) == list(text_clf.predict([texts[i] for i in worst.index]))
    np.testing.assert_allclose(worst.probability, proba[worst.index].max(axis=1), rtol=1e-6)
    assert np.all(np.diff(worst.loss) <= 0)


def test_top_losses_of_a_regressor_are_squared_errors(regressor, digits):
    X, y = digits
    X = X.reshape(len(X), -1)
    errors = (regressor.predict(X) - y) ** 2
    worst = top_losses(regressor, X, y, k=4)
    assert worst.probability is None
    np.testing.assert_allclose(worst.loss, np.sort(errors)[::-1][:4])
    np.testing.assert_allclose(worst.predicted, regressor.predict(X)[worst.index])


def test_confusion_matrix_uses_classes(image_clf, digits):
    X, y = digits
    display = plot_confusion_matrix(image_clf, X, y)
    np.testing.assert_array_equal(display.confusion_matrix, confusion_matrix(y, image_clf.predict(X)))
    assert [t.get_text() for t in display.ax_.get_xticklabels()] == [str(c) for c in image_clf.classes_]


def test_plot_top_losses_images_and_text(image_clf, digits, text_clf, text_data):
    X, y = digits
    figure = plot_top_losses(image_clf, X, y, k=5)
    axes = figure.get_axes()
    assert len(axes) == 5
    # Decoded as the estimator reads them: 8x8 floats in 0..16 are uint8 pixels 0..16.
    worst = top_losses(image_clf, X, y, k=5)
    shown = axes[0].get_images()[0].get_array()
    np.testing.assert_array_equal(shown[..., 0], np.rint(X[worst.index[0]]).astype(np.uint8))
    assert axes[0].get_title().startswith(f"true {worst.true[0]}\npred {worst.predicted[0]}")

    texts, y = text_data
    table = plot_top_losses(text_clf, texts, y, k=len(texts)).get_axes()[0].tables[0]
    cells = [cell.get_text().get_text() for cell in table.get_celld().values()]
    assert SCRIPT in cells  # a matplotlib table shows text; only HTML needs escaping


# ---------------------------------------------------------------------------- HTML
def _check_self_contained(page: str) -> list[bytes]:
    assert "<!DOCTYPE html>" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    sources = re.findall(r'<img[^>]*src="([^"]*)"', page)
    assert sources and all(src.startswith("data:image/png;base64,") for src in sources)
    pngs = [base64.b64decode(src.split(",", 1)[1]) for src in sources]
    for png in pngs:
        assert Image.open(io.BytesIO(png)).format == "PNG"
    return pngs


def test_html_report_image_classifier(image_clf, digits, tmp_path):
    import matplotlib.pyplot as plt

    X, y = digits
    open_before = plt.get_fignums()
    path = html_report(image_clf, X, y, tmp_path / "report.html", title="Digits & <friends>")
    page = open(path, encoding="utf-8").read()
    wrong = int((image_clf.predict(X) != y).sum())
    # confusion matrices, reliability diagram, ROC/PR curves, learning curves, and an image grid each for the
    # wrong predictions and the right-but-unsure ones (when there are any)
    assert len(_check_self_contained(page)) == 4 + (wrong > 0) + (wrong < len(y))
    for needed in ("precision", "recall", "f1-score", "support", "accuracy", "macro avg", "Confusion matrix",
                   "Learning curves", "Wrong predictions", "Right but unsure", "Digits &amp; &lt;friends&gt;"):
        assert needed in page
    for label in image_clf.classes_:
        assert f"<td class=\"txt\">{label}</td>" in page
    assert plt.get_fignums() == open_before  # nothing left open in pyplot


def test_html_report_text_classifier_escapes_user_strings(text_clf, text_data, tmp_path):
    texts, y = text_data
    path = html_report(text_clf, texts, y, tmp_path / "text.html", k=len(texts))
    page = open(path, encoding="utf-8").read()
    _check_self_contained(page)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in page.lower()  # the report has no scripts, and user text makes none
    assert "good &lt;i&gt;" in page and "bad &amp; sad" in page
    assert "good <i>" not in page and "bad & sad" not in page
    worst = page.split("Wrong predictions", 1)[1]
    wrong = int((text_clf.predict(texts) != y).sum())
    # every text, in one of the two tables (each with a header row)
    assert _table_rows(worst) == len(texts) + (wrong > 0) + (wrong < len(texts))
    assert "I love this movie" in worst


def test_html_report_regressor(regressor, digits, tmp_path):
    X, y = digits
    X = X.reshape(len(X), -1)
    page = open(html_report(regressor, X, y.astype(float), tmp_path / "reg.html"), encoding="utf-8").read()
    _check_self_contained(page)
    for needed in ("R²", "MAE", "Pearson r", "Learning curves", "Worst predictions"):
        assert needed in page
    assert "Confusion matrix" not in page


def test_html_report_multi_output_regressor(digits, tmp_path):
    X, y = digits
    X = X.reshape(len(X), -1)
    Y = np.column_stack([y, X[:, 20]])
    reg = TransferRegressor("mlp", max_epochs=2, random_state=0).fit(X, Y)
    worst = top_losses(reg, X, Y, k=3)
    np.testing.assert_allclose(worst.loss, np.sort(((reg.predict(X) - Y) ** 2).mean(axis=1))[::-1][:3])
    page = open(html_report(reg, X, Y, tmp_path / "multi.html"), encoding="utf-8").read()
    assert "output 0" in page and "output 1" in page


def test_html_report_refuses_to_overwrite(regressor, digits, tmp_path):
    X, y = digits
    X = X.reshape(len(X), -1)
    path = tmp_path / "r.html"
    path.write_text("keep me")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        html_report(regressor, X, y, path)
    assert path.read_text() == "keep me"
    html_report(regressor, X, y, path, overwrite=True)
    assert path.read_text().startswith("<!DOCTYPE html>")


def test_bad_input_is_refused_clearly(image_clf, regressor, digits, tmp_path):
    X, y = digits
    with pytest.raises(NotFittedError):
        top_losses(TransferClassifier("resnet18"), X, y)
    with pytest.raises(ValueError, match="X has 48 samples but y has 47"):
        top_losses(image_clf, X, y[:-1])
    with pytest.raises(ValueError, match="never saw in fit: \\['7'\\]"):
        most_confused(image_clf, X, np.where(y == 0, 7, y))
    with pytest.raises(TypeError, match="needs a classifier"):
        most_confused(regressor, X.reshape(len(X), -1), y)
    with pytest.raises(ValueError, match="k must be a positive int"):
        top_losses(image_clf, X, y, k=0)
    assert not (tmp_path / "none.html").exists()


def test_missing_matplotlib_names_the_extra(image_clf, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import fails as if not installed
    with pytest.raises(ImportError, match=r"pip install sktransfer\[report\]"):
        plot_learning_curves(image_clf)


# ---------------------------------------------------------------------------- a browser
def test_report_renders_in_headless_chromium(image_clf, digits, tmp_path):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium); the report is not rendered.")
    X, y = digits
    path = html_report(image_clf, X, y, tmp_path / "report.html")
    shot = tmp_path / "shot.png"
    result = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}", "--window-size=1200,2000",
         "--hide-scrollbars", Path(path).resolve().as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert shot.exists(), result.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert pixels.shape[:2] == (2000, 1200)
    # Text is black or grey; only the rendered PNGs (the blue confusion matrix, the
    # coloured curves) put saturated colour on the page. A broken <img> shows none.
    saturated = (pixels.max(axis=2) - pixels.min(axis=2)) > 60
    assert saturated.sum() > 20_000, f"only {saturated.sum()} coloured pixels: were the images rendered?"
    colours = np.unique(pixels.reshape(-1, 3), axis=0)
    assert len(colours) > 500


def _without_timestamp(page: str) -> str:
    return re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", "(date)", page)


def test_html_report_reuses_given_scores_without_running_the_model(image_clf, regressor, digits, tmp_path,
                                                                    monkeypatch):
    X, y = digits
    expected = _without_timestamp(open(html_report(image_clf, X, y, tmp_path / "a.html")).read())
    proba = image_clf.predict_proba(X)
    calls = []
    for method in ("predict", "predict_proba", "predict_log_proba"):
        monkeypatch.setattr(image_clf, method, lambda *a, _m=method, **k: calls.append(_m))
    page = open(html_report(image_clf, X, y, tmp_path / "b.html", y_score=proba)).read()
    assert calls == []  # one pass over X in `sktransfer evaluate --report`, not two
    # The same report, up to log(exp(log p)) rounding in the printed losses.
    assert re.sub(r"\d\.\d+", "#", _without_timestamp(page)) == re.sub(r"\d\.\d+", "#", expected)
    wrong_shape = rf"y_score has shape \(48, 3\).*predict_proba\(X\) has shape \(48, {proba.shape[1]}\)"
    with pytest.raises(ValueError, match=wrong_shape):
        html_report(image_clf, X, y, tmp_path / "c.html", y_score=proba[:, :3])
    Xr = X.reshape(len(X), -1)
    with pytest.raises(ValueError, match="y_score holds NaN"):
        html_report(regressor, Xr, y, tmp_path / "d.html", y_score=np.full(len(y), np.nan))
    assert not (tmp_path / "c.html").exists() and not (tmp_path / "d.html").exists()
