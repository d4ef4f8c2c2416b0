"""A metric in the epoch log (skorch EpochScoring on our dict targets), early stopping on it,
and the training history kept by model files and pickles."""

import pickle

import numpy as np
import pytest
from skorch.callbacks import EpochScoring

from sktransfer import TransferClassifier, TransferRegressor, load


def data(n=80, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 4))
    return X, np.where(X[:, 0] > 0, "a", "b")


def test_classifier_logs_validation_accuracy_equal_to_sklearn():
    from sklearn.metrics import accuracy_score

    X, y = data()
    clf = TransferClassifier("mlp", max_epochs=3, validation_fraction=0.25, random_state=0).fit(X, y)
    history = clf.net_.history
    assert len(history[:, "valid_acc"]) == 3
    # The last epoch's score is the fitted model's accuracy on the held-out rows.
    split = clf.net_.train_split
    assert split is not None
    score = history[-1, "valid_acc"]
    assert 0 <= score <= 1
    # Recompute on the same split: skorch's ValidSplit with our random state is deterministic.
    from skorch.dataset import ValidSplit

    idx = np.arange(len(y))
    _, valid_idx = ValidSplit(0.25, stratified=True, random_state=split.random_state)(idx, y)
    rows = np.asarray(valid_idx.indices)
    assert score == pytest.approx(accuracy_score(y[rows], clf.predict(X[rows])))


def test_unbalanced_classes_log_macro_f1_and_regressors_r2():
    X, _ = data(90)
    y = np.array(["rare"] * 20 + ["common"] * 70)
    clf = TransferClassifier("mlp", max_epochs=2, validation_fraction=0.3, random_state=0).fit(X, y)
    assert "valid_f1_macro" in clf.net_.history[-1] and "valid_acc" not in clf.net_.history[-1]
    reg = TransferRegressor("mlp", max_epochs=2, validation_fraction=0.25, random_state=0).fit(X, X[:, 0] * 3 + 1)
    assert "valid_r2" in reg.net_.history[-1]
    assert "valid_r2" not in TransferRegressor("mlp", max_epochs=1, random_state=0).fit(X, X[:, 0]).net_.history[-1]


def test_early_stopping_on_the_score():
    X, y = data()
    clf = TransferClassifier("mlp", max_epochs=30, patience=2, early_stopping_metric="score", lr=1e-5,
                             random_state=0).fit(X, y)
    stopping = dict(clf.net_.callbacks_)["early_stopping"]
    assert stopping.monitor == "valid_acc" and stopping.lower_is_better is False
    assert len(clf.net_.history) < 30  # a flat accuracy at lr=1e-5 stops early
    with pytest.raises(ValueError, match="early_stopping_metric"):
        TransferClassifier("mlp", max_epochs=2, early_stopping_metric="accuracy").fit(X, y)
    with pytest.raises(ValueError, match="validation metric"):
        TransferClassifier("mlp", max_epochs=2, patience=1, early_stopping_metric="score").fit(X, np.eye(2)[
            (y == "a").astype(int)].astype(int))


def test_a_users_epoch_scoring_reads_dict_targets():
    X, y = data()
    clf = TransferClassifier("mlp", max_epochs=2, validation_fraction=0.25, random_state=0,
                             net_params={"callbacks": [EpochScoring("accuracy", name="mine")]}).fit(X, y)
    np.testing.assert_allclose(clf.net_.history[:, "mine"], clf.net_.history[:, "valid_acc"])


def test_history_survives_model_files_and_pickles(tmp_path):
    X, y = data()
    clf = TransferClassifier("mlp", max_epochs=3, validation_fraction=0.25, random_state=0).fit(X, y)
    clf.save_pretrained(tmp_path / "m")
    loaded = load(tmp_path / "m")
    for model in (loaded, pickle.loads(pickle.dumps(clf))):
        assert model.net_.history[:, "valid_acc"] == pytest.approx(clf.net_.history[:, "valid_acc"])
        assert model.net_.history[:, "train_loss"] == pytest.approx(clf.net_.history[:, "train_loss"])
    from sktransfer.report import html_report

    with open(html_report(loaded, X, y, tmp_path / "r.html"), encoding="utf-8") as f:
        page = f.read()
    assert "Learning curves" in page and "no training history" not in page
