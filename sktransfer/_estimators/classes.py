"""The public estimators: TransferClassifier and TransferRegressor."""

from __future__ import annotations

import functools
from numbers import Real

import numpy as np
from scipy import sparse
from scipy.special import expit, log_expit, log_softmax, softmax
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, column_or_1d

from sktransfer._estimators.base import _TransferBase
from sktransfer._estimators.docstrings import _SHARED_ATTRIBUTES, _SHARED_PARAMETERS
from sktransfer._estimators.init_outputs import class_scores, standardised_targets
from sktransfer._estimators.targets import (
    check_indicator_targets,
    check_uniform_labels,
    warn_constant_labels,
)
from sktransfer._inputs.augment import mixes_batches
from sktransfer._inputs.scaling import fit_scaler, statistics, transform


class TransferClassifier(ClassifierMixin, _TransferBase):
    __doc__ = f"""Classifier that fine-tunes a pretrained backbone with a new linear head.

    Parameters
    ----------
    {_SHARED_PARAMETERS.strip()}
    class_weight : "balanced", dict or None, default=None
        Per-class weights multiplied into ``sample_weight``. With a multi-label ``y``,
        ``"balanced"`` balances each label column as its own binary problem, as
        scikit-learn's ``"balanced"`` would: in that label's loss, positives weigh
        ``n_samples / (2 * n_positive)`` and negatives ``n_samples / (2 * n_negative)``
        (a column with one value only gets 1); a dict is refused (its keys would be
        class labels, and there each label is a column that is present or absent).
    label_smoothing : float in [0, 1), default=0.0
        Mixes the one-hot target with the uniform distribution; with a multi-label
        ``y``, pulls each 0/1 target towards 1/2 by this much.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels; for a multi-label ``y``, the column indices
        ``np.arange(n_labels)``, as :class:`~sklearn.neural_network.MLPClassifier`.
    {_SHARED_ATTRIBUTES.strip()}

    Notes
    -----
    Multi-label classification: a 2-D 0/1 indicator ``y`` (see :meth:`fit`) trains
    one sigmoid output per label with binary cross-entropy instead of a softmax.
    ``predict`` returns the indicator matrix, ``predict_proba`` each label's
    probability and ``score`` the subset accuracy. The validation split
    (``validation_fraction``, ``patience``) is then a plain shuffle, as stratifying is
    defined for one label per sample. ``augment="mixup"``/``"cutmix"`` mix the
    indicator rows in the images' proportions; ``init=`` is refused.

    Examples
    --------
    >>> from sktransfer import TransferClassifier
    >>> clf = TransferClassifier("all-MiniLM-L6-v2", strategy="head")  # doctest: +SKIP
    >>> clf.fit(["good", "bad", "great", "awful"], [1, 0, 1, 0]).predict(["fine"])  # doctest: +SKIP
    """

    _parameter_constraints = {
        **_TransferBase._parameter_constraints,
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
    }
    _loss_kind = "cross_entropy"
    _target_attributes = ("n_outputs_", "classes_", "_multilabel", "_indicator_dtype")

    def __init__(
        self,
        backbone,
        *,
        pretrained=True,
        strategy="full",
        trainable_blocks=1,
        lora_rank=8,
        lora_alpha=None,
        contrastive_iterations=20,
        layers=None,
        init=None,
        init_cv=None,
        lr=1e-3,
        backbone_lr=None,
        layer_decay=None,
        head_epochs="auto",
        wise_alpha="auto",
        head_solver="lbfgs",
        C=1.0,
        lr_schedule="cosine",
        warmup_fraction=0.1,
        max_epochs="auto",
        batch_size=32,
        optimizer="adamw",
        weight_decay=0.01,
        validation_fraction=None,
        patience=None,
        early_stopping_metric="loss",
        augment=None,
        image_size=None,
        max_length=None,
        pooling="auto",
        long_text="truncate",
        chunk_pooling="mean",
        device="auto",
        random_state=None,
        verbose=0,
        feature_cache="memory",
        precision="auto",
        compile=False,
        net_params=None,
        fusion="concat",
        remainder="error",
        accelerator=None,
        class_weight=None,
        label_smoothing=0.0,
    ):
        super().__init__(
            backbone,
            pretrained=pretrained,
            strategy=strategy,
            trainable_blocks=trainable_blocks,
            lora_rank=lora_rank,
            lora_alpha=lora_alpha,
            contrastive_iterations=contrastive_iterations,
            layers=layers,
            init=init,
            init_cv=init_cv,
            lr=lr,
            backbone_lr=backbone_lr,
            layer_decay=layer_decay,
            head_epochs=head_epochs,
            wise_alpha=wise_alpha,
            head_solver=head_solver,
            C=C,
            lr_schedule=lr_schedule,
            warmup_fraction=warmup_fraction,
            max_epochs=max_epochs,
            batch_size=batch_size,
            optimizer=optimizer,
            weight_decay=weight_decay,
            validation_fraction=validation_fraction,
            patience=patience,
            early_stopping_metric=early_stopping_metric,
            augment=augment,
            image_size=image_size,
            max_length=max_length,
            pooling=pooling,
            long_text=long_text,
            chunk_pooling=chunk_pooling,
            device=device,
            random_state=random_state,
            verbose=verbose,
            feature_cache=feature_cache,
            precision=precision,
            compile=compile,
            net_params=net_params,
            fusion=fusion,
            remainder=remainder,
            accelerator=accelerator,
        )
        self.class_weight = class_weight
        self.label_smoothing = label_smoothing

    def fit(self, X, y, sample_weight=None):
        """Fit the head (and the backbone, depending on ``strategy``) to ``X`` and ``y``.

        Parameters
        ----------
        X : array-like, list of PIL images or file paths, or list of str
            Samples in the backbone's modality.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels; or, for multi-label classification, a 0/1 (or boolean)
            indicator matrix with one column per label, such as
            :class:`~sklearn.preprocessing.MultiLabelBinarizer` gives. Sparse
            indicator matrices are densified. A label column that is 0 (or 1) for
            every sample draws a warning; a 2-D ``y`` with other values (several
            multi-class outputs) is refused.
        sample_weight : array-like of shape (n_samples,), optional
            Per-sample weights on the loss (with a multi-label ``y``, on each sample's
            mean binary cross-entropy over its labels).

        Returns
        -------
        self
        """
        return super().fit(X, y, sample_weight)

    def _encode_targets(self, y):
        check_uniform_labels(y)
        y = _label_array(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if y.ndim == 2:
            return self._encode_indicator(y)
        if y.ndim != 1:
            raise ValueError(
                f"y must be 1-D (one label per sample) or a 2-D 0/1 indicator matrix (multi-label), got shape "
                f"{y.shape}."
            )
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        if len(encoder.classes_) < 2:
            raise ValueError(
                f"y has only 1 class ({str(encoder.classes_[0])!r}); a classifier needs at least 2 classes "
                "in the training data."
            )
        encoded = encoder.transform(y).astype(np.int64)
        class_weight = 1.0 if self.class_weight is None else compute_sample_weight(self.class_weight, y)
        fitted = {"classes_": encoder.classes_, "n_outputs_": len(encoder.classes_), "_multilabel": False}
        return encoded, fitted, encoded, class_weight

    def _encode_indicator(self, y):
        """Multi-label targets: one sigmoid output per column of the 0/1 matrix ``y``,
        ``classes_`` the column indices (as MLPClassifier's), no stratified split."""
        check_indicator_targets(y)
        warn_constant_labels(y)
        if isinstance(self.class_weight, dict):
            raise ValueError(
                "class_weight as a dict maps class labels to weights, but y is a multi-label indicator matrix, "
                "whose labels are its columns, each present or absent. Use class_weight='balanced' (each label "
                "column balanced as a binary problem), or pass per-sample weights as sample_weight."
            )
        targets = y.astype(np.float32)
        fitted = {
            "classes_": np.arange(y.shape[1]),
            "n_outputs_": y.shape[1],
            "_multilabel": True,
            "_indicator_dtype": y.dtype,  # predict returns the training y's dtype (bool stays bool)
            "_label_weights": None if self.class_weight is None else balanced_label_weights(targets),
        }
        return targets, fitted, None, 1.0

    def _is_multilabel(self) -> bool:
        return getattr(self, "_multilabel", False)  # models fitted before multi-label support lack it

    def _criterion_params(self, fitted):
        params = {**super()._criterion_params(fitted), "criterion__label_smoothing": self.label_smoothing}
        if fitted.get("_multilabel"):
            # Independent sigmoids: a label's presence says nothing about the others'.
            params.update(criterion__kind="binary_cross_entropy", criterion__label_weights=fitted.get("_label_weights"))
        return params

    def _stratified(self, fitted):
        # Stratification is defined by one label per sample: multi-label splits are plain shuffles.
        return not fitted.get("_multilabel")

    def _train_collate(self, module, fitted):
        if not mixes_batches(self.augment):
            return None
        from sktransfer._inputs import BatchMix

        return functools.partial(BatchMix, kind=self.augment, num_classes=module.head.out_features,
                                 multilabel=fitted.get("_multilabel"))

    def _source_outputs(self, init, answers, fitted) -> np.ndarray:
        """``init``'s log-probabilities (or decision function), columns in our class order."""
        return class_scores(init, answers, fitted)

    def _fitted_outputs(self) -> dict:
        return {"n_outputs_": self.n_outputs_, "classes_": self.classes_}

    def predict_proba(self, X):
        """Class probabilities, columns in the order of ``classes_``.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Each row sums to 1. Multi-label models (fitted on a 2-D indicator ``y``)
            give each label's own probability of being present, independent sigmoids
            that need not sum to 1 (as :class:`~sklearn.neural_network.MLPClassifier`).
        """
        logits = self._forward(X).astype(np.float64)  # checks fitted first
        return expit(logits) if self._is_multilabel() else softmax(logits, axis=1)

    def predict_log_proba(self, X):
        """Log of the class probabilities, columns in the order of ``classes_``.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Per-label log-probabilities for multi-label models (see :meth:`predict_proba`).
        """
        logits = self._forward(X).astype(np.float64)
        return log_expit(logits) if self._is_multilabel() else log_softmax(logits, axis=1)

    def predict(self, X):
        """The most probable class for each sample, as the original labels.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_labels)
            Multi-label models give the indicator matrix, a label present where its
            probability is above 0.5, in the dtype of the training ``y``.
        """
        logits = self._forward(X)  # checks fitted first
        if self._is_multilabel():
            return (logits > 0).astype(self._indicator_dtype)  # sigmoid(logit) > 0.5
        return self.classes_[np.argmax(logits, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        tags.target_tags.multi_output = True
        return tags


def _label_array(y) -> np.ndarray:
    """``y`` as a numpy array: pandas objects unwrapped, sparse indicator matrices
    (MultiLabelBinarizer(sparse_output=True)) densified, as scikit-learn's MLPClassifier
    does: one byte or word per sample and label is small next to the samples."""
    if sparse.issparse(y):
        return y.toarray()
    if hasattr(y, "to_numpy"):
        return y.to_numpy()
    try:
        return np.asarray(y)
    except ValueError:  # numpy refuses ragged sequences
        raise ValueError(
            "y holds sequences of different lengths, like lists of labels per sample. Turn them into a 0/1 "
            "indicator matrix, one column per label: sklearn.preprocessing.MultiLabelBinarizer().fit_transform(y)."
        ) from None


def balanced_label_weights(y: np.ndarray) -> np.ndarray:
    """``(positive, negative)`` weights per label column of the 0/1 matrix ``y``:
    scikit-learn's ``class_weight="balanced"`` for each column as a binary problem,
    ``n / (2 * count)``; a column with one value only gets 1 for both."""
    n = len(y)
    n_positive = y.sum(axis=0, dtype=np.float64)
    n_negative = n - n_positive
    constant = (n_positive == 0) | (n_negative == 0)
    positive = np.where(constant, 1.0, n / (2 * np.maximum(n_positive, 1)))
    negative = np.where(constant, 1.0, n / (2 * np.maximum(n_negative, 1)))
    return np.stack([positive, negative])


class TransferRegressor(RegressorMixin, _TransferBase):
    __doc__ = f"""Regressor that fine-tunes a pretrained backbone with a new linear head.

    Targets are standardised for training and mapped back on predict; 1-D and
    multi-output ``y`` are supported.

    Parameters
    ----------
    {_SHARED_PARAMETERS.strip()}

    Attributes
    ----------
    target_mean_, target_scale_ : ndarray of shape (n_outputs,)
    {_SHARED_ATTRIBUTES.strip()}
    """

    _loss_kind = "mse"
    _target_attributes = ("n_outputs_", "target_mean_", "target_scale_", "_target_multiplier", "_y_ndim")

    def _encode_targets(self, y):
        y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
        if y.ndim not in (1, 2):
            raise ValueError(f"y must be 1-D or 2-D, got shape {y.shape}.")
        y2 = y.reshape(len(y), -1)
        scaler, exponent = fit_scaler(y2)
        mean, scale, constant = statistics(scaler, exponent)
        standardised = transform(scaler, exponent, y2)
        # Constant columns (to float64 rounding: StandardScaler gives them scale 1) train
        # on exactly 0 and predict exactly their value: their multiplier is 0.
        exactly = (y2 == y2[:1]).all(axis=0)
        constant |= exactly
        mean = np.where(exactly, y2[0], mean)
        standardised[:, constant] = 0.0
        targets = standardised.astype(np.float32)
        if not np.isfinite(targets).all():
            raise ValueError(
                "y can't be standardised into float32 for training (the values overflow); rescale y, e.g. "
                "fit on y / 1e300 and multiply the predictions back."
            )
        fitted = {
            "target_mean_": mean,
            "target_scale_": scale,  # StandardScaler's: the standard deviation, 1 for constant columns
            "_target_multiplier": np.where(constant, 0.0, scale),
            "n_outputs_": y2.shape[1],
            "_y_ndim": y.ndim,
        }
        return targets, fitted, None, 1.0

    def _source_outputs(self, init, answers, fitted) -> np.ndarray:
        """``init.predict(X)`` in this model's standardised target units."""
        return standardised_targets(init, answers, fitted)

    def _fitted_outputs(self) -> dict:
        return {"n_outputs_": self.n_outputs_, "target_mean_": self.target_mean_, "target_scale_": self.target_scale_}

    def predict(self, X):
        """Predicted targets, in the original units.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        out = self._forward(X).astype(np.float64)  # checks fitted first
        # Models fitted before constant columns had a multiplier used target_scale_.
        out = out * getattr(self, "_target_multiplier", self.target_scale_) + self.target_mean_
        return out.ravel() if self._y_ndim == 1 else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
