"""The input-adapter interface: everything that differs between modalities, in one place.

An adapter validates ``X`` for one backbone (errors that say what to do), wraps it in
a lazy torch ``Dataset``, collates batches, keys each sample's content for the
feature cache, and says what the modality means for the estimator's tags and
defaults.  The estimator looks its adapter class up once, from the spec's modality,
and never asks which modality it has.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import ClassVar

from torch.utils.data import Dataset, default_collate

from sktransfer._hashing import digest


class SampleDataset(Dataset):
    """Applies ``load`` to one sample at a time and pairs it with its target."""

    def __init__(self, samples, load, targets: dict | None = None):
        self.samples = samples
        self.load = load
        self.targets = targets

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        target = 0.0 if self.targets is None else {k: v[i] for k, v in self.targets.items()}
        return self.load(self.samples[i]), target


def identity(x):
    return x


def non_empty(X, what: str) -> None:
    if len(X) == 0:
        raise ValueError(f"Found array with 0 sample(s): X holds no {what}. Pass at least one sample.")


def column(X):
    """A pandas Series or one-column DataFrame as a list; anything else unchanged."""
    from sktransfer.exceptions import InvalidInputError

    if hasattr(X, "iloc") and hasattr(X, "columns"):
        if X.shape[1] != 1:
            raise InvalidInputError(
                f"X is a DataFrame with {X.shape[1]} columns; this backbone takes one column of "
                "images or texts. Select it, e.g. X['text']."
            )
        return X.iloc[:, 0].tolist()
    if hasattr(X, "iloc"):
        return X.tolist()
    return X


class InputAdapter:
    """Base class of the per-modality adapters.

    Subclasses set the class attributes and implement :meth:`from_params`,
    :meth:`check`, :meth:`dataset` and :meth:`sample_content`.
    """

    #: The modality string of the specs this adapter feeds.
    modality: ClassVar[str]
    #: Whether frozen features of this input are worth sharing across fits.
    shares_features: ClassVar[bool] = True
    #: Batches are image tensors: channels_last and DataLoader workers pay off on CUDA.
    pixel_batches: ClassVar[bool] = False
    #: Default backbone learning rate as a fraction of ``lr``, for pretrained backbones.
    pretrained_backbone_lr_factor: ClassVar[float] = 1.0
    #: Whether the estimator's ``pooling`` parameter means anything here.
    pooling_applies: ClassVar[bool] = False
    #: How token states are pooled (text); None where the backbone pools itself.
    pooling: str | None = None
    #: Whether the estimator's ``long_text`` (windows of over-long inputs) means anything here.
    long_text_applies: ClassVar[bool] = False
    #: How a sample's windows are pooled into one row (``long_text="chunk"``); None without windows.
    chunk_pooling: str | None = None
    #: Small data (``sktransfer._training.budget.small_data_views``): a pretrained body of this
    #: modality isn't fine-tuned by ``max_epochs="auto"``; its converged head is solved on the
    #: rows and this many augmented views of each (:meth:`with_views`). 0: fine-tune as usual.
    small_data_views: ClassVar[int] = 0

    collate_fn = staticmethod(default_collate)

    # ------------------------------------------------------------ estimator side

    def get_state(self) -> dict:
        """This adapter's fitted state and settings as JSON data (model files)."""
        raise NotImplementedError

    def set_state(self, state: dict) -> "InputAdapter":
        """Put back what :meth:`get_state` gave; returns the adapter."""
        raise NotImplementedError

    def _check_kind(self, state: dict) -> None:
        if state["kind"] != self.modality:
            raise ValueError(f"adapter state for {state['kind']!r}, but the backbone takes {self.modality}")

    @classmethod
    def check_params(cls, spec, params: dict) -> None:
        """Reject estimator parameters that mean nothing for this modality."""
        if params.get("pooling", "auto") != "auto" and not cls.pooling_applies:
            raise ValueError(
                f"pooling={params['pooling']!r} applies to text backbones; {spec.name!r} takes {cls.modality}."
            )
        if params.get("long_text", "truncate") != "truncate" and not cls.long_text_applies:
            raise ValueError(
                f"long_text={params['long_text']!r} applies to text backbones; {spec.name!r} takes {cls.modality}. "
                "Use long_text='truncate' (the default)."
            )
        if params.get("augment") is not None:
            # Image and text adapters define augment; elsewhere it would be silently ignored.
            raise ValueError(
                f"augment={params['augment']!r}: augment is defined for image and text backbones only; "
                f"backbone {spec.name!r} takes {cls.modality}. Use augment=None."
            )

    @classmethod
    def from_params(cls, spec, params: dict) -> "InputAdapter":
        """The adapter for ``spec`` under the estimator's parameters (``image_size``...)."""
        raise NotImplementedError

    @classmethod
    def default_preprocessing(cls):
        """Preprocessing for a user module of this modality, which declares none."""
        return None

    def inherit(self, params: dict) -> "InputAdapter":
        """A copy of this fitted adapter for a new estimator that reuses its backbone
        (``backbone=`` a fitted estimator): the source's preprocessing, with only what
        the new estimator's ``params`` set explicitly changed."""
        return copy.copy(self)

    @classmethod
    def update_tags(cls, tags):
        """Set the scikit-learn input tags of an estimator fed by this adapter."""
        return tags

    # ------------------------------------------------------------ data side
    def fit(self, X) -> "InputAdapter":
        """Learn what the adapter needs from the checked training data (most need nothing)."""
        return self

    def check(self, X, *, estimator=None, reset: bool = False):
        """Validated ``X``; raises errors that name the problem and the fix."""
        raise NotImplementedError

    def dataset(self, X, targets: dict | None = None, train: bool = False) -> Dataset:
        raise NotImplementedError

    def with_views(self, X_checked, n_views: int, seed: int | None) -> list:
        """The checked rows followed by ``n_views`` augmented copies of them (view-major:
        all rows' first view, then all rows' second...), as new input for a fit."""
        raise NotImplementedError(f"{type(self).__name__} makes no augmented views")

    def inference_order(self, X, indices) -> Sequence[int] | None:
        """The order to run the samples ``X[indices]`` of the checked ``X`` in when nothing
        trains (predict, transform, feature extraction), as positions into ``indices``; None
        runs them as given. Outputs always come back in the caller's order. Training batches
        never use it (they are shuffled). Reads no sample here: image items decode on access."""
        return None

    def sample_content(self, X) -> tuple[bytes, list[bytes]]:
        """Bytes shared by every sample (layout), and each sample's own content."""
        raise NotImplementedError

    def sample_keys(self, fingerprint: bytes, X) -> list[bytes]:
        """One feature-cache key per sample: the backbone fingerprint plus the sample's content."""
        shared, contents = self.sample_content(X)
        return [digest(fingerprint, shared, content) for content in contents]

    def fingerprint_parts(self) -> tuple:
        """What of this adapter changes the backbone's output (preprocessing, pooling...)."""
        return ()

    @classmethod
    def preprocessing_problem(cls, spec) -> str | None:
        """What is wrong with ``spec.preprocessing`` for this modality, or None (plugin checks)."""
        return None

    @classmethod
    def sample_batch(cls, spec, batch_size: int, image_size=None, n_features: int = 8):
        """A random batch ``(args, kwargs)`` for the backbone's forward (plugin checks)."""
        raise NotImplementedError
