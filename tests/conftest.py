import os

# Tests never touch the network: every model and tokenizer comes from local files.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import pytest
from hypothesis import settings

# CI draws the same examples every run (a red run must be reproducible, not a roll of the
# dice); HYPOTHESIS_PROFILE=explore searches ten times more, with fresh examples each run.
settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True, print_blob=True)
settings.register_profile("explore", max_examples=400, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
from sklearn.datasets import load_digits

POSITIVE = [
    "I love this movie", "What a great day", "Fantastic work, well done", "This is wonderful",
    "I am so happy with it", "Brilliant and delightful", "Superb quality, highly recommended",
    "Really enjoyed every minute", "An excellent, heartwarming story", "The best meal I have had",
    "Such a pleasant surprise", "Kind and helpful staff",
]
NEGATIVE = [
    "I hate this", "What a terrible day", "Awful work, badly done", "This is horrible",
    "I am so sad about it", "Dreadful and boring", "Poor quality, do not buy",
    "Really disliked every minute", "A dull, depressing story", "The worst meal I have had",
    "Such an unpleasant shock", "Rude and unhelpful staff",
]


@pytest.fixture(scope="session")
def sentences():
    """24 short sentences with sentiment labels."""
    return POSITIVE + NEGATIVE, np.array(["pos"] * len(POSITIVE) + ["neg"] * len(NEGATIVE))


@pytest.fixture(scope="session")
def digits():
    """48 bundled 8x8 digit images (classes 0-3), float in 0..16."""
    data = load_digits()
    keep = data.target < 4
    return data.images[keep][:48], data.target[keep][:48]


@pytest.fixture(scope="module")
def frame(sentences, digits):
    """24 rows: an 8x8 digit, a sentence and a number; the label is the sentence's sentiment."""
    import pandas as pd

    texts, labels = sentences
    images, _ = digits
    rng = np.random.RandomState(0)
    X = pd.DataFrame({"photo": list(images[:24]), "caption": texts, "price": rng.normal(size=24)})
    return X, labels


@pytest.fixture(scope="module")
def noise_images():
    """40 random 12x12 RGB uint8 images; the label says which half is brighter."""
    from _tiny_backbones import brightness_images

    return brightness_images(40)


@pytest.fixture
def fresh_feature_cache():
    """The process-wide feature store empty and CountingCNN's count at zero, before and after."""
    from _tiny_backbones import CountingCNN

    from sktransfer import clear_caches
    from sktransfer._features.stores import memory_store

    clear_caches("features")
    CountingCNN.rows_seen = 0
    yield memory_store()
    clear_caches("features")
