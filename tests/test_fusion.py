"""Fusion: several backbones on one input, and one backbone per DataFrame column."""

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback

from sktransfer import Branch, TransferClassifier, TransferRegressor
from sktransfer._features.stores import memory_store
from sktransfer.exceptions import InvalidInputError

IMAGE = dict(pretrained=False, image_size=16)
TINY = dict(pretrained=False)  # random weights: no download, fast at 16 px


def mapping(**branches):
    return {"photo": Branch("resnet18", strategy="head", **TINY), "caption": "all-MiniLM-L6-v2", "price": "passthrough",
            **branches}


def fused(backbone=None, **params):
    defaults = dict(strategy="head", max_epochs=3, lr=1e-2, random_state=0, image_size=16)
    return TransferClassifier(mapping() if backbone is None else backbone, **{**defaults, **params})


def test_three_columns_fit_and_predict_without_touching_the_frame(frame):
    X, y = frame
    before = pickle.dumps(X)
    clf = fused(max_epochs=10).fit(X, y)
    assert list(clf.feature_names_in_) == ["photo", "caption", "price"] and clf.n_features_in_ == 3
    proba = clf.predict_proba(X)
    assert proba.shape == (24, 2) and np.allclose(proba.sum(axis=1), 1)
    assert clf.score(X, y) >= 0.9  # the caption decides, and MiniLM's frozen features know sentiment
    module = clf.net_.module_
    assert len(module.branches) == 3
    assert module.head.in_features == 512 + 384 + 1  # resnet18, MiniLM, one price column
    assert pickle.dumps(X) == before


def test_a_dict_of_columns_predicts_like_the_frame(frame):
    X, y = frame
    clf = fused().fit(X, y)
    as_dict = {column: X[column].tolist() for column in X.columns}
    np.testing.assert_allclose(clf.predict_proba(as_dict), clf.predict_proba(X), rtol=1e-6)
    np.testing.assert_allclose(clf.predict_proba(X[["price", "caption", "photo"]]), clf.predict_proba(X), rtol=1e-6)


def test_missing_and_unmapped_columns_are_named(frame):
    X, y = frame
    with pytest.raises(InvalidInputError, match=r"columns \['caption'\] are mapped.*missing.*X has \['photo', 'price'\]"):
        fused().fit(X.drop(columns="caption"), y)
    with pytest.raises(InvalidInputError, match=r"columns \['extra'\] that are not mapped.*remainder='drop'"):
        fused().fit(X.assign(extra=1.0), y)
    clf = fused(remainder="drop").fit(X.assign(extra=1.0), y)
    assert list(clf.feature_names_in_) == ["photo", "caption", "price", "extra"]
    with pytest.raises(InvalidInputError, match=r"\['price'\] are mapped.*missing"):
        clf.predict(X.drop(columns="price"))


def test_a_mapping_needs_a_frame_and_sound_branches(frame):
    X, y = frame
    with pytest.raises(TypeError, match="pass a pandas DataFrame"):
        fused().fit(np.zeros((24, 3)), y)
    with pytest.raises(TypeError, match="must be str"):
        fused({0: "mlp"}).fit(X, y)
    with pytest.raises(ValueError, match="names no columns"):
        fused({}).fit(X, y)
    with pytest.raises(TypeError, match="each branch is one backbone"):
        fused({"photo": ["resnet18", "mobilenet_v3_small"]}).fit(X, y)
    with pytest.raises(ValueError, match=r"column 'caption' \(mlp\) holds values that are not numbers.*text backbone"):
        fused(mapping(caption="mlp")).fit(X, y)  # strings to a numeric backbone, named by column
    with pytest.raises(ValueError, match="mixes whole batches"):
        fused(augment="mixup").fit(X, y)
    with pytest.raises(ValueError, match="'gradual' is not supported for fused"):
        fused(strategy="gradual").fit(X, y)


def test_branch_parameters_are_nested_and_clean(frame):
    user_mapping = mapping()
    clf = fused(user_mapping)
    params = clf.get_params()
    assert params["branch__photo__strategy"] == "head" and params["branch__caption__lr"] is None
    clf.set_params(branch__photo__strategy="full", branch__caption__lr=1e-5)
    assert clf.backbone["photo"].strategy == "full" and clf.backbone["caption"].lr == 1e-5
    assert user_mapping["photo"].strategy == "head" and user_mapping["caption"] == "all-MiniLM-L6-v2"  # untouched
    assert clone(clf).get_params()["branch__photo__strategy"] == "full"
    with pytest.raises(ValueError, match=r"<name> one of \['photo', 'caption', 'price'\]"):
        clf.set_params(branch__picture__strategy="full")
    with pytest.raises(ValueError, match="need several backbones"):
        TransferClassifier("mlp").set_params(branch__a__lr=1.0)


def test_grid_search_tunes_a_branch_strategy(frame):
    X, y = frame
    search = GridSearchCV(fused(max_epochs=2), {"branch__photo__strategy": ["head", "full"]}, cv=2).fit(X, y)
    assert [p["branch__photo__strategy"] for p in search.cv_results_["params"]] == ["head", "full"]
    assert search.best_estimator_.backbone["photo"].strategy == search.best_params_["branch__photo__strategy"]


def test_frozen_branches_share_the_cache_with_single_models(digits):
    X, y = digits
    TransferClassifier("resnet18", strategy="head", max_epochs=1, **IMAGE).fit(X, y)
    misses = memory_store().misses
    clf = TransferClassifier(["resnet18"], strategy="head", max_epochs=1, **IMAGE).fit(X, y)
    assert memory_store().misses == misses  # every row of the branch came from the single model's pass
    assert clf.predict(X).shape == (len(X),)


class SnapshotAtStart(Callback):
    """Copies every branch's parameters when training starts."""

    def on_train_begin(self, net, **kwargs):
        net.start_ = {key: [p.detach().clone() for p in branch.parameters()]
                      for key, branch in net.module_.branches.items()}


def moved(net, key) -> bool:
    now = net.module_.branches[key].parameters()
    return any(not torch.equal(a, b) for a, b in zip(net.start_[key], now))


def test_trainable_branches_fine_tune_end_to_end_and_frozen_ones_stay(digits):
    X, y = digits
    clf = TransferClassifier(
        [Branch("resnet18", strategy="head"), Branch("mobilenet_v3_small", strategy="full")],
        max_epochs=2, random_state=0, net_params={"callbacks": [SnapshotAtStart()]}, **IMAGE,
    ).fit(X, y)
    assert clf.net_.module_.frozen_keys == {"b0"}
    assert not moved(clf.net_, "b0") and moved(clf.net_, "b1")


@pytest.mark.parametrize("fusion", ["concat", "gated"])
def test_several_backbones_on_one_input(digits, fusion):
    X, y = digits
    clf = TransferClassifier(["resnet18", "mobilenet_v3_small"], strategy="full", fusion=fusion, max_epochs=2,
                             random_state=0, **IMAGE).fit(X, y)
    module = clf.net_.module_
    assert module.head.in_features == 512 + 576
    assert (module.gates is not None) == (fusion == "gated")
    assert clf.predict_proba(X).shape == (len(X), 4)
    same = TransferClassifier(["resnet18", "mobilenet_v3_small"], strategy="full", fusion=fusion, max_epochs=2,
                              random_state=0, **IMAGE).fit(X, y)
    np.testing.assert_array_equal(same.predict_proba(X), clf.predict_proba(X))  # seeded


def test_a_fused_model_pickles(frame):
    X, y = frame
    clf = fused(mapping(photo=Branch("resnet18", strategy="full", **TINY))).fit(X, y)
    loaded = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), rtol=1e-6)


def test_fused_regression_on_numbers_and_text(sentences):
    texts, labels = sentences
    X = pd.DataFrame({"text": texts, "size": np.arange(len(texts), dtype=float)})
    y = (labels == "pos") * 2.0 + X["size"] * 0.1
    reg = TransferRegressor({"text": "all-MiniLM-L6-v2", "size": "passthrough"}, strategy="head", max_epochs=30,
                            lr=1e-2, random_state=0).fit(X, y)
    assert reg.score(X, y) > 0.5


def test_the_readme_three_column_example_with_real_weights(tmp_path, frame):
    from PIL import Image

    X, y = frame
    rows = list(range(6)) + list(range(18, 24))  # 6 positive and 6 negative captions
    paths = []
    for i in rows:
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray((X["photo"][i] * 15).astype(np.uint8)).save(paths[-1])
    table = pd.DataFrame({"photo": paths, "caption": X["caption"][rows].tolist(), "price": X["price"][rows]})
    labels = y[rows]
    clf = TransferClassifier(
        {"photo": Branch("efficientnet_lite0", strategy="full"), "caption": "all-MiniLM-L6-v2", "price": "passthrough"},
        strategy="head", max_epochs=1, batch_size=6, random_state=0,
    ).fit(table, labels)
    assert clf.predict(table).shape == (12,)
    assert clf.net_.module_.frozen_keys == {"b1", "b2"}  # caption and price: frozen; the photo branch trains


def test_a_fitted_estimator_and_a_name_fused(digits):
    from sklearn.frozen import FrozenEstimator

    X, y = digits
    source = TransferClassifier("resnet18", strategy="full", max_epochs=1, random_state=0, **IMAGE).fit(X, y)
    source_weights = {k: v.clone() for k, v in source.net_.module_.backbone.state_dict().items()}
    clf = TransferClassifier([FrozenEstimator(source), Branch("mobilenet_v3_small", pretrained=False)],
                             strategy="head", image_size=16, max_epochs=2, random_state=0).fit(X, y)
    reused = clf.net_.module_.branches["b0"].backbone.state_dict()
    assert all(torch.equal(reused[k], v) for k, v in source_weights.items())  # the source's fine-tuned backbone
    assert all(torch.equal(source.net_.module_.backbone.state_dict()[k], v) for k, v in source_weights.items())
    assert clf.predict(X).shape == (len(X),)
    assert "branch__branch0__strategy" in clf.get_params()
