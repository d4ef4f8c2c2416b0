"""Fine-tuning recipes: schedules, layer-wise decay, gradual unfreezing, smoothing, mixing."""


import numpy as np
import pytest
import torch

from sktransfer import TransferClassifier, TransferRegressor
from sktransfer._inputs import BatchMix
from sktransfer._training.callbacks import make_schedule


def _lrs(optimizer_lr=1.0, kind="cosine", total=100, warmup=0.1):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=optimizer_lr)
    scheduler = make_schedule(kind, opt, total, warmup)
    lrs = []
    for _ in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    return lrs


def test_warmup_cosine_schedule_shape():
    s = _lrs(kind="cosine", total=100, warmup=0.1)
    assert s[0] == pytest.approx(0.1)  # warming up: the first step already trains, at lr / warmup steps
    assert s[9] == pytest.approx(1.0)
    assert s[55] == pytest.approx(0.5, abs=0.01)
    assert s[99] == pytest.approx(0.0, abs=1e-3)
    assert all(a >= b for a, b in zip(s[10:], s[11:]))  # monotone decay after warmup


def test_onecycle_and_constant_schedule_shapes():
    s = _lrs(kind="onecycle", total=100)
    assert s[0] == pytest.approx(1 / 25)
    assert max(s) == pytest.approx(1.0, abs=1e-3) and 25 <= int(np.argmax(s)) <= 35
    assert s[-1] < 1e-3
    c = _lrs(kind="constant", total=100, warmup=0.2)
    assert c[0] < 0.1 and c[20] == 1.0 and c[99] == 1.0


def test_schedule_length_follows_net_params():
    """The step count is read from skorch's real iterator: drop_last or another batch size can't desync it."""
    X = np.random.RandomState(0).normal(size=(70, 4))
    clf = TransferClassifier(
        "mlp", max_epochs=3, batch_size=16, lr=0.01, random_state=0, lr_schedule="onecycle",
        net_params={"iterator_train__drop_last": True, "iterator_train__batch_size": 32},
    ).fit(X, X[:, 0] > 0)
    lrs = [b["event_lr"] for epoch in clf.net_.history for b in epoch["batches"]]
    assert len(lrs) == 6  # 70 // 32 = 2 batches per epoch, 3 epochs; OneCycleLR raises on a step too many
    assert dict(clf.net_.callbacks_)["lr_schedule"].total_steps_ == 6


def test_fit_follows_the_schedule_batch_by_batch():
    X = np.random.RandomState(0).normal(size=(64, 4))
    clf = TransferClassifier("mlp", max_epochs=4, batch_size=16, lr=0.01, random_state=0).fit(X, X[:, 0] > 0)
    lrs = [lr for epoch in clf.net_.history for lr in (b["event_lr"] for b in epoch["batches"])]
    assert len(lrs) == 16  # 4 epochs x 4 batches, one step each
    assert lrs[0] < 0.01 and max(lrs) == pytest.approx(0.01, rel=1e-6)
    assert lrs[-1] < 0.001  # cosine decay to (nearly) zero
    assert clf.net_.optimizer_.param_groups[0]["initial_lr"] == 0.01


def test_layer_wise_lr_decay(digits):
    X, y = digits
    clf = TransferClassifier(
        "resnet18", pretrained=False, image_size=16, max_epochs=1, lr=1e-2, backbone_lr=1e-3, layer_decay=0.5,
    ).fit(X, y)
    groups = clf.net_.optimizer_.param_groups
    lr_of = {}
    names = dict((id(p), n) for n, p in clf.net_.module_.named_parameters())
    for g in groups:
        for p in g["params"]:
            lr_of[names[id(p)]] = g["initial_lr"]
    assert lr_of["head.weight"] == pytest.approx(1e-2)
    assert lr_of["backbone.layer4.0.conv1.weight"] == pytest.approx(1e-3)
    assert lr_of["backbone.layer3.0.conv1.weight"] == pytest.approx(5e-4)
    assert lr_of["backbone.layer1.0.conv1.weight"] == pytest.approx(1e-3 * 0.5**3)
    assert lr_of["backbone.conv1.weight"] == pytest.approx(1e-3 * 0.5**5)


def test_gradual_unfreezing_opens_one_block_per_epoch(digits):
    X, y = digits
    clf = TransferClassifier(
        "resnet18", pretrained=False, strategy="gradual", image_size=32, max_epochs=3, random_state=0
    ).fit(X, y)
    assert list(clf.net_.history[:, "unfrozen_blocks"]) == [0, 1, 2]
    backbone = clf.net_.module_.backbone
    assert all(p.requires_grad for p in backbone.layer4.parameters())
    assert all(p.requires_grad for p in backbone.layer3.parameters())
    assert not any(p.requires_grad for p in backbone.layer2.parameters())
    assert backbone.layer2[0].bn1.num_batches_tracked == 0  # frozen BN never moved
    assert backbone.layer3[0].bn1.num_batches_tracked > 0  # trained from epoch 3 on
    assert backbone.layer4[0].bn1.num_batches_tracked > backbone.layer3[0].bn1.num_batches_tracked


def test_label_smoothing_makes_predictions_less_confident():
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=200, n_features=5, n_informative=4, n_redundant=0, random_state=0)
    sharp = TransferClassifier("mlp", max_epochs=30, random_state=0).fit(X, y)
    smooth = TransferClassifier("mlp", max_epochs=30, label_smoothing=0.4, random_state=0).fit(X, y)
    assert smooth.net_.criterion_.label_smoothing == 0.4
    assert smooth.predict_proba(X).max(axis=1).mean() < sharp.predict_proba(X).max(axis=1).mean() - 0.05


@pytest.mark.parametrize("kind", ["mixup", "cutmix"])
def test_batch_mixing_gives_soft_targets(kind):
    images = torch.rand(8, 3, 16, 16)
    batch = [(images[i], {"target": torch.tensor(i % 3), "weight": torch.tensor(1.0)}) for i in range(8)]
    mixed_images, target = BatchMix(torch.utils.data.default_collate, kind, num_classes=3)(batch)
    assert mixed_images.shape == images.shape
    assert target["target"].shape == (8, 3) and torch.allclose(target["target"].sum(dim=1), torch.ones(8))
    assert target["weight"].shape == (8,)


@pytest.mark.parametrize("kind", ["mixup", "cutmix"])
def test_fit_with_batch_mixing(kind, digits):
    X, y = digits
    clf = TransferClassifier("resnet18", pretrained=False, augment=kind, image_size=32, max_epochs=2).fit(X, y)
    assert np.all(np.isfinite(clf.net_.history[:, "train_loss"]))
    assert clf.predict(X).shape == (len(X),)


def test_batch_mixing_is_for_image_classifiers_only():
    X = np.random.RandomState(0).normal(size=(20, 3))
    with pytest.raises(ValueError, match="defined for image and text backbones only.*Use augment=None"):
        TransferClassifier("mlp", augment="mixup").fit(X, X[:, 0] > 0)
    with pytest.raises(ValueError, match="classifiers only"):
        TransferRegressor("resnet18", pretrained=False, augment="mixup").fit(np.zeros((4, 8, 8)), [1.0, 2, 3, 4])


def test_gradual_needs_blocks():
    import torch.nn as nn

    class NoBlocks(nn.Module):
        def forward(self, x):
            return x.flatten(1)[:, :4]

    with pytest.raises(ValueError, match="needs the backbone's blocks"):
        TransferClassifier(NoBlocks(), strategy="gradual", image_size=8).fit(np.zeros((4, 8, 8)), [0, 1, 0, 1])


def test_default_backbone_lr_depends_on_what_is_pretrained():
    from sktransfer import get_spec
    from sktransfer._build.branch import backbone_lr
    from sktransfer._build.settings import BranchSettings

    def lr_of(estimator, name):
        return backbone_lr(BranchSettings.from_params(estimator.get_params(deep=False)), get_spec(name))

    clf = TransferClassifier("unused", lr=0.01)
    assert lr_of(clf, "all-MiniLM-L6-v2") == pytest.approx(0.001)  # pretrained transformer
    assert lr_of(clf, "resnet18") == pytest.approx(0.01)  # CNN moving to a new domain
    assert lr_of(clf, "mlp") == pytest.approx(0.01)  # trained from scratch
    scratch = TransferClassifier("unused", lr=0.01, pretrained=False)
    assert lr_of(scratch, "all-MiniLM-L6-v2") == pytest.approx(0.01)
    assert lr_of(TransferClassifier("unused", backbone_lr=0.5), "resnet18") == 0.5
    assert lr_of(TransferClassifier("unused", lr=0.01, strategy="lora"), "all-MiniLM-L6-v2") == pytest.approx(0.01)


def test_default_augmentation_applies_to_training_only(digits):
    from torchvision.transforms import v2

    X, y = digits
    clf = TransferClassifier("resnet18", pretrained=False, augment="default", image_size=32, max_epochs=1,
                             random_state=0).fit(X[:60], y[:60])
    train_set = clf.adapter_.dataset(clf.adapter_.check(X[:4]), train=True)
    eval_set = clf.adapter_.dataset(clf.adapter_.check(X[:4]))
    kinds = [type(t) for t in train_set.load.transform.transforms]
    assert kinds[:3] == [v2.RandomResizedCrop, v2.RandomHorizontalFlip, v2.TrivialAugmentWide]
    assert v2.RandomResizedCrop not in [type(t) for t in eval_set.load.transform.transforms]

    torch.manual_seed(0)
    train_views = torch.stack([train_set[0][0] for _ in range(8)])
    assert train_views.shape == (8, 3, 32, 32)
    assert train_views.std(dim=0).mean() > 0.05  # random views differ
    assert torch.equal(eval_set[0][0], eval_set[0][0])  # prediction inputs don't
