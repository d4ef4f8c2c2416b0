"""Probabilities you can trust: CalibratedClassifierCV around a TransferClassifier, with
scikit-learn's temperature scaling and Platt's sigmoid; a frozen backbone's features are
computed once across the calibration folds."""

import numpy as np
import pytest
from _tiny_backbones import CountingCNN, brightness_images
from sklearn.calibration import CalibratedClassifierCV

from sktransfer import TransferClassifier


@pytest.mark.parametrize("method", ["temperature", "sigmoid"])
def test_calibrated_transfer_classifier(method, fresh_feature_cache):
    X, y = brightness_images(60)
    CountingCNN.rows_seen = 0
    calibrated = CalibratedClassifierCV(TransferClassifier(CountingCNN(), strategy="head", random_state=0),
                                        method=method, cv=3).fit(X, y)
    proba = calibrated.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert (calibrated.predict(X) == calibrated.classes_[proba.argmax(axis=1)]).all()
    # Three folds' fits and the calibrators' predictions read one backbone pass over X
    # (plus each fit's two-sample dry run), not one per fold.
    assert CountingCNN.rows_seen <= len(X) + 2 * 3
