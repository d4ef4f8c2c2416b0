"""Every parameter of every estimator is documented in its numpydoc docstring.

The API reference (docs/api.rst) is generated from these docstrings, so a parameter
missing from them is missing from the documentation site.
"""

import pytest
from numpydoc.docscrape import NumpyDocString

import sktransfer

ESTIMATORS = ["TransferClassifier", "TransferRegressor", "TransferEmbedder"]


def documented_parameters(cls) -> list[str]:
    """The names in the Parameters section of ``cls``'s docstring (``a, b : int`` is two)."""
    names = []
    for parameter in NumpyDocString(cls.__doc__)["Parameters"]:
        names += [name.strip() for name in parameter.name.split(",") if name.strip()]
    return names


@pytest.mark.parametrize("name", ESTIMATORS)
def test_parameters_section_matches_get_params(name):
    cls = getattr(sktransfer, name)
    params = set(cls("mlp").get_params(deep=False))
    documented = documented_parameters(cls)
    assert len(documented) == len(set(documented)), f"{name}: a parameter is documented twice: {sorted(documented)}"
    missing = sorted(params - set(documented))
    extra = sorted(set(documented) - params)
    assert not missing, f"{name}: parameters missing from the docstring's Parameters section: {missing}"
    assert not extra, f"{name}: documented parameters that get_params() doesn't have: {extra}"


@pytest.mark.parametrize("name", ESTIMATORS)
def test_every_documented_parameter_has_a_type(name):
    for parameter in NumpyDocString(getattr(sktransfer, name).__doc__)["Parameters"]:
        assert parameter.type, f"{name}: parameter {parameter.name!r} has no type"
