"""Exceptions raised by sktransfer.

Each one subclasses ``ValueError`` or ``TypeError`` so that code written for
scikit-learn (``except ValueError``) keeps catching them. Warnings subclass
``UserWarning``.
"""


class SktransferError(Exception):
    """Base class of every sktransfer-specific error."""


class UnknownBackboneError(SktransferError, ValueError):
    """A backbone name that no installed plugin registers."""


class BackboneConflictError(SktransferError, ValueError):
    """Two plugins register the same backbone name."""


class WeightsUnavailableError(SktransferError, ValueError):
    """Pretrained weights were asked for but are not on this machine."""


class InputModalityError(SktransferError, TypeError):
    """``X`` is of another modality than the backbone expects (text for an image model...)."""


class InvalidInputError(SktransferError, ValueError):
    """``X`` has the right modality but unusable content (ragged, unreadable file...)."""


class TrainingDivergedError(SktransferError, ValueError):
    """The training or validation loss became NaN or infinite; the fit was abandoned."""


class NonFiniteOutputError(SktransferError, ValueError):
    """A fitted model gave NaN or infinite outputs for some samples at predict time."""


class FeatureCacheError(SktransferError, ValueError):
    """``feature_cache`` names a path that can't hold the cache (a file, a directory that
    can't be created or written), its SQLite file failed in a way a rebuild can't fix, or
    an :class:`~sktransfer.FsspecFeatureStore` could not read or write its URL."""


class ModelFileError(SktransferError, ValueError):
    """A model directory that ``sktransfer.load`` can't load: damaged, edited, from a newer
    sktransfer, or needing a backbone whose plugin is missing here."""


class FeatureCacheWarning(UserWarning):
    """The on-disk feature cache was unreadable and was rebuilt empty, or a row file of an
    :class:`~sktransfer.FsspecFeatureStore` was unreadable (its features are recomputed)."""
