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


def test_api_reference_lists_every_public_name():
    """docs/api.rst names every entry of ``sktransfer.__all__`` (in an autosummary or as
    a documented data item) and has a page for each public module."""
    import re
    from pathlib import Path

    docs = Path(__file__).resolve().parents[1] / "docs"
    api = (docs / "api.rst").read_text(encoding="utf-8")
    listed = set(re.findall(r"^   (\w+)\s*$", api, re.M)) | set(re.findall(r"^\.\. (?:py:)?data:: (\w+)", api, re.M))
    missing = sorted(set(sktransfer.__all__) - listed)
    assert not missing, f"docs/api.rst does not list {missing}"
    for module in ("report", "mlflow", "testing", "hookspecs", "exceptions"):
        page = (docs / "modules" / f"{module}.rst").read_text(encoding="utf-8")
        assert f"sktransfer.{module}" in page and f"modules/{module}" in api
