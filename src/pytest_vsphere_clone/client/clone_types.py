"""The clone types (see :mod:`pytest_vsphere_clone.clone_types`) looked up by name, for the client."""

from __future__ import annotations

from ..clone_types import BY_NAME, CLONE_TYPES, COLLAPSE_MODES, FULL, INSTANT, LINKED, CloneType
from .errors import VSphereCloneError

__all__ = ["BY_NAME", "CLONE_TYPES", "COLLAPSE_MODES", "FULL", "INSTANT", "LINKED", "CloneType", "clone_type"]


def clone_type(name: str) -> CloneType:
    """The clone type called ``name``; an error naming the allowed ones otherwise."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise VSphereCloneError(f"clone type {name!r} is not one of {', '.join(CLONE_TYPES)}: check "
                                f"--vsphere-clone-type") from None
