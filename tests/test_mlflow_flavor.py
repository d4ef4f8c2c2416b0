"""sktransfer.mlflow: save_model / log_model / load_model and the pyfunc, on DataFrames,
lists and arrays; the artifact is the model directory, never a pickle."""

import base64
import io
import json

import numpy as np
import pytest

from sktransfer import TransferClassifier

mlflow = pytest.importorskip("mlflow")
pd = pytest.importorskip("pandas")
skm = pytest.importorskip("sktransfer.mlflow")


@pytest.fixture(scope="module")
def tabular():
    X = np.random.RandomState(0).normal(size=(30, 5))
    return X, np.where(X[:, 0] > 0, "up", "down")


@pytest.fixture(scope="module")
def mlp(tabular):
    return TransferClassifier("mlp", max_epochs=2, random_state=0).fit(*tabular)


@pytest.fixture(scope="module")
def text_model(sentences):
    return TransferClassifier("all-MiniLM-L6-v2", strategy="head", max_epochs=1, random_state=0).fit(*sentences)


def test_saved_model_is_the_model_directory_and_no_pickle(mlp, tabular, tmp_path):
    skm.save_model(mlp, tmp_path / "m", input_example=tabular[0][:2])
    files = {p.relative_to(tmp_path / "m").as_posix() for p in (tmp_path / "m").rglob("*") if p.is_file()}
    assert {"MLmodel", "model/config.json", "model/model.safetensors", "model/README.md", "requirements.txt",
            "input_example.json"} <= files
    assert not [f for f in files if f.endswith((".pkl", ".pickle", ".joblib"))]
    flavor = mlflow.models.Model.load(str(tmp_path / "m")).flavors
    assert flavor["python_function"]["loader_module"] == "sktransfer.mlflow"
    assert [c["name"] for c in flavor["sktransfer"]["columns"]] == ["x0", "x1", "x2", "x3", "x4"]
    assert "sktransfer==" in (tmp_path / "m" / "requirements.txt").read_text()


def test_pyfunc_predicts_on_a_frame_a_list_and_an_array(mlp, tabular, tmp_path):
    X = tabular[0]
    skm.save_model(mlp, tmp_path / "m", input_example=X[:2])
    model = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    expected = mlp.predict(X)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(5)])
    np.testing.assert_array_equal(model.predict(frame), expected)
    np.testing.assert_array_equal(model.predict(X), expected)
    np.testing.assert_array_equal(model.predict(X.tolist()), expected)
    assert model.metadata.signature.outputs is not None
    np.testing.assert_array_equal(skm.load_model(str(tmp_path / "m")).predict_proba(X), mlp.predict_proba(X))


def test_text_pyfunc_takes_a_named_column_lists_and_arrays(text_model, sentences, tmp_path):
    texts = sentences[0][:6]
    skm.save_model(text_model, tmp_path / "t", input_column="review", input_example=texts[:2])
    model = mlflow.pyfunc.load_model(str(tmp_path / "t"))
    expected = text_model.predict(texts)
    np.testing.assert_array_equal(model.predict(pd.DataFrame({"review": texts})), expected)
    np.testing.assert_array_equal(model.predict(texts), expected)
    np.testing.assert_array_equal(model.predict(np.array(texts)), expected)
    with pytest.raises(ValueError, match=r"takes the column\(s\) \['review'\].*\['text'\]"):
        model.predict(pd.DataFrame({"text": texts}))


def test_log_model_and_load_it_back_by_uri(mlp, tabular, tmp_path):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        # Artifacts in tmp_path too: a database store's default artifact root is ./mlruns.
        experiment = mlflow.create_experiment("flavor", artifact_location=(tmp_path / "artifacts").as_uri())
        with mlflow.start_run(experiment_id=experiment):
            info = skm.log_model(mlp, name="model", input_example=tabular[0][:3])
        assert skm.FLAVOR_NAME in info.flavors
        X = tabular[0]
        np.testing.assert_array_equal(mlflow.pyfunc.load_model(info.model_uri).predict(X), mlp.predict(X))
        assert type(skm.load_model(info.model_uri)) is TransferClassifier
    finally:
        mlflow.set_tracking_uri(None)


def test_images_as_paths_or_base64(digits, tmp_path):
    from PIL import Image

    from sktransfer.mlflow._pyfunc import decode_image

    X = digits[0]
    picture = Image.fromarray((X[0] * 15).astype(np.uint8)).convert("RGB")
    picture.save(tmp_path / "a.png")
    assert decode_image(str(tmp_path / "a.png")) == str(tmp_path / "a.png")
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    encoded = base64.b64encode(buffer.getvalue()).decode()
    for cell in (encoded, "data:image/png;base64," + encoded, buffer.getvalue()):
        np.testing.assert_array_equal(np.asarray(decode_image(cell)), np.asarray(picture))
    with pytest.raises(ValueError, match="neither a file on the serving machine nor a base64"):
        decode_image("no/such/file.png")


@pytest.mark.parametrize("bad, error, message", [
    (pd.DataFrame({"a": [1.0]}), ValueError, r"takes the column\(s\) \['x0'"),
    (np.zeros((2, 3)), ValueError, "5 column"),
])
def test_requests_that_do_not_fit_the_model_are_refused(mlp, bad, error, message):
    from sktransfer.mlflow._pyfunc import SktransferPyfunc, input_columns

    with pytest.raises(error, match=message):
        SktransferPyfunc(mlp, input_columns(mlp)).predict(bad)


def test_bad_arguments(mlp, tmp_path):
    with pytest.raises(ValueError, match="input_column applies to text and image"):
        skm.save_model(mlp, tmp_path / "m", input_column="x")
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        skm.save_model(TransferClassifier("mlp"), tmp_path / "n")


def test_missing_mlflow_names_the_extra(monkeypatch, mlp, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` now raises ImportError
    with pytest.raises(ImportError, match=r"sktransfer\[mlflow\]"):
        skm.save_model(mlp, tmp_path / "m")


def test_serving_input_example_is_a_request_mlflow_accepts(mlp, tabular, tmp_path):
    skm.save_model(mlp, tmp_path / "m", input_example=tabular[0][:2])
    request = json.loads((tmp_path / "m" / "serving_input_example.json").read_text())
    assert request["dataframe_split"]["columns"] == [f"x{i}" for i in range(5)]
