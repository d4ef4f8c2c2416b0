"""The estimators inside scikit-learn's tools: clone, Pipeline, cross_val_score, GridSearchCV."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    StratifiedKFold,
    cross_val_score,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from sktransfer import TransferClassifier, TransferRegressor


def test_clone_copies_parameters_untouched():
    clf = TransferClassifier("mlp", lr=0.01, net_params={"iterator_train__num_workers": 0}, class_weight="balanced")
    copy = clone(clf)
    assert copy.get_params() == clf.get_params()
    copy.set_params(lr=0.5)
    assert clf.lr == 0.01


@pytest.mark.slow
def test_grid_search_on_real_minilm(sentences):
    """GridSearchCV over the frozen head's C and fine-tuning's lr on the real pretrained all-MiniLM-L6-v2."""
    X, y = sentences
    search = GridSearchCV(
        make_pipeline(TransferClassifier("all-MiniLM-L6-v2", max_epochs=3, batch_size=12, random_state=0)),
        # The frozen head is solved to convergence (L-BFGS): C is its knob, lr is fine-tuning's.
        [{"transferclassifier__strategy": ["head"], "transferclassifier__C": [1.0, 10.0]},
         {"transferclassifier__strategy": ["full"], "transferclassifier__lr": [3e-3, 3e-2]}],
        cv=StratifiedKFold(2, shuffle=True, random_state=0),
    )
    search.fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    # The pretrained encoder separates unseen sentences after a few steps.
    assert search.best_score_ >= 0.9
    assert search.predict(["what a lovely, joyful film", "a cruel and miserable experience"]).tolist() == [
        "pos",
        "neg",
    ]


@pytest.mark.slow
def test_grid_search_on_torchvision_backbone(digits):
    X, y = digits
    search = GridSearchCV(
        TransferClassifier("mobilenet_v3_small", pretrained=False, image_size=32, max_epochs=2, random_state=0),
        {"strategy": ["head", "full"], "lr": [1e-3, 1e-2]},
        cv=2,
    )
    search.fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    assert search.predict(X[:5]).shape == (5,)


@pytest.mark.slow
def test_grid_search_over_backbones(digits):
    X, y = digits
    search = GridSearchCV(
        TransferClassifier("resnet18", pretrained=False, image_size=32, max_epochs=1, strategy="head", random_state=0),
        {"backbone": ["resnet18", "mobilenet_v3_small"]},
        cv=2,
    )
    search.fit(X, y)
    assert [p["backbone"] for p in search.cv_results_["params"]] == ["resnet18", "mobilenet_v3_small"]


def test_cross_val_score_and_pipeline_on_tabular():
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(FunctionTransformer(np.log1p), TransferClassifier("mlp", max_epochs=20, random_state=0))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.8


@pytest.mark.slow
def test_text_regressor_cross_val(sentences):
    X, labels = sentences
    y = np.where(labels == "pos", 2.0, -2.0)
    scores = cross_val_score(
        TransferRegressor("all-MiniLM-L6-v2", strategy="head", max_epochs=30, lr=1e-2, random_state=0),
        X,
        y,
        cv=KFold(3, shuffle=True, random_state=0),
    )
    assert scores.mean() > 0.5  # R² on held-out sentences
