"""Multi-label classification: a 2-D 0/1 indicator y trains sigmoid outputs with binary cross-entropy."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from scipy import sparse
from sklearn.metrics import accuracy_score
from sklearn.model_selection import cross_val_score
from sklearn.preprocessing import MultiLabelBinarizer

import sktransfer
from sktransfer import TransferClassifier
from sktransfer._estimators.classes import balanced_label_weights
from sktransfer._inputs import BatchMix
from sktransfer._nn.losses import WeightedLoss


@pytest.fixture(scope="module")
def separable():
    """Two labels, each a threshold of a different feature: learnable, and not exclusive."""
    rng = np.random.RandomState(0)
    X = rng.randn(240, 4)
    y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0.5]).astype(int)
    return X, y


def mlp(**kw):
    params = dict(max_epochs=20, batch_size=64, lr=2e-2, random_state=0)
    params.update(kw)
    return TransferClassifier("mlp", **params)


@pytest.fixture(scope="module")
def fitted(separable):
    X, y = separable
    return mlp().fit(X, y)


def test_predict_is_an_indicator_matrix_of_the_training_dtype(fitted, separable):
    X, y = separable
    predicted = fitted.predict(X)
    assert predicted.shape == y.shape and predicted.dtype == y.dtype
    assert set(np.unique(predicted)) <= {0, 1}
    np.testing.assert_array_equal(fitted.classes_, [0, 1])
    assert fitted.n_outputs_ == 2
    bool_fit = mlp(max_epochs=2).fit(X, y.astype(bool))
    assert bool_fit.predict(X).dtype == bool


def test_learns_a_separable_multilabel_problem(fitted, separable):
    X, y = separable
    # Chance (independent guesses at each label's base rate) is about 0.4 subset accuracy.
    assert fitted.score(X, y) > 0.9


def test_predict_proba_is_per_label(fitted, separable):
    X, y = separable
    proba = fitted.predict_proba(X)
    assert proba.shape == y.shape and proba.dtype.kind == "f"
    assert ((proba >= 0) & (proba <= 1)).all()
    assert not np.allclose(proba.sum(axis=1), 1.0)  # independent sigmoids, not a softmax
    np.testing.assert_array_equal(fitted.predict(X), (proba > 0.5).astype(int))
    np.testing.assert_allclose(np.exp(fitted.predict_log_proba(X)), proba, rtol=1e-10)


def test_score_is_subset_accuracy(fitted, separable):
    X, y = separable
    assert fitted.score(X, y) == accuracy_score(y, fitted.predict(X))


def test_tags_declare_multilabel_support():
    tags = TransferClassifier("mlp").__sklearn_tags__()
    assert tags.classifier_tags.multi_label and tags.target_tags.multi_output


def test_trains_with_binary_cross_entropy(fitted):
    assert fitted.net_.criterion_.kind == "binary_cross_entropy"
    torch.manual_seed(0)
    logits, target = torch.randn(5, 3), torch.randint(0, 2, (5, 3)).float()
    loss = WeightedLoss("binary_cross_entropy")(logits, {"target": target, "weight": torch.ones(5)})
    torch.testing.assert_close(loss, torch.nn.BCEWithLogitsLoss()(logits, target))


def test_sample_weight_changes_the_fit(separable):
    X, y = separable
    weights = np.where(y[:, 1] == 1, 5.0, 1.0)
    plain = mlp(max_epochs=5).fit(X, y)
    weighted = mlp(max_epochs=5).fit(X, y, sample_weight=weights)
    assert weighted.predict_proba(X)[:, 1].mean() > plain.predict_proba(X)[:, 1].mean() + 0.02


def test_balanced_class_weight_balances_each_label():
    rng = np.random.RandomState(1)
    X = rng.randn(200, 3)
    y = np.column_stack([X[:, 0] > 1.3, X[:, 1] > 0]).astype(int)  # label 0 is rare (about 10%)
    positive, negative = balanced_label_weights(y.astype(np.float32))
    n_pos = y.sum(axis=0)
    np.testing.assert_allclose(positive, len(y) / (2 * n_pos))
    np.testing.assert_allclose(negative, len(y) / (2 * (len(y) - n_pos)))
    plain = mlp(max_epochs=5).fit(X, y)
    balanced = mlp(max_epochs=5, class_weight="balanced").fit(X, y)
    np.testing.assert_allclose(balanced.net_.criterion_.label_weights.numpy(), [positive, negative], rtol=1e-6)
    # The rare label is predicted present more often once its positives weigh more.
    assert balanced.predict_proba(X)[:, 0].mean() > plain.predict_proba(X)[:, 0].mean() + 0.05


def test_balanced_weights_of_a_constant_column_are_one():
    positive, negative = balanced_label_weights(np.array([[0, 1], [0, 0], [0, 1]], dtype=np.float32))
    assert positive[0] == negative[0] == 1.0


def test_class_weight_dict_is_refused(separable):
    X, y = separable
    with pytest.raises(ValueError, match="class_weight as a dict .* multi-label .*'balanced'"):
        mlp(class_weight={0: 1.0, 1: 2.0}).fit(X, y)


def test_multiclass_multioutput_y_is_refused(separable):
    X, _ = separable
    y = np.column_stack([np.arange(len(X)) % 3, np.arange(len(X)) % 2])
    with pytest.raises(ValueError, match=r"not a binary indicator matrix \(values \[0, 1, 2\]\).*"
                                         "multiclass-multioutput.*MultiOutputClassifier"):
        mlp().fit(X, y)
    with pytest.raises(ValueError, match="not a binary indicator matrix.*MultiLabelBinarizer"):
        mlp().fit(X, np.where(y > 0, "a", "b"))


def test_y_without_label_columns_is_refused(separable):
    X, _ = separable
    with pytest.raises(ValueError, match="no label columns"):
        mlp().fit(X, np.zeros((len(X), 0), dtype=int))


def test_lists_of_label_sets_point_to_multilabelbinarizer():
    X = np.random.RandomState(0).randn(4, 2)
    with pytest.raises(ValueError, match="different lengths.*MultiLabelBinarizer"):
        mlp().fit(X, [[1, 2], [3], [1], [2, 3]])


def test_constant_label_column_warns_and_still_fits(separable):
    X, y = separable
    y = np.column_stack([y, np.zeros(len(y), dtype=int)])
    with pytest.warns(UserWarning, match=r"label column\(s\) \[2\] are 0 \(never present\)"):
        clf = mlp(max_epochs=3, class_weight="balanced").fit(X, y)
    assert clf.predict(X).shape == y.shape
    assert (clf.predict_proba(X)[:, 2] < 0.5).all()


def test_multilabelbinarizer_dense_and_sparse(separable):
    X, _ = separable
    label_sets = [{"cat"} if x[0] > 0 else {"dog", "bird"} if x[1] > 0 else set() for x in X]
    dense = MultiLabelBinarizer().fit_transform(label_sets)
    as_sparse = MultiLabelBinarizer(sparse_output=True).fit_transform(label_sets)
    assert sparse.issparse(as_sparse)
    a = mlp(max_epochs=3).fit(X, dense)
    b = mlp(max_epochs=3).fit(X, as_sparse)  # densified
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    assert b.predict(X).shape == dense.shape


def test_list_of_lists_and_dataframe_targets_match_the_array(separable):
    X, y = separable
    pd = pytest.importorskip("pandas")
    expected = mlp(max_epochs=2).fit(X, y).predict(X)
    np.testing.assert_array_equal(mlp(max_epochs=2).fit(X, y.tolist()).predict(X), expected)
    np.testing.assert_array_equal(mlp(max_epochs=2).fit(X, pd.DataFrame(y, columns=["a", "b"])).predict(X),
                                  expected)


def test_validation_split_is_a_plain_shuffle_and_patience_works(separable):
    X, y = separable
    y = y.copy()
    y[:, 1] = 0
    y[0, 1] = 1  # one positive: a split stratified by label combination would refuse it
    clf = mlp(max_epochs=20, patience=2, validation_fraction=0.2).fit(X, y)
    assert "valid_loss" in clf.net_.history[-1]
    assert clf.predict(X).shape == y.shape


def test_init_is_refused(fitted, separable):
    X, y = separable
    with pytest.raises(ValueError, match="init=.*multi-label"):
        mlp(init=fitted).fit(X, y)


def test_cross_val_score(separable):
    X, y = separable
    scores = cross_val_score(mlp(max_epochs=8), X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.6


def test_model_file_round_trip(fitted, separable, tmp_path):
    X, y = separable
    loaded = sktransfer.load(fitted.save_pretrained(tmp_path / "multilabel"), device="cpu")
    assert loaded._multilabel
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))
    predicted = loaded.predict(X)
    assert predicted.dtype == y.dtype
    np.testing.assert_array_equal(predicted, fitted.predict(X))
    bool_fit = mlp(max_epochs=1).fit(X, y.astype(bool))
    assert sktransfer.load(bool_fit.save_pretrained(tmp_path / "bool")).predict(X).dtype == bool


def test_pickle_round_trip(fitted, separable):
    X, _ = separable
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(fitted)).predict(X), fitted.predict(X))


def test_refit_on_single_label_y_is_single_label_again(separable):
    X, y = separable
    clf = mlp(max_epochs=2).fit(X, y).fit(X, y[:, 0])
    assert clf.predict(X).shape == (len(X),)
    np.testing.assert_allclose(clf.predict_proba(X).sum(axis=1), 1.0)
    assert clf.net_.criterion_.kind == "cross_entropy"


def test_frozen_backbone_trains_on_cached_features(digits):
    X, labels = digits
    y = np.column_stack([labels % 2, labels >= 2]).astype(int)
    clf = TransferClassifier("resnet18", pretrained=False, strategy="head", image_size=16, max_epochs=3,
                             random_state=0).fit(X, y)
    assert clf.feature_fingerprint_ is not None  # the cached-features path
    assert clf.predict(X).shape == y.shape


@pytest.mark.parametrize("kind", ["mixup", "cutmix"])
def test_batch_mixing_mixes_indicator_rows(kind):
    images = torch.rand(6, 3, 16, 16)
    rows = torch.tensor([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0], [1, 0, 0], [0, 1, 1]])
    batch = [(images[i], {"target": rows[i], "weight": torch.tensor(1.0)}) for i in range(6)]
    torch.manual_seed(0)
    mixed_images, target = BatchMix(torch.utils.data.default_collate, kind, 3, multilabel=True)(batch)
    assert mixed_images.shape == images.shape and target["target"].shape == (6, 3)
    # Each row is a convex mix of its own indicator row and its neighbour's (torchvision rolls by one).
    own, other = rows.float(), rows.roll(1, 0).float()
    differ = own != other
    lam = ((target["target"] - other)[differ] / (own - other)[differ]).unique()
    assert len(lam) == 1 or torch.allclose(lam, lam[0], atol=1e-5)  # one proportion for the whole batch
    torch.testing.assert_close(target["target"], lam[0] * own + (1 - lam[0]) * other)


def test_fit_with_mixup(digits):
    X, labels = digits
    y = np.column_stack([labels % 2, labels >= 2]).astype(int)
    clf = TransferClassifier("resnet18", pretrained=False, augment="mixup", image_size=16, max_epochs=1,
                             random_state=0).fit(X, y)
    assert np.isfinite(clf.net_.history[:, "train_loss"]).all()
    assert clf.predict(X).shape == y.shape


def test_fused_backbones(separable):
    X, y = separable
    clf = TransferClassifier(["mlp", "mlp"], max_epochs=3, random_state=0).fit(X, y)
    assert clf.predict(X).shape == y.shape
    assert clf.predict_proba(X).shape == y.shape


def test_report_and_cli_refuse_multilabel_models(fitted, separable, tmp_path):
    from sktransfer._cli import commands as _cli_commands
    from sktransfer.report import most_confused

    X, y = separable
    with pytest.raises(ValueError, match="multi-label .*classification_report"):
        most_confused(fitted, X, y)
    path = fitted.save_pretrained(tmp_path / "model")
    with pytest.raises(ValueError, match="multi-label classifier .* sktransfer.load"):
        _cli_commands._load_single_label(path)


def test_single_label_fits_do_not_warn_about_labels(separable):
    X, y = separable
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        mlp(max_epochs=1).fit(X, y[:, 0])
