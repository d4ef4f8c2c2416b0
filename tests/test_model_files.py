"""save_pretrained / sktransfer.load: JSON + safetensors model files that never unpickle."""

import json
import pickle

import numpy as np
import pytest
from _tiny_backbones import Tiny  # tests/ is on sys.path (pytest rootdir import)

import sktransfer
from sktransfer import TransferClassifier, TransferRegressor, load
from sktransfer._persistence.model_files import _config_checksum
from sktransfer.exceptions import ModelFileError


def tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def rewrite_config(path, edit, *, rehash=True):
    """Edit config.json; with ``rehash`` its checksum is recomputed, so that the checks
    behind the checksum are the ones tested."""
    config = json.loads((path / "config.json").read_text())
    edit(config)
    if rehash:
        config["checksum"] = _config_checksum(config)
    (path / "config.json").write_text(json.dumps(config))


def rehash_weights(path):
    import hashlib

    data = (path / "model.safetensors").read_bytes()
    rewrite_config(
        path, lambda c: c["files"]["model.safetensors"].update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    )


@pytest.fixture(scope="module")
def tabular():
    X = np.random.RandomState(0).normal(size=(40, 5))
    y = np.where(X[:, 0] > 0, "up", "down")
    return X, y


@pytest.fixture(scope="module")
def mlp_classifier(tabular):
    X, y = tabular
    return TransferClassifier("mlp", max_epochs=2, random_state=0, class_weight={"down": 1.0, "up": 2.0}).fit(X, y)


@pytest.fixture(scope="module")
def frozen_text(sentences):
    X, y = sentences
    return TransferClassifier("all-MiniLM-L6-v2", strategy="head", max_epochs=3, random_state=0).fit(X, y)


@pytest.fixture
def saved(mlp_classifier, tmp_path):
    return mlp_classifier.save_pretrained(tmp_path / "model")


def test_tabular_classifier_roundtrip(mlp_classifier, tabular, tmp_path):
    X, _ = tabular
    path = mlp_classifier.save_pretrained(tmp_path / "model")
    assert sorted(p.name for p in path.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    loaded = load(path, device="cpu")
    assert type(loaded) is TransferClassifier
    np.testing.assert_array_equal(loaded.predict_proba(X), mlp_classifier.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), mlp_classifier.predict(X))
    assert loaded.classes_.dtype == mlp_classifier.classes_.dtype
    assert loaded.n_features_in_ == 5
    assert loaded.get_params() == mlp_classifier.get_params()
    # A loaded model pickles like a fitted one.
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(loaded)).predict_proba(X), loaded.predict_proba(X))


def test_regressor_roundtrip_keeps_target_scaling_and_feature_names(tmp_path):
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(1)
    X = pd.DataFrame(rng.normal(size=(40, 3)), columns=["a", "b", "c"])
    y = 1000 + 50 * X["a"].to_numpy()
    reg = TransferRegressor("mlp", max_epochs=2, random_state=0).fit(X, y)
    loaded = sktransfer.load(reg.save_pretrained(tmp_path / "reg"))
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))
    assert loaded.predict(X).shape == (40,)
    np.testing.assert_array_equal(loaded.target_mean_, reg.target_mean_)
    np.testing.assert_array_equal(loaded.target_scale_, reg.target_scale_)
    assert list(loaded.feature_names_in_) == ["a", "b", "c"]


def test_frozen_text_classifier_stores_only_the_head(frozen_text, sentences, tmp_path):
    X, _ = sentences
    path = frozen_text.save_pretrained(tmp_path / "text")
    head_bytes = tensor_bytes(frozen_text.net_.module_.head.parameters())
    size = (path / "model.safetensors").stat().st_size
    assert head_bytes <= size <= 1.1 * head_bytes
    config = json.loads((path / "config.json").read_text())
    assert config["backbone"]["stores_weights"] is False
    assert config["backbone"]["pretrained_weights"]["fingerprint"]
    loaded = load(path, device="cpu")
    np.testing.assert_array_equal(loaded.predict_proba(X), frozen_text.predict_proba(X))
    np.testing.assert_array_equal(loaded.classes_, frozen_text.classes_)


def test_changed_pretrained_weights_are_refused(frozen_text, tmp_path):
    path = frozen_text.save_pretrained(tmp_path / "text")
    rewrite_config(path, lambda c: c["backbone"]["pretrained_weights"].update(fingerprint="00" * 16))
    with pytest.raises(ModelFileError, match=r"config\.json.*weights on this machine hash"):
        load(path)


def test_finetuned_image_classifier_roundtrip_holds_the_backbone(digits, tmp_path):
    X, y = digits
    clf = TransferClassifier(
        "resnet18", pretrained=False, image_size=16, layers=[-2, -1], max_epochs=1, random_state=0
    ).fit(X, y)
    path = clf.save_pretrained(tmp_path / "image")
    assert (path / "model.safetensors").stat().st_size >= tensor_bytes(clf.net_.module_.state_dict().values())
    loaded = load(path, device="cpu")
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert loaded.adapter_.preprocessing == clf.adapter_.preprocessing


def test_finetuned_text_classifier_roundtrip(sentences, tmp_path):
    X, y = sentences
    clf = TransferClassifier("all-MiniLM-L6-v2", max_length=32, max_epochs=1, random_state=0).fit(X, y)
    path = clf.save_pretrained(tmp_path / "text")
    assert json.loads((path / "config.json").read_text())["backbone"]["stores_weights"] is True
    loaded = load(path, device="cpu")
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert loaded.adapter_.collate_fn.max_length == 32


def test_model_saved_for_cuda_loads_on_cpu(tabular, tmp_path):
    X, y = tabular
    clf = TransferClassifier("mlp", max_epochs=1, random_state=0).fit(X, y)
    expected = clf.predict_proba(X)
    clf.set_params(device="cuda")  # as if fitted for a GPU; the tensors are saved from CPU copies
    loaded = load(clf.save_pretrained(tmp_path / "m"), device="cpu")
    assert loaded.device == "cuda" and loaded.device_ == "cpu"
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)


# ------------------------------------------------------------------ integrity
def test_truncated_weights_name_the_file(saved):
    data = (saved / "model.safetensors").read_bytes()
    (saved / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match=r"model\.safetensors.*truncated"):
        load(saved)


def test_flipped_byte_in_weights_names_the_file(saved):
    data = bytearray((saved / "model.safetensors").read_bytes())
    data[-5] ^= 0xFF
    (saved / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=r"model\.safetensors"):
        load(saved)


def test_edited_config_names_the_file(saved):
    rewrite_config(saved, lambda c: c["fitted"]["classes_"]["values"].reverse(), rehash=False)
    with pytest.raises(ModelFileError, match=r"config\.json.*edited"):
        load(saved)


def test_damaged_json_names_the_file(saved):
    text = (saved / "config.json").read_text()
    (saved / "config.json").write_text(text[: len(text) // 2])
    with pytest.raises(ModelFileError, match=r"config\.json.*not valid JSON"):
        load(saved)


@pytest.mark.parametrize(
    "key, value",
    [("format_version", 99), ("sktransfer_version", "99.0.0"), ("sktransfer_version", "0.99.0rc1"),
     ("sktransfer_version", sktransfer.__version__ + ".post1")],
)
def test_newer_files_are_refused(saved, key, value):
    rewrite_config(saved, lambda c: c.update({key: value}))
    with pytest.raises(ModelFileError, match="Upgrade sktransfer"):
        load(saved)


@pytest.mark.parametrize("value", ["not a version", "", None])
def test_a_version_that_is_no_version_is_refused_clearly(saved, value):
    rewrite_config(saved, lambda c: c.update(sktransfer_version=value) if value is not None else c.pop("sktransfer_version"))
    with pytest.raises(ModelFileError, match=r"config\.json names sktransfer version .* not a version number"):
        load(saved)


def test_older_and_development_versions_load(saved, tabular):
    rewrite_config(saved, lambda c: c.update(sktransfer_version=sktransfer.__version__ + ".dev3"))
    assert load(saved).predict(tabular[0]).shape == (40,)


def test_missing_backbone_plugin_is_named(saved):
    def edit(config):
        config["backbone"].update(name="timm/not_installed_net", plugin="sktransfer_timm", distribution="sktransfer-timm")
        config["params"]["backbone"] = "timm/not_installed_net"

    rewrite_config(saved, edit)
    with pytest.raises(ModelFileError, match=r"timm/not_installed_net.*sktransfer-timm.*Install that plugin"):
        load(saved)


def test_plugin_version_mismatch_warns(saved, tabular):
    rewrite_config(saved, lambda c: c["backbone"].update(distribution_version="0.0.1"))
    with pytest.warns(UserWarning, match="0.0.1"):
        loaded = load(saved)
    assert loaded.predict(tabular[0]).shape == (40,)


# ------------------------------------------------------------------ refusals
def flip_columns(x):
    return x


def test_module_backbone_is_refused(tabular, tmp_path):
    X, y = tabular
    clf = TransferClassifier(Tiny(), max_epochs=1, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="registered backbone name.*Pickle or joblib"):
        clf.save_pretrained(tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_not_a_model_directory(tmp_path):
    with pytest.raises(ModelFileError, match=r"config\.json is missing"):
        load(tmp_path)


def test_callable_augment_is_refused(digits, tmp_path):
    X, y = digits
    clf = TransferClassifier(
        "resnet18", pretrained=False, image_size=16, strategy="head", augment=flip_columns, max_epochs=1
    ).fit(X[:16], y[:16])
    with pytest.raises(ValueError, match=r"augment=<function flip_columns.*pickle or joblib.*string augment"):
        clf.save_pretrained(tmp_path / "m")


def test_object_labels_are_refused(mlp_classifier, tmp_path):
    import copy

    clf = copy.copy(mlp_classifier)
    clf.classes_ = np.empty(2, dtype=object)  # labels that are tuples
    clf.classes_[:] = [(0, 1), (1, 0)]
    with pytest.raises(ValueError, match=r"class labels.*tuple.*pickle or joblib"):
        clf.save_pretrained(tmp_path / "m")


def test_overwrite_needs_consent(mlp_classifier, saved, tabular):
    with pytest.raises(FileExistsError, match="overwrite=True"):
        mlp_classifier.save_pretrained(saved)
    mlp_classifier.save_pretrained(saved, overwrite=True)
    np.testing.assert_array_equal(load(saved).predict(tabular[0]), mlp_classifier.predict(tabular[0]))


# ------------------------------------------------------------------ no unpickling
class Marker:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("rehash", [False, True])
def test_pickled_weights_are_never_unpickled(saved, tmp_path, rehash):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(Marker(str(marker)))
    (saved / "model.safetensors").write_bytes(payload)
    rewrite_config(saved, lambda c: c["params"].update(augment=payload.decode("latin-1")), rehash=rehash)
    if rehash:
        rehash_weights(saved)
    with pytest.raises(ModelFileError, match=r"model\.safetensors is not a readable" if rehash else r"config\.json"):
        load(saved)
    assert not marker.exists()


def test_pickled_parameter_is_refused(saved, tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(Marker(str(marker)))
    rewrite_config(saved, lambda c: c["params"].update(augment=payload.decode("latin-1")))
    with pytest.raises(ModelFileError, match=r"config\.json.*augment"):
        load(saved)
    assert not marker.exists()
