import numpy as np

import sktransfer
from sktransfer import get_spec
from sktransfer.testing import check_plugin


def test_discovered_through_the_entry_point():
    assert "example_tinycnn" in sktransfer.list_backbones("image")
    spec = get_spec("example_tinycnn")
    assert spec.plugin == "example" and spec.distribution == "sktransfer-example"


def test_check_plugin_passes():
    import sktransfer_example.backbones

    assert [s.name for s in check_plugin(sktransfer_example.backbones)] == ["example_tinycnn"]


def test_fits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    images = np.repeat(X[:40].reshape(-1, 8, 8, 1) / 16.0, 3, axis=3).astype(np.float32)
    clf = sktransfer.TransferClassifier("example_tinycnn", image_size=16, max_epochs=2, random_state=0)
    clf.fit(images, y[:40])
    assert clf.predict(images).shape == (40,)
