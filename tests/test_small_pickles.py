"""What a search sends to its workers: estimators and data, never pretrained weights.

A fitted frozen-backbone model pickles to its head plus a reference (spec and weights
hash) to the pretrained backbone, rebuilt on unpickling from the local install.
"""

import copy
import pickle

import numpy as np
import pytest

from sktransfer import TransferClassifier, TransferEmbedder
from sktransfer._nn import backbone_cache as _backbone_cache
from sktransfer.exceptions import WeightsUnavailableError

EFFICIENTNET_BYTES = 13_000_000  # efficientnet_lite0's weights pickled, at least
MINILM_BYTES = 90_000_000  # all-MiniLM-L6-v2's


@pytest.fixture(scope="module")
def frozen_image(digits):
    X, y = digits
    clf = TransferClassifier("efficientnet_lite0", strategy="head", image_size=32, max_epochs=2, random_state=0)
    return clf.fit(X, y), X


def test_an_unfitted_estimator_pickles_to_a_few_kb():
    assert len(pickle.dumps(TransferClassifier("efficientnet_lite0", strategy="head"))) < 4_000


def test_a_fitted_frozen_image_model_pickles_its_head_not_the_backbone(frozen_image):
    clf, X = frozen_image
    data = pickle.dumps(clf)
    assert len(data) < 100_000 < EFFICIENTNET_BYTES
    loaded = pickle.loads(data)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    # Unpickled in the same process: it joins the one shared frozen copy.
    assert loaded.net_.module_.backbone is clf.net_.module_.backbone
    assert not any(p.requires_grad for p in loaded.net_.module_.backbone.parameters())


def test_the_optimizer_holds_only_the_head(frozen_image):
    clf, _ = frozen_image
    in_optimizer = [p for group in clf.net_.optimizer_.param_groups for p in group["params"]]
    assert {id(p) for p in in_optimizer} == {id(p) for p in clf.net_.module_.head.parameters()}


def test_a_fitted_frozen_text_model_pickles_without_the_encoder(sentences):
    X, y = sentences
    clf = TransferClassifier("all-MiniLM-L6-v2", strategy="head", max_epochs=2, random_state=0).fit(X, y)
    data = pickle.dumps(clf)
    # What remains is the head and the tokenizer's vocabulary (about 0.85 MB).
    assert len(data) < 2_000_000 < MINILM_BYTES
    np.testing.assert_array_equal(pickle.loads(data).predict_proba(X), clf.predict_proba(X))


def test_a_fitted_embedder_pickles_without_the_backbone(digits):
    X, _ = digits
    emb = TransferEmbedder("efficientnet_lite0", image_size=32).fit(X)
    data = pickle.dumps(emb)
    assert len(data) < 50_000
    np.testing.assert_array_equal(pickle.loads(data).transform(X), emb.transform(X))


def test_fine_tuned_backbones_are_pickled_whole(digits):
    X, y = digits
    clf = TransferClassifier("efficientnet_lite0", strategy="full", image_size=32, max_epochs=1, random_state=0)
    clf.fit(X[:16], y[:16])
    data = pickle.dumps(clf)
    assert len(data) > EFFICIENTNET_BYTES  # its trained weights are its own
    loaded = pickle.loads(data)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert loaded.net_.module_.backbone is not clf.net_.module_.backbone


def test_a_deep_copy_owns_its_backbone(frozen_image):
    clf, X = frozen_image
    copied = copy.deepcopy(clf)
    assert copied.net_.module_.backbone is not clf.net_.module_.backbone
    np.testing.assert_array_equal(copied.predict_proba(X), clf.predict_proba(X))


def test_changed_weights_on_the_receiving_side_are_refused(frozen_image, monkeypatch):
    clf, _ = frozen_image
    data = pickle.dumps(clf)
    # As on a worker whose install has other weights: its backbones hash differently.
    monkeypatch.setattr(_backbone_cache, "fingerprint_module", lambda module: b"\x00" * 16)
    _backbone_cache.clear()
    try:
        with pytest.raises(WeightsUnavailableError, match="efficientnet_lite0.*hash to 0000.*Install the version"):
            pickle.loads(data)
    finally:
        monkeypatch.undo()
        _backbone_cache.clear()  # forget the backbone built with the fake hash


def test_a_fused_frozen_model_pickles_small(frame):
    X, y = frame
    clf = TransferClassifier(
        {"photo": "efficientnet_lite0", "price": "passthrough"}, strategy="head", image_size=32, max_epochs=2,
        remainder="drop", random_state=0,
    ).fit(X, y)
    data = pickle.dumps(clf)
    assert len(data) < 100_000
    np.testing.assert_array_equal(pickle.loads(data).predict_proba(X), clf.predict_proba(X))
