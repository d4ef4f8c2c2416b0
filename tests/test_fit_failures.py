"""A failed fit never looks like success: Ctrl-C, a diverging loss and NaN outputs stop
with an error and leave the estimator as it was; user callbacks join ours."""

import json
import signal

import numpy as np
import pytest
import torch
from sklearn.exceptions import FitFailedWarning
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback

from sktransfer import TransferClassifier, TransferRegressor
from sktransfer.exceptions import NonFiniteOutputError, TrainingDivergedError

X_TAB = np.random.RandomState(0).normal(size=(40, 3))
Y_CLS = np.array([0, 1] * 20)


class InterruptAt(Callback):
    """Ctrl-C at the start of one epoch: the process sends itself SIGINT, as a terminal does."""

    def __init__(self, epoch=2):
        self.epoch = epoch

    def on_epoch_begin(self, net, **kwargs):
        if len(net.history) == self.epoch:
            signal.raise_signal(signal.SIGINT)


class StopAt(Callback):
    """Stops training the skorch way, as EarlyStopping does: a KeyboardInterrupt, no signal."""

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == 2:
            raise KeyboardInterrupt


class CountEpochs(Callback):
    def initialize(self):
        self.epochs_ = 0
        return self

    def on_epoch_end(self, net, **kwargs):
        self.epochs_ += 1


def fitted_mlp(**params):
    return TransferClassifier("mlp", **{"max_epochs": 3, "random_state": 0, **params}).fit(X_TAB, Y_CLS)


def test_ctrl_c_reraises_and_restores_the_previous_model():
    clf = fitted_mlp()
    before = clf.predict_proba(X_TAB)
    net_before = clf.net_
    clf.set_params(max_epochs=5, net_params={"callbacks": [InterruptAt(epoch=3)]})
    with pytest.raises(KeyboardInterrupt, match=r"interrupted after 2 of 5 epoch\(s\).*left as it was"):
        clf.fit(X_TAB, Y_CLS)
    assert clf.net_ is net_before and clf.max_epochs == 5  # parameters are the user's, the model the old one
    np.testing.assert_array_equal(clf.predict_proba(X_TAB), before)


def test_ctrl_c_on_a_fresh_estimator_leaves_it_unfitted():
    clf = TransferClassifier("mlp", max_epochs=3, net_params={"callbacks": [InterruptAt(epoch=1)]})
    with pytest.raises(KeyboardInterrupt, match="after 0 of 3"):
        clf.fit(X_TAB, Y_CLS)
    assert not hasattr(clf, "net_") and not hasattr(clf, "classes_")


def test_a_callback_may_still_stop_training_early():
    clf = fitted_mlp(max_epochs=5, net_params={"callbacks": [StopAt()]})
    assert len(clf.net_.history) == 2
    assert np.isfinite(clf.predict_proba(X_TAB)).all()


def test_grid_search_never_scores_an_interrupted_candidate():
    search = GridSearchCV(
        TransferClassifier("mlp", max_epochs=3, random_state=0),
        {"net_params": [None, {"callbacks": [InterruptAt(epoch=2)]}]},
        cv=2,
    )
    with pytest.raises(KeyboardInterrupt):
        search.fit(X_TAB, Y_CLS)
    assert not hasattr(search, "cv_results_")


@pytest.mark.parametrize("Estimator, y", [(TransferClassifier, Y_CLS), (TransferRegressor, X_TAB[:, 0])])
def test_diverging_loss_stops_with_the_epoch_and_the_causes(Estimator, y):
    previous = Estimator("mlp", max_epochs=2, random_state=0).fit(X_TAB, y)
    before = previous.predict(X_TAB)
    net_before = previous.net_
    previous.set_params(lr=1e30, optimizer="sgd", max_epochs=5, warmup_fraction=0.0)
    with pytest.raises(TrainingDivergedError, match=r"loss became (nan|inf) in epoch \d+ \(batch \d+\).*learning rate"):
        previous.fit(X_TAB, y)
    assert previous.net_ is net_before
    np.testing.assert_array_equal(previous.predict(X_TAB), before)


def test_a_diverged_fit_is_a_failed_candidate_in_a_search():
    search = GridSearchCV(
        TransferClassifier("mlp", max_epochs=2, optimizer="sgd", warmup_fraction=0.0, random_state=0),
        {"lr": [1e-2, 1e30]},
        cv=2,
        error_score=np.nan,
    )
    with pytest.warns(FitFailedWarning, match="TrainingDivergedError"), pytest.warns(UserWarning, match="non-finite"):
        search.fit(X_TAB, Y_CLS)
    scores = search.cv_results_["mean_test_score"]
    assert np.isfinite(scores[0]) and np.isnan(scores[1])
    assert search.best_params_ == {"lr": 1e-2}


class SqrtFeatures(torch.nn.Module):
    """Finite on the training range, NaN below it: a model that breaks on new data."""

    def forward(self, x):
        return torch.sqrt(x + 10.0)


def test_nan_outputs_at_predict_time_are_refused():
    clf = TransferClassifier(SqrtFeatures(), max_epochs=1, random_state=0).fit(X_TAB, Y_CLS)
    X_new = X_TAB[:4].copy()
    X_new[2, 1] = -50.0  # far below the training range: sqrt of a negative number
    with pytest.raises(NonFiniteOutputError, match=r"1 of 4 sample\(s\) \(rows 2\).*extreme"):
        clf.predict_proba(X_new)
    np.testing.assert_array_equal(X_new[2], [X_TAB[2, 0], -50.0, X_TAB[2, 2]])


def test_user_callbacks_are_added_to_ours():
    counter = CountEpochs()
    clf = fitted_mlp(patience=5, net_params={"callbacks": [counter, ("second_counter", CountEpochs())]})
    names = dict(clf.net_.callbacks_)
    assert {"lr_schedule", "early_stopping", "finite_loss", "CountEpochs", "second_counter"} <= set(names)
    assert names["CountEpochs"].epochs_ == names["second_counter"].epochs_ == len(clf.net_.history)
    assert not hasattr(counter, "epochs_")  # the caller's object is copied, never changed
    # The schedule still ran: the learning rate decayed from its peak.
    assert clf.net_.optimizer_.param_groups[0]["lr"] < clf.lr


def test_a_user_callback_named_like_ours_replaces_it():
    clf = fitted_mlp(net_params={"callbacks": [("lr_schedule", CountEpochs())]})
    assert isinstance(dict(clf.net_.callbacks_)["lr_schedule"], CountEpochs)
    assert clf.net_.optimizer_.param_groups[0]["lr"] == pytest.approx(clf.lr)  # no schedule any more


def test_callbacks_must_be_a_list():
    with pytest.raises(TypeError, match=r"net_params\['callbacks'\] must be a list"):
        TransferClassifier("mlp", net_params={"callbacks": CountEpochs()}).fit(X_TAB, Y_CLS)


def test_checkpoint_keeps_the_weights_of_an_interrupted_fit(tmp_path):
    from skorch.callbacks import Checkpoint

    checkpoint = Checkpoint(dirname=str(tmp_path), monitor=None)  # the error message's advice
    clf = TransferClassifier("mlp", max_epochs=5, random_state=0,
                             net_params={"callbacks": [checkpoint, InterruptAt(epoch=4)]})
    with pytest.raises(KeyboardInterrupt, match="after 3 of 5.*Checkpoint"):
        clf.fit(X_TAB, Y_CLS)
    # The weights of epoch 3 load into a model of the same shape.
    done = fitted_mlp(max_epochs=1)
    done.net_.load_params(f_params=str(tmp_path / "params.pt"))
    assert len(json.loads((tmp_path / "history.json").read_text())) == 3
    assert not np.array_equal(done.predict_proba(X_TAB), fitted_mlp(max_epochs=1).predict_proba(X_TAB))
