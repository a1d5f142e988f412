"""Reading properties and selecting objects as a PropertyCollector does, for retrievals and filters alike.

A property path (``runtime.powerState``) is read with the type the vmodl declares for it, so the
serializer sends arrays and enums as a vCenter does; a FilterSpec's objectSet and traversal specs
select the objects, its PropertySpecs the paths on each; a property that faults when read becomes
a MissingProperty. The collector (property_collector.py) builds retrievals and updates from these.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyVmomi import VmomiSupport, vmodl

from .base import SimObject

if TYPE_CHECKING:
    from ..vcenter import VCenter

PC = vmodl.query.PropertyCollector


def _invalid_property(path: str) -> vmodl.query.InvalidProperty:
    return vmodl.query.InvalidProperty(msg=f"Property '{path}' is not valid", name=path)


def _declared_type(obj: SimObject, name: str) -> Any:
    for klass in obj.vim_type.__mro__:
        info = getattr(klass, "_propInfo", {}).get(name)
        if info is not None:
            return info.type
    raise _invalid_property(name)


def _typed(value: Any, declared: Any) -> Any:
    """Give plain Python lists the pyVmomi array type the serializer needs, plain strings their enum type.

    An enum value is sent typed by its enum, as a vCenter does (<val xsi:type="VirtualMachinePowerState">),
    not as xsd:string.
    """
    if isinstance(value, list) and not hasattr(value, "Item") and issubclass(declared, list):
        return declared(value)
    if isinstance(value, str) and not isinstance(value, VmomiSupport.Enum) and issubclass(declared, VmomiSupport.Enum):
        return declared(value)
    return value


def read_path(obj: SimObject, path: str) -> Any:
    """The value at a property path such as ``runtime.powerState`` (None when unset)."""
    top, _, rest = path.partition(".")
    declared = _declared_type(obj, top)
    value = _typed(obj.get_property(top), declared)
    for part in rest.split(".") if rest else ():
        if value is None:
            return None
        if not isinstance(value, VmomiSupport.DataObject):
            raise _invalid_property(path)
        try:
            info = value._GetPropertyInfo(part)
        except AttributeError:
            raise _invalid_property(path) from None
        # Arrays built from plain lists inside data objects need their pyVmomi type to be sent as anyType.
        value = _typed(getattr(value, part), info.type)
    return value


def property_type(obj: SimObject, path: str) -> Any:
    """The declared pyVmomi type at ``path`` (for answering a Fetch)."""
    top, _, rest = path.partition(".")
    kind = _declared_type(obj, top)
    for part in rest.split(".") if rest else ():
        item = kind.Item if issubclass(kind, list) else kind
        kind = item._GetPropertyInfo(part).type
    return kind


def _is_set(value: Any) -> bool:
    # An empty array is a value: vCenter sends <val xsi:type="ArrayOfManagedObjectReference"></val>
    # for a VM's empty rootSnapshot (recorded in govmomi #1065); only an unset property is left out.
    return value is not None


def _refs(value: Any) -> Iterator[Any]:
    # pyVmomi has no vmodl.ManagedObject attribute: the base class lives in VmomiSupport.
    if value is None:
        return
    if isinstance(value, list):
        for item in value:
            if isinstance(item, VmomiSupport.ManagedObject):
                yield item
    elif isinstance(value, VmomiSupport.ManagedObject):
        yield value


@dataclass
class Selection:
    """What a FilterSpec selects: the objects reached, and the objectSet references that name none."""

    objects: list[SimObject]
    missing: list[Any]


def select_objects(vc: VCenter, spec: Any, strict: bool,
                   read: Callable[[SimObject, str], Any] = read_path) -> Selection:
    """The objects a FilterSpec's objectSet and traversal specs reach, in order, without duplicates.

    ``read`` reads a traversal's path (a filter's updates pass one that hides what the server
    does not notify).
    """
    named: dict[str, Any] = {}

    def collect_names(selects: Iterable[Any]) -> None:
        for sel in selects or ():
            if isinstance(sel, PC.TraversalSpec):
                if sel.name and sel.name not in named:
                    named[sel.name] = sel
                    collect_names(sel.selectSet)
                elif not sel.name:
                    collect_names(sel.selectSet)

    for object_spec in spec.objectSet or ():
        collect_names(object_spec.selectSet)

    found: dict[str, SimObject] = {}
    missing: list[Any] = []
    visited: set[tuple[int, str]] = set()

    def traverse(obj: SimObject, selects: Iterable[Any]) -> None:
        for sel in selects or ():
            traversal = sel if isinstance(sel, PC.TraversalSpec) else named.get(sel.name)
            if traversal is None:
                raise vmodl.fault.InvalidArgument(msg=f"SelectionSpec '{sel.name}' names no TraversalSpec",
                                                  invalidProperty="selectSet")
            if not isinstance(obj.ref, traversal.type):
                continue
            key = (id(traversal), obj.mo_id)
            if key in visited:
                continue
            visited.add(key)
            for ref in _refs(read(obj, traversal.path)):
                child = vc.objects.get(ref._moId)
                if child is None:
                    continue
                if not traversal.skip:
                    found.setdefault(child.mo_id, child)
                traverse(child, traversal.selectSet)

    for object_spec in spec.objectSet or ():
        try:
            start = vc.lookup(object_spec.obj)
        except vmodl.fault.ManagedObjectNotFound:
            if strict and not spec.reportMissingObjectsInResults:
                raise
            missing.append(object_spec.obj)
            continue
        if not object_spec.skip:
            found.setdefault(start.mo_id, start)
        traverse(start, object_spec.selectSet)
    return Selection(list(found.values()), missing)


def reported_objects(objects: list[SimObject], prop_specs: Iterable[Any]) -> list[SimObject]:
    """The selected objects a PropertySpec names the type of: a vCenter leaves out the others."""
    types = tuple(prop_spec.type for prop_spec in prop_specs or ())
    return [obj for obj in objects if isinstance(obj.ref, types)]


def wanted_paths(obj: SimObject, prop_specs: Iterable[Any]) -> list[str]:
    """The property paths the spec asks for on ``obj``."""
    paths: list[str] = []
    for prop_spec in prop_specs or ():
        if not isinstance(obj.ref, prop_spec.type):
            continue
        names = obj.property_names() if prop_spec.all else list(prop_spec.pathSet or ())
        for name in names:
            if name not in paths:
                paths.append(name)
    return paths


def read_properties(obj: SimObject, paths: list[str]) -> tuple[dict[str, Any], list[Any]]:
    """Values of ``paths`` on ``obj`` (unset ones left out) and MissingProperty entries."""
    values: dict[str, Any] = {}
    missing: list[Any] = []
    for path in paths:
        try:
            value = read_path(obj, path)
        except vmodl.query.InvalidProperty:
            raise
        except vmodl.MethodFault as fault:
            missing.append(vmodl.query.PropertyCollector.MissingProperty(path=path, fault=fault))
            continue
        if _is_set(value):
            values[path] = value
    return values, missing


def object_content(obj: SimObject, values: dict[str, Any], missing: list[Any]) -> Any:
    """One object's ObjectContent in a retrieval."""
    return PC.ObjectContent(
        obj=obj.ref,
        propSet=[vmodl.DynamicProperty(name=name, val=value) for name, value in values.items()],
        missingSet=missing,
    )


def declared_type_for_type(kind: Any, name: str) -> Any:
    """The declared type of property ``name`` of the managed type ``kind`` (InvalidProperty if none)."""
    for klass in kind.__mro__:
        info = getattr(klass, "_propInfo", {}).get(name)
        if info is not None:
            return info.type
    raise _invalid_property(name)
