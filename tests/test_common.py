"""scikit-learn's estimator checks on the tabular backbone (the estimators, and the embedder on a seeded random MLP)."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sktransfer import TransferClassifier, TransferEmbedder, TransferRegressor

# Every expected failure, with the reason it can't pass for a network trained by SGD.
_WEIGHTS_AS_REPEATS = (
    "sample_weight scales each sample's loss in mini-batch SGD; that is not the same optimisation path "
    "as repeating the sample, so the fitted networks differ (as for sklearn's own MLP models)."
)
EXPECTED_FAILURES = {
    "TransferClassifier": {"check_sample_weight_equivalence_on_dense_data": _WEIGHTS_AS_REPEATS},
    "TransferRegressor": {"check_sample_weight_equivalence_on_dense_data": _WEIGHTS_AS_REPEATS},
}


def _expected_failed_checks(estimator):
    return EXPECTED_FAILURES.get(type(estimator).__name__, {})


@parametrize_with_checks(
    [
        TransferClassifier("mlp", max_epochs=10, random_state=0),
        TransferRegressor("mlp", max_epochs=10, random_state=0),
        TransferEmbedder("mlp", random_state=0),
    ],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
