"""export_onnx + load_onnx: the exported graph predicts what the torch estimator predicts.

Tiny models (a 2-layer BERT of width 32, the example plugin's CNN, the MLP), CPU only:
probabilities, targets and features within 1e-4 (text, tabular) or 1e-3 (images), and
identical labels.
"""

import os

import numpy as np
import pandas as pd
import pytest
from _onnx_models import LABELS, MAX_LENGTH, SENTENCES, TEXTS, save_tiny_bert, tabular
from _tiny_backbones import brightness_images
from PIL import Image

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from sktransfer import TransferClassifier, TransferEmbedder, TransferRegressor, export_onnx, load, load_onnx


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


def exported(model, tmp_path, name="onnx", batch_size=32, **export_params):
    return load_onnx(export_onnx(model, tmp_path / name, **export_params), batch_size=batch_size)


# ------------------------------------------------------------------ text
@pytest.mark.parametrize("long_text, chunk_pooling", [("truncate", "mean"), ("chunk", "mean"), ("chunk", "max")])
def test_text_classifier_matches_torch_on_long_and_empty_texts(tiny_bert, tmp_path, long_text, chunk_pooling):
    clf = TransferClassifier(tiny_bert, max_length=MAX_LENGTH, long_text=long_text, chunk_pooling=chunk_pooling,
                             max_epochs=3, lr=1e-2, random_state=0).fit(SENTENCES, LABELS)
    onnx = exported(clf, tmp_path)
    np.testing.assert_allclose(onnx.predict_proba(TEXTS), clf.predict_proba(TEXTS), rtol=0, atol=1e-4)
    np.testing.assert_array_equal(onnx.predict(TEXTS), clf.predict(TEXTS))
    np.testing.assert_array_equal(onnx.classes_, clf.classes_)
    # A text of several windows: its own row, whatever else is in the batch.
    np.testing.assert_allclose(onnx.predict_proba(TEXTS[-3:-2]), onnx.predict_proba(TEXTS)[-3:-2], atol=1e-6)
    if long_text == "chunk":  # the windows matter: the long text's answer is not the truncated one
        assert onnx.inputs.batch(onnx.inputs.encode([TEXTS[-3]]), [0])["window_mask"].sum() > 1


@pytest.mark.parametrize("long_text", ["truncate", "chunk"])
def test_texts_run_longest_first_and_come_back_in_the_callers_order(tiny_bert, tmp_path, long_text):
    clf = TransferClassifier(tiny_bert, max_length=MAX_LENGTH, long_text=long_text, max_epochs=2, lr=1e-2,
                             random_state=0).fit(SENTENCES, LABELS)
    onnx = exported(clf, tmp_path, batch_size=3)
    texts = ["ok", *TEXTS, "so so", "really quite good"]
    order = onnx.inputs.order(onnx.inputs.encode(texts))
    counts = [sum(len(w.ids) for w in windows) for windows in onnx.inputs.encode(texts)]
    assert list(order[:2]) == sorted(range(len(texts)), key=lambda i: -counts[i])[:2]  # the longest first
    assert order.tolist() != list(range(len(texts)))  # the order really changes here
    fed = []
    run = onnx.session.run
    onnx.session = type("Spy", (), {"run": lambda self, names, feed: fed.append(feed) or run(names, feed)})()
    proba = onnx.predict_proba(texts)
    np.testing.assert_allclose(proba, clf.predict_proba(texts), rtol=0, atol=1e-4)
    one_by_one = np.concatenate([onnx.predict_proba([text]) for text in texts])
    np.testing.assert_allclose(proba, one_by_one, rtol=0, atol=1e-6)
    # Batches of texts alike pad less than batches in the caller's order would.
    sorted_padding = sum(int((feed["attention_mask"] == 0).sum()) for feed in fed[: -(-len(texts) // 3)])
    unsorted = [onnx.inputs.batch(onnx.inputs.encode(texts), np.arange(i, min(i + 3, len(texts))))
                for i in range(0, len(texts), 3)]
    assert sorted_padding < sum(int((feed["attention_mask"] == 0).sum()) for feed in unsorted)


def test_text_regressor_and_embedder_match_torch(tiny_bert, tmp_path):
    y = np.linspace(-50, 1000, len(SENTENCES))
    reg = TransferRegressor(tiny_bert, max_length=MAX_LENGTH, max_epochs=3, random_state=0).fit(SENTENCES, y)
    np.testing.assert_allclose(exported(reg, tmp_path, "reg").predict(TEXTS), reg.predict(TEXTS), rtol=1e-6, atol=1e-4)
    emb = TransferEmbedder(tiny_bert, max_length=MAX_LENGTH, long_text="chunk", feature_cache=None).fit(SENTENCES)
    onnx = exported(emb, tmp_path, "emb")
    features = onnx.transform(pd.Series(TEXTS))
    assert features.dtype == np.float32 and features.shape == (len(TEXTS), emb.n_features_out_)
    np.testing.assert_allclose(features, emb.transform(TEXTS), rtol=0, atol=1e-4)
    np.testing.assert_array_equal(onnx.get_feature_names_out(), emb.get_feature_names_out())


def test_multilabel_text_classifier_gives_probabilities_and_the_indicator_dtype(tiny_bert, tmp_path):
    Y = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 1]] * 2, dtype=bool)
    clf = TransferClassifier(tiny_bert, max_length=MAX_LENGTH, max_epochs=3, random_state=0).fit(SENTENCES, Y)
    onnx = exported(clf, tmp_path)
    np.testing.assert_allclose(onnx.predict_proba(TEXTS), clf.predict_proba(TEXTS), rtol=0, atol=1e-4)
    predicted = onnx.predict(TEXTS)
    assert predicted.dtype == np.bool_ and predicted.shape == (len(TEXTS), 3)
    np.testing.assert_array_equal(predicted, clf.predict(TEXTS))


def test_lora_adapters_are_merged_into_the_export_and_the_estimator_is_untouched(tiny_bert, tmp_path):
    pytest.importorskip("peft")
    clf = TransferClassifier(tiny_bert, strategy="lora", lora_rank=4, max_length=MAX_LENGTH, max_epochs=3, lr=3e-2,
                             random_state=0).fit(SENTENCES, LABELS)
    before = {k: v.clone() for k, v in clf.net_.module_.state_dict().items()}
    onnx = exported(clf, tmp_path)
    np.testing.assert_allclose(onnx.predict_proba(TEXTS), clf.predict_proba(TEXTS), rtol=0, atol=1e-4)
    after = clf.net_.module_.state_dict()
    assert before.keys() == after.keys() and all((before[k] == after[k]).all() for k in before)
    assert any("lora_" in k for k in after)  # the estimator keeps its adapters


# ------------------------------------------------------------------ images
@pytest.fixture(scope="module")
def image_clf():
    X, y = brightness_images(40)
    return TransferClassifier("example_tinycnn", image_size=16, max_epochs=3, random_state=0).fit(X, y)


def _image_inputs(tmp_path):
    rng = np.random.RandomState(1)
    rgb = rng.randint(0, 256, size=(4, 20, 31, 3)).astype(np.uint8)
    gray = rng.randint(0, 256, size=(3, 50, 37)).astype(np.uint8)
    rgba = [rng.randint(0, 256, size=(9, 14, 4)).astype(np.uint8), rng.rand(40, 40, 4)]  # uint8, floats in [0, 1]
    paths = []
    for i, (dtype, mode) in enumerate([(np.uint16, None), (np.uint8, "RGBA"), (np.uint8, "L")]):
        shape = (13, 29) if mode != "RGBA" else (13, 29, 4)
        arr = rng.randint(0, np.iinfo(dtype).max + 1, size=shape).astype(dtype)
        path = tmp_path / f"image{i}.png"
        Image.fromarray(arr).save(path)  # a uint16 array saves as a 16-bit grayscale PNG
        paths.append(str(path))
    pil = [Image.open(p) for p in paths[1:]] + [Image.fromarray(rgb[0]).convert("P")]
    return {"rgb array": rgb, "grayscale array": gray, "RGBA list": rgba, "16-bit, RGBA and L PNG files": paths,
            "PIL images": pil, "float array": rgb / 255.0, "bool array": gray > 128, "CHW list": [rgb[1].transpose(2, 0, 1)]}


def test_image_classifier_matches_torch_on_every_kind_of_image(image_clf, tmp_path):
    onnx = exported(image_clf, tmp_path)
    with Image.open(_image_inputs(tmp_path)["16-bit, RGBA and L PNG files"][0]) as img:
        assert img.mode in ("I;16", "I")  # the file really is 16-bit
    for what, X in _image_inputs(tmp_path).items():
        np.testing.assert_allclose(onnx.predict_proba(X), image_clf.predict_proba(X), rtol=0, atol=1e-3, err_msg=what)
        np.testing.assert_array_equal(onnx.predict(X), image_clf.predict(X), err_msg=what)


def test_image_embedder_and_a_single_image_batch(tmp_path):
    X, _ = brightness_images(6)
    emb = TransferEmbedder("example_tinycnn", image_size=16, feature_cache=None, random_state=0).fit(X)
    onnx = exported(emb, tmp_path, batch_size=4)  # batches of 4 and of 2
    np.testing.assert_allclose(onnx.transform(X), emb.transform(X), rtol=0, atol=1e-3)
    np.testing.assert_allclose(onnx.transform(X[:1]), emb.transform(X[:1]), rtol=0, atol=1e-3)


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic", "nearest"])
def test_resize_gives_torchvision_antialiased_uint8_pixels_exactly(interpolation):
    import torch
    from torchvision.transforms import InterpolationMode, v2

    from sktransfer._onnx.preprocess import resize_shorter_edge

    # torchvision resizes bilinear uint8 images in float on x86 CPUs without AVX2 (then rounds):
    # one grey level apart at most, there.
    native = interpolation != "bilinear" or torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")
    rng = np.random.RandomState(0)
    for h, w in [(12, 12), (100, 80), (37, 250), (8, 9), (36, 36), (300, 301), (5, 400), (1000, 700)]:
        rgb = rng.randint(0, 256, size=(h, w, 3)).astype(np.uint8)
        resize = v2.Resize(36, interpolation=InterpolationMode(interpolation), antialias=True)
        expected = resize(torch.from_numpy(rgb).permute(2, 0, 1)).permute(1, 2, 0).numpy().astype(int)
        got = resize_shorter_edge(rgb, 36, interpolation).astype(int)
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() <= (0 if native else 1), (h, w)


# ------------------------------------------------------------------ tabular
def test_tabular_classifier_and_regressor_match_torch_with_dataframes(tmp_path):
    X, y = tabular()
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(5)])
    clf = TransferClassifier("mlp", max_epochs=5, random_state=0).fit(frame, np.where(y, "yes", "no"))
    onnx = exported(clf, tmp_path, "clf")
    np.testing.assert_allclose(onnx.predict_proba(frame), clf.predict_proba(frame), rtol=0, atol=1e-4)
    np.testing.assert_array_equal(onnx.predict(X), clf.predict(frame))  # a plain array works too
    Y = np.column_stack([X[:, 3] * 3, X[:, 0]])  # two outputs, one in the thousands
    reg = TransferRegressor("mlp", max_epochs=5, random_state=0).fit(X, Y)
    predicted = exported(reg, tmp_path, "reg").predict(X)
    assert predicted.shape == (len(X), 2) and predicted.dtype == np.float64
    np.testing.assert_allclose(predicted, reg.predict(X), rtol=1e-6, atol=1e-4)


def test_a_model_directory_exports_the_graph_of_the_estimator_it_was_saved_from(tmp_path):
    X, _ = tabular()
    reg = TransferRegressor("mlp", max_epochs=3, random_state=0).fit(X, X[:, 0] * 10 + 3)
    reg.save_pretrained(tmp_path / "model")
    from_estimator = exported(reg, tmp_path, "a")
    from_directory = exported(str(tmp_path / "model"), tmp_path, "b")
    assert from_directory.predict(X).shape == (len(X),)  # 1-D y: 1-D predictions
    np.testing.assert_array_equal(from_directory.predict(X), from_estimator.predict(X))
    np.testing.assert_allclose(from_directory.predict(X), load(tmp_path / "model").predict(X), rtol=1e-6, atol=1e-4)
    assert from_directory.config["outputs"] == from_estimator.config["outputs"]
    assert from_directory.config["inputs"] == from_estimator.config["inputs"]


def test_an_image_model_directory_exports_like_its_estimator(image_clf, tmp_path):
    image_clf.save_pretrained(tmp_path / "model")
    X, _ = brightness_images(8)
    a, b = exported(image_clf, tmp_path, "a"), exported(tmp_path / "model", tmp_path, "b")
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert os.path.getsize(tmp_path / "b" / "model.onnx") > 0


# ------------------------------------------------------------------ stages and fitted backbones
def test_chosen_stages_and_a_fitted_estimator_as_backbone_export(tiny_bert, tmp_path):
    text = TransferClassifier(tiny_bert, layers=["layer.0", "layer.1"], max_length=MAX_LENGTH, long_text="chunk",
                              max_epochs=1, random_state=0).fit(SENTENCES, LABELS)
    np.testing.assert_allclose(exported(text, tmp_path, "text").predict_proba(TEXTS), text.predict_proba(TEXTS),
                               rtol=0, atol=1e-4)
    X, y = brightness_images(20)
    image = TransferClassifier("example_tinycnn", layers=[-2, -1], image_size=16, max_epochs=1, random_state=0).fit(X, y)
    np.testing.assert_allclose(exported(image, tmp_path, "image").predict_proba(X), image.predict_proba(X),
                               rtol=0, atol=1e-3)
    reused = TransferRegressor(image, max_epochs=1, random_state=0).fit(X, y * 2.0)
    np.testing.assert_allclose(exported(reused, tmp_path, "reused").predict(X), reused.predict(X), rtol=0, atol=1e-3)
