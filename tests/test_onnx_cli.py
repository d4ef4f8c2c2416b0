"""`sktransfer export`, and `predict` / `evaluate` on an exported directory."""

import csv

import numpy as np
import pytest
from _onnx_models import LABELS, SENTENCES, save_tiny_bert
from PIL import Image

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from sktransfer import TransferClassifier, TransferEmbedder, load_onnx
from sktransfer.__main__ import main


@pytest.fixture(scope="module")
def text_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    tiny = save_tiny_bert(root / "bert")
    clf = TransferClassifier(tiny, max_length=16, max_epochs=3, lr=1e-2, random_state=0).fit(SENTENCES, LABELS)
    clf.save_pretrained(root / "model")
    table = root / "reviews.csv"
    with open(table, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(zip(SENTENCES, LABELS))
    return clf, root / "model", table


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_export_then_predict_and_evaluate_as_the_model_directory_does(text_model, tmp_path, capsys):
    clf, model, table = text_model
    assert main(["export", str(model), str(tmp_path / "onnx")]) == 0
    assert "model.onnx" in capsys.readouterr().out
    assert main(["export", str(model), str(tmp_path / "onnx")]) == 2  # exists: --force to replace
    assert "overwrite" in capsys.readouterr().err
    assert main(["export", str(model), str(tmp_path / "onnx"), "--force", "--quantize", "int8"]) == 0
    assert load_onnx(tmp_path / "onnx").quantize == "int8"
    assert main(["export", str(model), str(tmp_path / "fp32")]) == 0

    for source, out in ((model, "torch.csv"), (tmp_path / "fp32", "onnx.csv")):
        assert main(["predict", str(source), str(table), "--out", str(tmp_path / out), "--quiet"]) == 0
    torch_rows, onnx_rows = read_csv(tmp_path / "torch.csv"), read_csv(tmp_path / "onnx.csv")
    assert [r["prediction"] for r in onnx_rows] == [r["prediction"] for r in torch_rows] == list(clf.predict(SENTENCES))
    assert set(onnx_rows[0]) == {"id", "prediction", "proba_neg", "proba_pos"}
    np.testing.assert_allclose([float(r["proba_pos"]) for r in onnx_rows],
                               [float(r["proba_pos"]) for r in torch_rows], atol=1e-4)

    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "fp32"), str(table), "--quiet"]) == 0
    report = capsys.readouterr().out
    assert "precision" in report and "confusion matrix" in report
    assert main(["evaluate", str(tmp_path / "fp32"), str(table), "--cv", "2"]) == 2
    assert "can't be refitted" in capsys.readouterr().err


def test_an_exported_embedder_is_refused_by_predict(tmp_path, capsys):
    images = tmp_path / "images"
    rng = np.random.RandomState(0)
    for label in ("a", "b"):
        (images / label).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.randint(0, 256, (12, 12, 3)).astype(np.uint8)).save(images / label / f"{i}.png")
    X = [str(p) for p in sorted(images.rglob("*.png"))]
    TransferEmbedder("example_tinycnn", image_size=16, feature_cache=None).fit(X).save_pretrained(tmp_path / "emb")
    assert main(["export", str(tmp_path / "emb"), str(tmp_path / "onnx")]) == 0
    assert main(["predict", str(tmp_path / "onnx"), str(images), "--out", str(tmp_path / "p.csv")]) == 2
    assert "predicts nothing" in capsys.readouterr().err
