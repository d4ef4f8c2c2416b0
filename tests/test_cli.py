"""The command line through subprocess: fit, predict and evaluate on an image folder and a CSV."""

import csv
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image


def run(*args, check=True):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "sktransfer", *map(str, args)], capture_output=True, text=True,
                            env=env, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory, digits):
    X, y = digits
    root = tmp_path_factory.mktemp("images")
    for i, (image, label) in enumerate(zip(X[:24], y[:24])):
        folder = root / ("even" if label % 2 == 0 else "odd")
        folder.mkdir(exist_ok=True)
        Image.fromarray((image * 15).astype(np.uint8)).save(folder / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def text_table(tmp_path_factory, sentences):
    texts, labels = sentences
    path = tmp_path_factory.mktemp("texts") / "reviews.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label", "score"])
        for i, (text, label) in enumerate(zip(texts, labels)):
            writer.writerow([text, label, (1.0 if label == "pos" else -1.0) + 0.01 * i])
    return path


def test_fit_predict_evaluate_on_an_image_folder(image_folder, tmp_path):
    model = tmp_path / "model"
    run("fit", image_folder, "--backbone", "efficientnet_lite0", "--strategy", "head", "--image-size", "32",
        "--epochs", "3", "--out", model, "--quiet")
    assert (model / "config.json").exists()
    out = tmp_path / "predictions.csv"
    run("predict", model, image_folder, "--out", out)
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 24 and set(rows[0]) == {"path", "prediction", "proba_even", "proba_odd"}
    assert all(abs(float(r["proba_even"]) + float(r["proba_odd"]) - 1) < 1e-5 for r in rows)
    html = tmp_path / "report.html"
    report = run("evaluate", model, image_folder, "--report", html).stdout
    assert "precision" in report and "macro avg" in report and "confusion matrix" in report
    page = html.read_text()
    assert "data:image/png;base64," in page and 'src="http' not in page
    again = run("evaluate", model, image_folder, "--report", html, check=False)
    assert again.returncode == 2 and "pass --force" in again.stderr


def test_fit_says_when_small_image_data_kept_the_backbone(image_folder, tmp_path):
    from sktransfer._training.budget import SMALL_DATA_ROWS

    auto = run("fit", image_folder, "--backbone", "efficientnet_lite0", "--image-size", "32", "--out", tmp_path / "a")
    assert "fitted the head of efficientnet_lite0 on 24 samples of" in auto.stdout
    assert "views of each, reading blocks.4, blocks.6, final;" in auto.stdout  # 12 photos a class: two stages too
    assert f"not fine-tuned (--epochs auto keeps a pretrained image backbone as it is on {SMALL_DATA_ROWS}" in auto.stdout
    tuned = run("fit", image_folder, "--backbone", "efficientnet_lite0", "--image-size", "32", "--epochs", "1",
                "--out", tmp_path / "b")
    assert "fitted efficientnet_lite0 (full) on 24 samples of" in tuned.stdout and "not fine-tuned" not in tuned.stdout
    help_text = " ".join(run("fit", "--help").stdout.split())  # argparse wraps lines at the terminal's width
    assert f"on {SMALL_DATA_ROWS} images or fewer" in help_text  # the help states the same limit


def test_text_table_cross_validation_and_regression(text_table, tmp_path):
    model = tmp_path / "text-model"
    run("fit", text_table, "--backbone", "all-MiniLM-L6-v2", "--strategy", "head", "--epochs", "5", "--lr", "1e-2",
        "--out", model, "--quiet")
    cv = run("evaluate", model, text_table, "--cv", "2").stdout
    assert "2-fold cross-validation" in cv and "f1-score" in cv
    regressor = tmp_path / "regressor"
    run("fit", text_table, "--backbone", "all-MiniLM-L6-v2", "--strategy", "head", "--task", "regress",
        "--label-column", "score", "--epochs", "20", "--lr", "1e-2", "--out", regressor, "--quiet")
    scores = run("evaluate", regressor, text_table, "--label-column", "score").stdout
    assert "R2" in scores and "MAE" in scores and "Pearson r" in scores


def test_lora_long_text_and_head_epochs_flags_reach_the_model(text_table, tmp_path):
    from sktransfer import load

    model = tmp_path / "lora-model"
    run("fit", text_table, "--backbone", "all-MiniLM-L6-v2", "--strategy", "lora", "--lora-rank", "2",
        "--long-text", "chunk", "--head-epochs", "1", "--epochs", "1", "--out", model, "--quiet")
    params = load(model).get_params()
    assert (params["strategy"], params["lora_rank"], params["long_text"], params["head_epochs"]) == ("lora", 2, "chunk", 1)
    refused = run("fit", text_table, "--backbone", "all-MiniLM-L6-v2", "--strategy", "lora", "--lora-rank", "0",
                  "--out", tmp_path / "bad", check=False)
    assert refused.returncode == 2 and "lora_rank" in refused.stderr and not (tmp_path / "bad").exists()


def test_bad_input_exits_2_with_one_line_and_never_overwrites(text_table, tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    result = run("fit", text_table, "--backbone", "all-MiniLM-L6-v2", "--out", model, check=False)
    assert result.returncode == 2 and "pass --force" in result.stderr and "Traceback" not in result.stderr
    result = run("fit", tmp_path / "nowhere.csv", "--backbone", "mlp", "--out", tmp_path / "x", check=False)
    assert result.returncode == 2 and "does not exist" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    result = run("fit", text_table, "--backbone", "all-MiniLM-L6", "--out", tmp_path / "y", check=False)
    assert result.returncode == 2 and "all-MiniLM-L6-v2" in result.stderr and "Traceback" not in result.stderr
    result = run("predict", tmp_path / "no-model", text_table, check=False)
    assert result.returncode == 2  # argparse: --out is required


def test_long_predictions_in_chunks_match_one_pass(monkeypatch, capsys):
    from sktransfer import TransferClassifier, TransferRegressor
    from sktransfer._cli import commands as commands
    from sktransfer._features.progress import ENV, progress_scope

    monkeypatch.setenv(ENV, "1")  # bars although stderr is captured
    X = np.random.RandomState(0).normal(size=(50, 3))
    y = np.array(["a", "b"] * 25)
    clf = TransferClassifier("mlp", max_epochs=1, random_state=0).fit(X, y)
    monkeypatch.setattr(commands, "CHUNK", 8)

    class Exported:  # an ONNX export's interface: no get_params, no bars of its own
        classes_ = clf.classes_

        def predict_proba(self, X):
            return clf.predict_proba(X)

        def predict(self, X):
            return clf.predict(X)

    with progress_scope(1):
        for model in (Exported(), clf):  # in chunks under one bar; our estimators: one pass, their own bar
            predictions, proba = commands.outputs(model, X, quiet=False)
            np.testing.assert_allclose(proba, clf.predict_proba(X), rtol=1e-6)
            np.testing.assert_array_equal(predictions, clf.predict(X))
            assert "predicting: 100%" in capsys.readouterr().err.replace("\r", "\n")
        reg = TransferRegressor("mlp", max_epochs=1, random_state=0).fit(X, X[:, 0])
        values, none = commands.outputs(reg, X, quiet=False)
    assert none is None
    np.testing.assert_allclose(values, reg.predict(X), rtol=1e-6)


def test_a_parquet_table(tmp_path, sentences):
    import importlib.util

    import pandas as pd

    from sktransfer._cli.data import load_data

    texts, labels = sentences
    path = tmp_path / "reviews.parquet"
    if importlib.util.find_spec("pyarrow") is None and importlib.util.find_spec("fastparquet") is None:
        path.write_bytes(b"PAR1")  # no engine to write one with: the error must say what to install
        with pytest.raises(ValueError, match="needs pandas and pyarrow: pip install pandas pyarrow"):
            load_data(str(path))
        return
    pd.DataFrame({"text": texts, "label": labels}).to_parquet(path)
    data = load_data(str(path))
    assert data.X == list(texts) and list(data.y) == list(labels) and data.modality == "text"
