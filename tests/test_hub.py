"""push_to_hub and sktransfer.load("hf://..."), offline: a recording HfApi, and a local
cache laid out as snapshot_download leaves it."""

import numpy as np
import pytest
from _hub_fakes import COMMIT, RecordingHfApi, cache_model
from sklearn.exceptions import NotFittedError

import sktransfer
from sktransfer import TransferClassifier
from sktransfer.exceptions import ModelFileError


@pytest.fixture(scope="module")
def data():
    X = np.random.RandomState(0).normal(size=(40, 5))
    return X, np.where(X[:, 0] > 0, "up", "down")


@pytest.fixture(scope="module")
def fitted(data):
    return TransferClassifier("mlp", max_epochs=2, random_state=0).fit(*data)


@pytest.fixture
def api(monkeypatch, tmp_path):
    import huggingface_hub

    RecordingHfApi.calls = []
    RecordingHfApi.destination = tmp_path / "uploaded"
    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingHfApi)
    return RecordingHfApi


@pytest.fixture
def cache(monkeypatch, tmp_path):
    """An empty Hub cache, offline."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return tmp_path / "hub"


def test_push_uploads_the_model_directory_and_its_card(fitted, data, api):
    url = fitted.push_to_hub("alice/updown", token="hf_x", private=True, commit_message="first",
                             metrics={"accuracy": 0.75}, metrics_dataset="held-out rows")
    assert url == f"https://huggingface.co/alice/updown/commit/{COMMIT}"
    assert api.calls[0] == ("create_repo", "alice/updown",
                            {"repo_type": "model", "private": True, "exist_ok": True, "token": "hf_x"})
    assert api.calls[1] == ("upload_folder", "alice/updown", {"repo_type": "model", "commit_message": "first"})
    uploaded = api.destination
    assert sorted(p.name for p in uploaded.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    card = (uploaded / "README.md").read_text()
    assert 'sktransfer.load("hf://alice/updown")' in card and "accuracy" in card and "held-out rows" in card
    X = data[0]
    np.testing.assert_array_equal(sktransfer.load(uploaded).predict_proba(X), fitted.predict_proba(X))


def test_push_refuses_an_unfitted_estimator_before_touching_the_hub(api):
    with pytest.raises(NotFittedError, match="not fitted"):
        TransferClassifier("mlp").push_to_hub("alice/updown")
    assert api.calls == []


@pytest.mark.parametrize("repo_id", ["updown", "alice/", "/updown", "alice/up/down", "alice/up down", "", None,
                                     "alice/..x", "-alice/x"])
def test_push_refuses_a_repo_id_that_is_not_owner_slash_name(fitted, api, repo_id):
    with pytest.raises(ValueError, match="owner/name"):
        fitted.push_to_hub(repo_id)
    assert api.calls == []


def test_load_hf_resolves_a_cached_snapshot_and_predicts_identically(fitted, data, cache, tmp_path):
    cache_model(cache, "alice/updown", fitted.save_pretrained(tmp_path / "model"))
    loaded = sktransfer.load("hf://alice/updown")
    np.testing.assert_array_equal(loaded.predict_proba(data[0]), fitted.predict_proba(data[0]))


def test_load_hf_honours_a_pinned_revision(fitted, data, cache, tmp_path):
    other = TransferClassifier("mlp", max_epochs=1, random_state=1).fit(*data)
    old = "f" * 40
    cache_model(cache, "alice/updown", other.save_pretrained(tmp_path / "old"), commit=old, ref=None)
    cache_model(cache, "alice/updown", fitted.save_pretrained(tmp_path / "new"))
    X = data[0]
    np.testing.assert_array_equal(sktransfer.load("hf://alice/updown").predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(sktransfer.load(f"hf://alice/updown@{old}").predict_proba(X), other.predict_proba(X))
    np.testing.assert_array_equal(sktransfer.load("hf://alice/updown", revision=old).predict_proba(X),
                                  other.predict_proba(X))


def test_a_tampered_snapshot_is_refused(fitted, cache, tmp_path):
    snapshot = cache_model(cache, "alice/updown", fitted.save_pretrained(tmp_path / "model"))
    weights = snapshot / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="checksum"):
        sktransfer.load("hf://alice/updown")


def test_offline_and_not_cached_names_the_repo_and_hf_hub_offline(cache):
    with pytest.raises(OSError, match=r"alice/missing.*HF_HUB_OFFLINE"):
        sktransfer.load("hf://alice/missing")


@pytest.mark.parametrize("uri, revision, message", [
    ("hf://updown", None, "hf://owner/name"),
    ("hf://alice/updown@", None, "names no revision"),
    ("hf://alice/updown@v1", "v2", "give one"),
])
def test_bad_hf_uris_say_what_is_expected(uri, revision, message):
    with pytest.raises(ValueError, match=message):
        sktransfer.load(uri, revision=revision)


def test_revision_with_a_local_path_is_refused(tmp_path):
    with pytest.raises(ValueError, match="hf://owner/name"):
        sktransfer.load(tmp_path, revision="main")
