"""export_onnx and load_onnx: what can't be exported, bad inputs, int8 quantization, the files."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from _onnx_models import tabular
from _tiny_backbones import brightness_images
from PIL import Image

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from sktransfer import TransferClassifier, export_onnx, load_onnx


@pytest.fixture(scope="module")
def tabular_export(tmp_path_factory):
    X, y = tabular(200)
    frame = pd.DataFrame(X, columns=list("abcde"))
    clf = TransferClassifier("mlp", max_epochs=30, lr=1e-2, random_state=0).fit(frame, y)
    return clf, export_onnx(clf, tmp_path_factory.mktemp("onnx") / "clf"), frame, y


@pytest.fixture(scope="module")
def image_export(tmp_path_factory):
    X, y = brightness_images(20)
    clf = TransferClassifier("example_tinycnn", image_size=16, max_epochs=1, random_state=0).fit(X, y)
    return load_onnx(export_onnx(clf, tmp_path_factory.mktemp("onnx") / "img"))


# ------------------------------------------------------------------ what can't be exported
def test_init_models_of_other_libraries_are_refused_with_the_reason():
    from sklearn.linear_model import LogisticRegression

    X, y = tabular()
    clf = TransferClassifier("mlp", init=LogisticRegression().fit(X, y), max_epochs=1, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="init=LogisticRegression.*not a network that ONNX can hold"):
        export_onnx(clf, "unused")


class DataDependent(torch.nn.Module):
    """A backbone whose Python control flow depends on the values: torch.export refuses it."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(5, 4)

    def forward(self, x):
        if x.sum() > 0:
            return self.linear(x)
        return -self.linear(x)


def test_a_module_the_exporter_refuses_is_a_clear_type_error(tmp_path):
    X, y = tabular()
    clf = TransferClassifier(DataDependent(), max_epochs=1, random_state=0).fit(X, y)
    with pytest.raises(TypeError, match="could not export this model's network \\(DataDependent backbone\\)"):
        export_onnx(clf, tmp_path / "out")
    assert not (tmp_path / "out" / "sktransfer_onnx.json").exists()


def test_unfitted_models_other_objects_and_bad_options_are_refused(tmp_path):
    from sklearn.exceptions import NotFittedError
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(NotFittedError):
        export_onnx(TransferClassifier("mlp"), tmp_path)
    with pytest.raises(TypeError, match="takes a fitted TransferClassifier"):
        export_onnx(LogisticRegression(), tmp_path)
    with pytest.raises(ValueError, match="quantize must be one of"):
        export_onnx(TransferClassifier("mlp"), tmp_path, quantize="int4")


def test_an_existing_export_is_not_overwritten_unless_asked(tabular_export):
    clf, path, frame, _ = tabular_export
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_onnx(clf, path)
    export_onnx(clf, path, overwrite=True)
    assert load_onnx(path).predict(frame).shape == (len(frame),)


# ------------------------------------------------------------------ the files
def test_the_config_is_plain_json_with_what_the_predictor_needs(tabular_export):
    clf, path, *_ = tabular_export
    config = json.loads((path / "sktransfer_onnx.json").read_text())
    assert config["kind"] == "classifier" and config["graph"] == "model.onnx" and config["quantize"] is None
    assert config["inputs"]["feature_names"] == list("abcde")
    np.testing.assert_allclose(config["inputs"]["mean"], clf.adapter_.scaler_.mean_)
    assert config["outputs"]["classes"] == {"values": [0, 1], "dtype": np.asarray(clf.classes_).dtype.str}


def test_reading_a_model_directory_or_nothing_says_what_to_do(tabular_export, tmp_path):
    clf, *_ = tabular_export
    clf.save_pretrained(tmp_path / "model")
    with pytest.raises(ValueError, match="export it first"):
        load_onnx(tmp_path / "model")
    with pytest.raises(ValueError, match="not an exported ONNX model"):
        load_onnx(tmp_path)
    with pytest.raises(ValueError, match="batch_size"):
        load_onnx(tmp_path, batch_size=0)


# ------------------------------------------------------------------ bad inputs
def test_tabular_inputs_are_checked(tabular_export):
    _, path, frame, _ = tabular_export
    onnx = load_onnx(path)
    with pytest.raises(ValueError, match="columns"):
        onnx.predict(frame[list("edcba")])
    with pytest.raises(ValueError, match="has 4 features"):
        onnx.predict(frame.to_numpy()[:, :4])
    with pytest.raises(ValueError, match="NaN"):
        onnx.predict(np.full((2, 5), np.nan))
    with pytest.raises(TypeError, match="strings"):
        onnx.predict(["a text", "another"])
    with pytest.raises(ValueError, match="0 sample"):
        onnx.predict(np.empty((0, 5)))


def test_image_inputs_are_checked(image_export, tmp_path):
    with pytest.raises(TypeError, match="single PIL image"):
        image_export.predict(Image.new("RGB", (8, 8)))
    with pytest.raises(TypeError, match="single string"):
        image_export.predict("photo.png")
    with pytest.raises(ValueError, match="not found"):
        image_export.predict([str(tmp_path / "missing.png")])
    with pytest.raises(ValueError, match="negative|normalised"):
        image_export.predict(-np.ones((2, 8, 8, 3)))
    with pytest.raises(ValueError, match="single image"):
        image_export.predict(np.zeros((32, 32, 3), dtype=np.uint8))
    with pytest.raises(TypeError, match="mixes"):
        image_export.predict([np.zeros((8, 8), np.uint8), Image.new("RGB", (8, 8))])
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="Could not read image file"):
        image_export.predict([str(tmp_path / "broken.png")])


def test_text_inputs_are_checked(tmp_path):
    from _onnx_models import SENTENCES, save_tiny_bert

    tiny = save_tiny_bert(tmp_path / "bert")
    emb = TransferClassifier(tiny, max_length=16, max_epochs=1, random_state=0).fit(SENTENCES, [0, 1] * 4)
    onnx = load_onnx(export_onnx(emb, tmp_path / "onnx"))
    with pytest.raises(TypeError, match="single string"):
        onnx.predict("one text")
    with pytest.raises(TypeError, match="numeric array"):
        onnx.predict(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="missing"):
        onnx.predict(["fine", None])
    with pytest.raises(TypeError, match="must be a str"):
        onnx.predict(["fine", 3])


# ------------------------------------------------------------------ int8
def test_int8_export_is_smaller_and_predicts_like_fp32(tabular_export, tmp_path):
    import onnx

    clf, fp32_path, frame, y = tabular_export
    int8_path = export_onnx(clf, tmp_path / "int8", quantize="int8")
    graph = onnx.load(str(int8_path / "model.onnx")).graph
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= {node.op_type for node in graph.node}
    # one scale per output channel of each quantized weight (the MLP's are 128 wide)
    scales = [list(t.dims) for t in graph.initializer if t.name.endswith("_scale")]
    assert scales and all(dims and dims[0] > 1 for dims in scales), scales
    assert (int8_path / "model.onnx").stat().st_size < 0.5 * (fp32_path / "model.onnx").stat().st_size
    assert json.loads((int8_path / "sktransfer_onnx.json").read_text())["quantize"] == "int8"
    fp32, int8 = load_onnx(fp32_path), load_onnx(int8_path)
    difference = np.abs(int8.predict_proba(frame) - fp32.predict_proba(frame))
    assert difference.mean() < 0.01 and difference.max() < 0.1  # int8 weights and activations: close, not equal
    assert (int8.predict(frame) == fp32.predict(frame)).mean() >= 0.97
    assert abs((int8.predict(frame) == y).mean() - (fp32.predict(frame) == y).mean()) <= 0.03
