"""Plugin markers and hook specifications for sktransfer.

A plugin is any module (or object) with functions decorated by :data:`hookimpl`.
Third-party plugins register a module under the ``sktransfer`` entry-point group::

    [project.entry-points.sktransfer]
    my_backbones = "my_package.backbones"

Hooks: :func:`register_backbones` (specs listed eagerly, the usual way),
:func:`resolve_backbone` and :func:`list_backbone_names` (for plugins whose names
are too many to build a spec for each, or are open-ended, like directories).
"""

import pluggy

PROJECT_NAME = "sktransfer"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_backbones():
    """Return a list of :class:`sktransfer.BackboneSpec` this plugin provides."""


@hookspec(firstresult=True)
def resolve_backbone(name):
    """Return a BackboneSpec for a name this plugin claims without listing it, or None."""


@hookspec
def list_backbone_names():
    """Return ``(name, modality)`` pairs for the names this plugin resolves on demand.

    Listing must be cheap (no spec is built): the registry calls it only for
    :func:`sktransfer.list_backbones` and to suggest near matches for unknown names,
    never to look up a name.  Every listed name must resolve through this plugin's
    :func:`resolve_backbone`.
    """
