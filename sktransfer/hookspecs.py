"""Plugin markers and hook specifications for sktransfer.

A plugin is any module (or object) with functions decorated by :data:`hookimpl`.
Third-party plugins register a module under the ``sktransfer`` entry-point group::

    [project.entry-points.sktransfer]
    my_backbones = "my_package.backbones"
"""

import pluggy

PROJECT_NAME = "sktransfer"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_backbones():
    """Return a list of :class:`sktransfer.BackboneSpec` this plugin provides."""
