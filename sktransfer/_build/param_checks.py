"""Parameter rules scikit-learn's constraints leave out, shared by the estimators and
:class:`~sktransfer.Branch`: booleans are not numbers here, and numpy numbers (a
``GridSearchCV`` grid built with ``np.arange``) work wherever Python numbers do."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, InvalidParameterError


def reject_booleans(constraints: dict, params: dict, caller: str) -> None:
    """Refuse ``True``/``False`` for a numeric parameter (``Interval(Integral, ...)``
    accepts them, as bool is an int subclass): ``lora_rank=True`` is not rank 1."""
    for name, value in params.items():
        options = constraints.get(name)
        if not isinstance(value, (bool, np.bool_)) or not isinstance(options, list):
            continue
        numeric = [option for option in options if isinstance(option, Interval) or option in (Integral, Real)]
        if "boolean" in options or not numeric:
            continue
        what = numeric[0] if isinstance(numeric[0], Interval) else f"a {numeric[0].__name__.lower()} number"
        raise InvalidParameterError(
            f"The {name!r} parameter of {caller} must be {what}, not the boolean {value!r}: booleans are not "
            f"numbers here. Pass a number, e.g. {name}=1."
        )


def plain_number(value):
    """A numpy scalar as the Python number it holds (torch and skorch want ``int``)."""
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def plain_numbers(params: dict) -> dict:
    """``params`` with numpy scalars as Python numbers (the estimator's own are left as given)."""
    return {name: plain_number(value) for name, value in params.items()}


class StrictParams:
    """``_validate_params`` with :func:`reject_booleans` added (mixed in before BaseEstimator)."""

    def _validate_params(self):
        super()._validate_params()
        reject_booleans(self._parameter_constraints, self.get_params(deep=False), type(self).__name__)
