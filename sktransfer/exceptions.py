"""Exceptions raised by sktransfer.

Each one subclasses ``ValueError`` or ``TypeError`` so that code written for
scikit-learn (``except ValueError``) keeps catching them.
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
