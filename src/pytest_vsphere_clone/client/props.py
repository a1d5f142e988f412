"""Batched property retrieval: many properties of many objects in one RetrievePropertiesEx.

Reading ``vm.name`` on a pyVmomi object is one round trip per attribute; these helpers
fetch everything needed at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .session import VSphereConnection

#: Objects per page: RetrievePropertiesEx answers in pages of this size, continued by token.
PAGE_SIZE = 500


class ObjectProps(dict[str, Any]):
    """The retrieved properties of one object (path -> value; unset ones absent), plus its ``ref``."""

    def __init__(self, ref: Any, values: Mapping[str, Any] | None = None) -> None:
        super().__init__(values or {})
        self.ref = ref

    def __repr__(self) -> str:
        return f"ObjectProps({self.ref!r}, {dict(self)!r})"


def _pc() -> Any:
    from pyVmomi import vmodl

    return vmodl.query.PropertyCollector


def property_spec(kind: type, paths: Sequence[str]) -> Any:
    """A PropertySpec for ``paths`` of objects of type ``kind``."""
    return _pc().PropertySpec(type=kind, pathSet=list(paths), all=False)


def _collect(conn: VSphereConnection, specs: list[Any]) -> list[ObjectProps]:
    """RetrievePropertiesEx plus continuation pages; returns one ObjectProps per object."""
    pc = _pc()
    collector = conn.content.propertyCollector
    assert collector is not None
    options = pc.RetrieveOptions(maxObjects=PAGE_SIZE)
    result = conn.call(collector.RetrievePropertiesEx, specs, options, what="RetrievePropertiesEx")
    found: list[ObjectProps] = []
    while result is not None:
        for content in result.objects or ():
            found.append(ObjectProps(content.obj, {prop.name: prop.val for prop in content.propSet or ()}))
        token = result.token
        if not token:
            break
        result = conn.call(collector.ContinueRetrievePropertiesEx, token, what="ContinueRetrievePropertiesEx")
    return found


def retrieve(conn: VSphereConnection, objects: Iterable[Any], paths: Sequence[str],
             extra: Sequence[tuple[Any, Sequence[str]]] = ()) -> dict[Any, ObjectProps]:
    """``paths`` of every object in ``objects`` (and ``(obj, paths)`` pairs in ``extra``), in one call.

    Returns ref -> ObjectProps; an object that no longer exists raises ManagedObjectNotFound.
    """
    pc = _pc()
    pairs = [(obj, list(paths)) for obj in objects] + [(obj, list(p)) for obj, p in extra]
    if not pairs:
        return {}
    specs = [pc.FilterSpec(objectSet=[pc.ObjectSpec(obj=obj, skip=False)],
                           propSet=[property_spec(type(obj), obj_paths)]) for obj, obj_paths in pairs]
    merged: dict[Any, ObjectProps] = {}
    for props in _collect(conn, specs):
        merged.setdefault(props.ref, ObjectProps(props.ref)).update(props)
    return merged


def read(conn: VSphereConnection, obj: Any, paths: Sequence[str]) -> ObjectProps:
    """``paths`` of one object, in one call."""
    return retrieve(conn, [obj], paths).get(obj) or ObjectProps(obj)


def container_contents(conn: VSphereConnection, types_paths: Mapping[type, Sequence[str]], *,
                       root: Any = None, recursive: bool = True,
                       extra: Sequence[tuple[Any, Sequence[str]]] = ()) -> list[ObjectProps]:
    """Properties of every object of the given types below ``root`` (default: the root folder).

    One ContainerView, one RetrievePropertiesEx (plus pages) and DestroyView. ``extra``
    ``(obj, paths)`` pairs ride along in the same call (e.g. the CustomFieldsManager's fields).
    """
    pc = _pc()
    from pyVmomi import vim

    content = conn.content
    view_manager = content.viewManager
    assert view_manager is not None
    container = root if root is not None else content.rootFolder
    view = conn.call(view_manager.CreateContainerView, container, list(types_paths), recursive,
                     what="CreateContainerView")
    try:
        traversal = pc.TraversalSpec(name="view", type=vim.view.ContainerView, path="view", skip=False)
        specs = [pc.FilterSpec(objectSet=[pc.ObjectSpec(obj=view, skip=True, selectSet=[traversal])],
                               propSet=[property_spec(kind, paths) for kind, paths in types_paths.items()])]
        specs += [pc.FilterSpec(objectSet=[pc.ObjectSpec(obj=obj, skip=False)],
                                propSet=[property_spec(type(obj), paths)]) for obj, paths in extra]
        return _collect(conn, specs)
    finally:
        _destroy_view(conn, view)


def _destroy_view(conn: VSphereConnection, view: Any) -> None:
    """DestroyView; a view already gone (a retried call whose first answer was lost) is fine."""
    from . import faults

    try:
        conn.call(view.DestroyView, what="DestroyView")
    except Exception as exc:
        if not faults.is_not_found(exc):
            raise
