"""Model files of fused models (several backbones) and of TransferEmbedder: the same
JSON + safetensors files, round trips that predict identically, and the same refusals."""

import json

import numpy as np
import pytest
from _tiny_backbones import Tiny  # tests/ is on sys.path (pytest rootdir import)
from safetensors import safe_open
from test_model_files import rehash_weights, rewrite_config

from sktransfer import Branch, TransferClassifier, TransferEmbedder, load
from sktransfer._features.stores import memory_store
from sktransfer.exceptions import ModelFileError

MINILM = "all-MiniLM-L6-v2"


def tensor_names(path):
    with safe_open(str(path / "model.safetensors"), framework="pt") as f:
        return set(f.keys())


def params_as_text(estimator):
    """Parameters compared by their repr: Branch objects have no ``__eq__``."""
    return repr(sorted(estimator.get_params(deep=False).items(), key=lambda item: item[0]))


# A loaded model must compute its features, not find the saved model's in the cache.
pytestmark = pytest.mark.usefixtures("fresh_feature_cache")


@pytest.fixture(scope="module")
def table():
    X = np.random.RandomState(0).normal(size=(40, 5))
    return X, np.where(X[:, 0] > 0, "up", "down")


@pytest.fixture(scope="module")
def list_fused(table):
    X, y = table
    backbone = ["mlp", Branch("mlp", strategy="head", lr=1e-2), "passthrough"]
    return TransferClassifier(backbone, max_epochs=2, random_state=0).fit(X, y)


@pytest.fixture(scope="module")
def frozen_caption(frame):
    """A frozen pretrained MiniLM branch beside a trainable passthrough column."""
    X, y = frame
    backbone = {"caption": Branch(MINILM, strategy="head"), "price": "passthrough"}
    return TransferClassifier(backbone, max_epochs=2, lr=1e-2, random_state=0).fit(X[["caption", "price"]], y)


# ------------------------------------------------------------------ fused round trips
def test_dict_of_columns_roundtrip_predicts_identically(frame, tmp_path):
    X, y = frame
    X = X[["photo", "price"]]
    backbone = {"photo": Branch("resnet18", pretrained=False, strategy="partial", trainable_blocks=1),
                "price": "passthrough"}
    clf = TransferClassifier(backbone, fusion="gated", image_size=16, max_epochs=1, random_state=0).fit(X, y)
    path = clf.save_pretrained(tmp_path / "fused")
    config = json.loads((path / "config.json").read_text())
    assert config["format_version"] == 2
    assert [(b["name"], b["column"]) for b in config["branches"]] == [("photo", "photo"), ("price", "price")]
    assert [b["backbone"]["stores_weights"] for b in config["branches"]] == [True, True]
    # The Branch is a tagged object of its parameters, never a pickle.
    assert config["params"]["backbone"]["dict"][0][1]["branch"]["strategy"] == "partial"

    loaded = load(path, device="cpu")
    assert type(loaded) is TransferClassifier
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict_proba(X[["price", "photo"]]), clf.predict_proba(X))
    assert isinstance(loaded.backbone["photo"], Branch) and loaded.backbone["photo"].trainable_blocks == 1
    assert params_as_text(loaded) == params_as_text(clf)
    assert list(loaded.feature_names_in_) == ["photo", "price"]
    assert loaded.adapter_.branches[0].adapter.preprocessing == clf.adapter_.branches[0].adapter.preprocessing


def test_list_fusion_roundtrip_predicts_identically(list_fused, table, tmp_path):
    X, _ = table
    path = list_fused.save_pretrained(tmp_path / "list")
    config = json.loads((path / "config.json").read_text())
    assert [b["name"] for b in config["branches"]] == ["mlp", "mlp_2", "passthrough"]
    loaded = load(path, device="cpu")
    np.testing.assert_array_equal(loaded.predict_proba(X), list_fused.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), list_fused.predict(X))
    assert params_as_text(loaded) == params_as_text(list_fused)
    # The frozen branch is still fed precomputed features, and nothing but the head trains.
    assert loaded.net_.module_.frozen_keys == list_fused.net_.module_.frozen_keys == {"b1"}
    assert not any(p.requires_grad for p in loaded.net_.module_.branches["b1"].parameters())


def test_frozen_pretrained_branch_is_referenced_not_stored(frozen_caption, frame, tmp_path):
    X, _ = frame
    X = X[["caption", "price"]]
    path = frozen_caption.save_pretrained(tmp_path / "frozen")
    names = tensor_names(path)
    assert names and not any(name.startswith("branches.b0.backbone.") for name in names)
    trainable = sum(t.numel() * t.element_size() for t in frozen_caption.net_.module_.head.parameters())
    assert (path / "model.safetensors").stat().st_size < trainable + 64 * 1024  # MiniLM alone is ~90 MB
    record = json.loads((path / "config.json").read_text())["branches"][0]["backbone"]
    assert record["stores_weights"] is False and record["pretrained_weights"]["fingerprint"]

    expected = frozen_caption.predict_proba(X)
    memory_store().clear()
    loaded = load(path, device="cpu")
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)
    assert loaded.adapter_.branches[0].fingerprint == frozen_caption.adapter_.branches[0].fingerprint


def test_changed_pretrained_branch_weights_are_refused(frozen_caption, tmp_path):
    path = frozen_caption.save_pretrained(tmp_path / "frozen")
    rewrite_config(path, lambda c: c["branches"][0]["backbone"]["pretrained_weights"].update(fingerprint="00" * 16))
    with pytest.raises(ModelFileError, match=r"config\.json.*weights on this machine hash"):
        load(path)


# ------------------------------------------------------------------ fused integrity
def test_tampered_fused_weights_are_refused(list_fused, tmp_path):
    path = list_fused.save_pretrained(tmp_path / "list")
    data = bytearray((path / "model.safetensors").read_bytes())
    data[-5] ^= 0xFF
    (path / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=r"model\.safetensors"):
        load(path)


def test_tampered_fused_config_is_refused(list_fused, tmp_path):
    path = list_fused.save_pretrained(tmp_path / "list")
    rewrite_config(path, lambda c: c["branches"][0]["backbone"].update(feature_dim=3), rehash=False)
    with pytest.raises(ModelFileError, match=r"config\.json.*edited"):
        load(path)
    # Behind the checksum too: branches that don't match the backbone parameter, a
    # Branch with an unknown parameter, tensors that don't fit.
    rewrite_config(path, lambda c: c["branches"].reverse())
    with pytest.raises(ModelFileError, match="branches differ"):
        load(path)
    rewrite_config(path, lambda c: c["branches"].reverse())
    rewrite_config(path, lambda c: c["params"]["backbone"][1]["branch"].update(evil=1))
    with pytest.raises(ModelFileError, match="evil"):
        load(path)
    rewrite_config(path, lambda c: c["params"]["backbone"][1]["branch"].pop("evil"))
    rewrite_config(path, lambda c: c["branches"][2]["backbone"].update(feature_dim=6))
    with pytest.raises(ModelFileError, match=r"model\.safetensors does not fit"):
        load(path)


def test_stored_tensors_for_a_referenced_backbone_are_refused(frozen_caption, tmp_path):
    from safetensors.torch import load_file, save_file

    path = frozen_caption.save_pretrained(tmp_path / "frozen")
    tensors = load_file(str(path / "model.safetensors"))
    tensors["branches.b0.backbone.pooler.dense.bias"] = tensors["head.bias"].new_zeros(384)
    save_file(tensors, str(path / "model.safetensors"))
    rehash_weights(path)
    with pytest.raises(ModelFileError, match="not stored"):
        load(path)


# ------------------------------------------------------------------ refusals
def test_module_branch_is_refused(table, tmp_path):
    X, y = table
    clf = TransferClassifier(["mlp", Tiny()], max_epochs=1, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match=r"registered backbone name.*Tiny module \(branch 'branch1'\).*Pickle or joblib"):
        clf.save_pretrained(tmp_path / "m")
    assert not (tmp_path / "m").exists()
    embedder = TransferEmbedder(Tiny()).fit(X)
    with pytest.raises(ValueError, match=r"TransferEmbedder was given a Tiny module.*Pickle or joblib"):
        embedder.save_pretrained(tmp_path / "e")


def test_fitted_estimator_branch_is_refused(table, tmp_path):
    X, y = table
    source = TransferClassifier("mlp", max_epochs=1, random_state=0).fit(X, y)
    clf = TransferClassifier([source, "passthrough"], max_epochs=1, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match=r"reuses a fitted TransferClassifier's backbone \(branch 'branch0'\)"):
        clf.save_pretrained(tmp_path / "m")


def test_fused_overwrite_needs_consent(list_fused, table, tmp_path):
    path = list_fused.save_pretrained(tmp_path / "list")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        list_fused.save_pretrained(path)
    list_fused.save_pretrained(path, overwrite=True)
    np.testing.assert_array_equal(load(path).predict(table[0]), list_fused.predict(table[0]))


# ------------------------------------------------------------------ embedder
def test_embedder_roundtrip_stores_random_weights(table, tmp_path):
    X, _ = table
    embedder = TransferEmbedder("mlp", random_state=0).fit(X)
    path = embedder.save_pretrained(tmp_path / "emb")
    assert json.loads((path / "config.json").read_text())["backbone"]["stores_weights"] is True
    loaded = load(path, device="cpu")
    assert type(loaded) is TransferEmbedder
    np.testing.assert_array_equal(loaded.transform(X), embedder.transform(X))
    np.testing.assert_array_equal(loaded.get_feature_names_out(), embedder.get_feature_names_out())
    assert loaded.n_features_in_ == 5 and loaded.n_features_out_ == embedder.n_features_out_
    assert loaded.get_params() == embedder.get_params()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        embedder.save_pretrained(path)


def test_embedder_of_columns_roundtrip(frame, tmp_path):
    X, _ = frame
    X = X[["caption", "price"]]
    embedder = TransferEmbedder({"caption": Branch(MINILM, layers=[-2]), "price": "passthrough"}).fit(X)
    expected = embedder.transform(X)
    path = embedder.save_pretrained(tmp_path / "emb")
    assert (path / "model.safetensors").stat().st_size < 64 * 1024  # MiniLM is referenced, not stored
    memory_store().clear()
    loaded = load(path, device="cpu")
    np.testing.assert_array_equal(loaded.transform(X), expected)
    np.testing.assert_array_equal(loaded.get_feature_names_out(), embedder.get_feature_names_out())
    assert [(name, column) for name, column, _ in loaded.branches_] == [("caption", "caption"), ("price", "price")]
    assert loaded.branches_[0][2].layers_ == embedder.branches_[0][2].layers_
    assert list(loaded.feature_names_in_) == ["caption", "price"]
    assert params_as_text(loaded) == params_as_text(embedder)


def test_embedder_of_a_list_roundtrip(table, tmp_path):
    X, _ = table
    embedder = TransferEmbedder(["mlp", "passthrough"], random_state=0).fit(X)
    loaded = load(embedder.save_pretrained(tmp_path / "emb"), device="cpu")
    np.testing.assert_array_equal(loaded.transform(X), embedder.transform(X))
    np.testing.assert_array_equal(loaded.get_feature_names_out(), embedder.get_feature_names_out())


def test_tampered_embedder_is_refused(table, tmp_path):
    X, _ = table
    path = TransferEmbedder("mlp", random_state=0).fit(X).save_pretrained(tmp_path / "emb")
    data = bytearray((path / "model.safetensors").read_bytes())
    data[-5] ^= 0xFF
    (path / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=r"model\.safetensors"):
        load(path)


def test_cli_refuses_an_embedder_to_predict_with(table, tmp_path):
    from sktransfer._cli.commands import load_predictor

    path = TransferEmbedder("mlp", random_state=0).fit(table[0]).save_pretrained(tmp_path / "emb")
    with pytest.raises(ValueError, match="holds a TransferEmbedder.*predicts nothing"):
        load_predictor(path)
