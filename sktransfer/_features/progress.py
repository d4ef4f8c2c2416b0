"""Progress bars of the long steps (feature extraction, training, prediction), through tqdm, on stderr.

An estimator call with ``verbose >= 1`` opens a :func:`progress_scope`; the steps it runs
ask :func:`bar` for a bar, which is a real one only inside such a scope and when stderr is
a terminal. ``SKTRANSFER_PROGRESS=1`` shows the bars whatever stderr is (a log file, CI),
``SKTRANSFER_PROGRESS=0`` never shows them. A scope inside another (an estimator used by a
verbose one: the linear probe, an ``init=`` model) shows bars if either asks for them.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import sys

#: The environment variable that forces bars on (``1``) or off (``0``).
ENV = "SKTRANSFER_PROGRESS"

_VERBOSE = contextvars.ContextVar("sktransfer_progress_verbose", default=0)


def _int(verbose) -> int:
    try:
        return int(verbose or 0)
    except (TypeError, ValueError):
        return 0


@contextlib.contextmanager
def progress_scope(verbose):
    """Let the steps run inside show bars when ``verbose >= 1`` (or an enclosing scope does)."""
    token = _VERBOSE.set(max(_VERBOSE.get(), _int(verbose)))
    try:
        yield
    finally:
        _VERBOSE.reset(token)


def shows_progress(method):
    """Run an estimator method in a :func:`progress_scope` of the estimator's ``verbose``."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with progress_scope(getattr(self, "verbose", 0)):
            return method(self, *args, **kwargs)

    return wrapper


def _interactive(stream) -> bool:
    """Whether ``stream`` is a terminal (or a Jupyter kernel's output, which draws the bars)."""
    try:
        if stream.isatty():
            return True
    except (AttributeError, ValueError):  # closed or replaced by an object without isatty
        return False
    return type(stream).__module__.startswith("ipykernel")


def bars_wanted() -> bool:
    """Whether a bar asked for now is shown: in a verbose scope, and stderr a terminal or forced."""
    forced = os.environ.get(ENV, "").strip()
    if forced == "0" or _VERBOSE.get() < 1:
        return False
    return forced == "1" or _interactive(sys.stderr)


def bar(desc: str, total: int | None, unit: str = "sample"):
    """A tqdm bar on stderr named ``desc``, or a disabled one (whose methods do nothing)."""
    from tqdm import tqdm

    wanted = bars_wanted()
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=not wanted, leave=True,
                dynamic_ncols=True, mininterval=0.2)


def write(text: str) -> None:
    """Print ``text`` to stdout above any open bar (skorch's epoch table while the fit bar runs)."""
    from tqdm import tqdm

    tqdm.write(text, file=sys.stdout)
