"""Model files of models fitted with ``init=``: an sktransfer init= model is saved inside
the model's directory (``init/``) and given back as ``init=`` on load; any other is refused."""

import json
import shutil

import numpy as np
import pytest
from _tiny_backbones import Tiny
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import Ridge

from sktransfer import TransferClassifier, TransferRegressor, load
from sktransfer.exceptions import ModelFileError


@pytest.fixture(scope="module")
def data():
    X = np.random.RandomState(0).normal(size=(40, 5))
    return X, np.where(X[:, 0] + X[:, 1] > 0, "up", "down"), X[:, 0] * 10 + X[:, 2] + 100


@pytest.fixture(scope="module")
def classifiers(data):
    X, y, _ = data
    source = TransferClassifier("mlp", max_epochs=3, random_state=0).fit(X, y)
    return source, TransferClassifier("mlp", init=FrozenEstimator(source), max_epochs=3, random_state=1).fit(X, y)


def read_config(path):
    return json.loads((path / "config.json").read_text())


def test_the_init_model_is_saved_inside_and_loaded_back_frozen_as_it_was(classifiers, data, tmp_path):
    source, clf = classifiers
    X, _, _ = data
    path = clf.save_pretrained(tmp_path / "model")
    assert (path / "init" / "model.safetensors").is_file()
    config = read_config(path)
    assert config["format_version"] == 3 and "init" not in config["params"]
    assert config["init"]["path"] == "init" and config["init"]["frozen"] is True
    loaded = load(path)
    assert isinstance(loaded.init, FrozenEstimator) and loaded.init_ is loaded.init
    assert type(loaded.init.estimator) is TransferClassifier
    np.testing.assert_array_equal(loaded.init.predict_proba(X), source.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert read_config(source.save_pretrained(tmp_path / "plain"))["format_version"] == 1  # unchanged without init


def test_a_regressor_chain_round_trips_unfrozen(data, tmp_path):
    X, _, y = data
    first = TransferRegressor("mlp", max_epochs=3, random_state=0).fit(X, y)
    second = TransferRegressor("mlp", init=first, max_epochs=3, random_state=1).fit(X, y)
    third = TransferRegressor("mlp", init=second, max_epochs=3, random_state=2).fit(X, y)
    loaded = load(third.save_pretrained(tmp_path / "chain"))
    assert type(loaded.init) is TransferRegressor and type(loaded.init.init) is TransferRegressor
    assert loaded.init.init.init is None
    np.testing.assert_array_equal(loaded.predict(X), third.predict(X))


def test_overwriting_replaces_or_removes_the_init_directory(classifiers, data, tmp_path):
    source, clf = classifiers
    X, _, _ = data
    path = source.save_pretrained(tmp_path / "model")
    clf.save_pretrained(path, overwrite=True)
    np.testing.assert_array_equal(load(path).predict_proba(X), clf.predict_proba(X))
    source.save_pretrained(path, overwrite=True)
    assert not (path / "init").exists()
    assert load(path).init is None


def test_init_models_a_model_file_cant_hold_are_refused(data, tmp_path):
    X, y, target = data
    with_ridge = TransferRegressor("mlp", init=Ridge().fit(X, target), max_epochs=1, random_state=0).fit(X, target)
    with pytest.raises(ValueError, match="can't store init= a Ridge.*Pickle or joblib"):
        with_ridge.save_pretrained(tmp_path / "ridge")
    module_source = TransferClassifier(Tiny(), max_epochs=1, random_state=0).fit(X, y)
    clf = TransferClassifier("mlp", init=module_source, max_epochs=1, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match=r"The init= model \(TransferClassifier\): save_pretrained needs backbone="):
        clf.save_pretrained(tmp_path / "module")
    assert not (tmp_path / "ridge").exists() and not (tmp_path / "module").exists()


def test_a_missing_or_swapped_init_directory_is_refused(classifiers, data, tmp_path):
    _, clf = classifiers
    X, y, _ = data
    path = clf.save_pretrained(tmp_path / "model")
    shutil.rmtree(path / "init")
    with pytest.raises(ModelFileError, match=r"init/config\.json is missing.*init/ included"):
        load(path)
    TransferClassifier("mlp", max_epochs=1, random_state=7).fit(X, y).save_pretrained(path / "init")
    with pytest.raises(ModelFileError, match="init holds another model than the init= model"):
        load(path)


def test_hub_snapshots_download_the_init_directories():
    from huggingface_hub.utils import filter_repo_objects

    from sktransfer._persistence.hub import MODEL_FILES

    files = ["config.json", "model.safetensors", "README.md", "init/config.json", "init/model.safetensors",
             "init/init/config.json", "init/init/model.safetensors", "train.py", "init/notes.txt"]
    assert list(filter_repo_objects(files, allow_patterns=MODEL_FILES)) == files[:7]
