"""Base of every simulated managed object: identity, properties, change tracking.

A simulated object keeps its properties as real pyVmomi data objects, so the
serializer writes them exactly as a vCenter would. Every change bumps the
object's version; the PropertyCollector uses versions to find what changed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pyVmomi import VmomiSupport, vim, vmodl

from .. import auth

if TYPE_CHECKING:
    from ..vcenter import CallContext, VCenter

F = TypeVar("F", bound=Callable[..., Any])


def vmomi_method(privilege: str | None = None, *, on: str | None = None) -> Callable[[F], F]:
    """Mark a Python method as the implementation of the vSphere method of that name.

    The name is the method's WSDL name (``RetrieveProperties``, ``PowerOnVM_Task``) or pyVmomi's
    Python name for it (``RetrieveContents``, ``PowerOn``); requests are dispatched by WSDL name.

    ``privilege`` overrides pyVmomi's own privilege metadata; ``on`` names the
    argument whose entity the privilege is checked on (default: ``_this``).
    """

    def mark(func: F) -> F:
        func._vmomi = (privilege, on)  # type: ignore[attr-defined]
        return func

    return mark


class SimObject:
    """A managed object of the simulated vCenter."""

    vim_type: ClassVar[type] = VmomiSupport.ManagedObject
    #: Properties computed on every read (never stored); they count as changed on every check.
    dynamic_properties: ClassVar[frozenset[str]] = frozenset()
    #: Built by implemented_methods() for each class on first use.
    _wsdl_methods: ClassVar[dict[str, str]]

    def __init__(self, vc: VCenter, mo_id: str) -> None:
        self.vc = vc
        self.mo_id = mo_id
        self.ref = self.vim_type(mo_id)
        self.version = 0
        self.props: dict[str, Any] = {}
        self.alive = True

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.mo_id}>"

    @classmethod
    def property_names(cls) -> list[str]:
        """Every managed property of this type, per pyVmomi's type info."""
        names: list[str] = []
        for klass in cls.vim_type.__mro__:
            prop_info = getattr(klass, "_propInfo", None)
            if prop_info:
                names.extend(n for n in prop_info if n not in names)
        return names

    def get_property(self, name: str) -> Any:
        """The current value of a top-level property (None when unset).

        A client's read without a session gets NotAuthenticated, but for the few properties the
        reference makes System.Anonymous (auth.readable_without_session); the property collector
        reports it in the object's missingSet, Fetch answers it as the call's fault. Reads outside
        a client's call (tasks, the guest runtime) have no call context and are never refused.
        """
        ctx = self.vc.current_context()
        if ctx is not None and ctx.session is None and not auth.readable_without_session(self.vim_type, name):
            raise auth.not_authenticated(self.ref, "System.Read")
        getter = getattr(self, f"prop_{name}", None)
        if getter is not None:
            return getter()
        return self.props.get(name)

    def changed(self) -> None:
        """Record that this object changed (call after any in-place edit)."""
        self.version += 1
        self.vc.notify_change()

    def method(self, wsdl_name: str) -> Callable[..., Any] | None:
        """The implementation of the vSphere method called ``wsdl_name`` on the wire, if any."""
        attribute = type(self).implemented_methods().get(wsdl_name)
        return getattr(self, attribute) if attribute is not None else None

    @classmethod
    def implemented_methods(cls) -> dict[str, str]:
        """WSDL name -> Python attribute of every vSphere method this class implements.

        Clients send WSDL names only; pyVmomi's Python names differ for some methods (its
        ``RetrieveContents`` is ``RetrieveProperties`` on the wire, ``PowerOn`` is ``PowerOnVM_Task``).
        """
        table = cls.__dict__.get("_wsdl_methods")
        if table is None:
            to_wsdl: dict[str, str] = {}
            for klass in reversed(cls.vim_type.__mro__):
                for info in getattr(klass, "_methodInfo", {}).values():
                    to_wsdl[info.name] = info.wsdlName
            wsdl_names = set(to_wsdl.values())
            table = {}
            for attribute in dir(cls):
                if hasattr(getattr(cls, attribute, None), "_vmomi"):
                    table[attribute if attribute in wsdl_names else to_wsdl.get(attribute, attribute)] = attribute
            cls._wsdl_methods = table
        return table


class ManagedEntity(SimObject):
    """Common part of inventory objects: name, parent, custom values, tasks."""

    vim_type = vim.ManagedEntity

    def __init__(self, vc: VCenter, mo_id: str, name: str, parent: SimObject | None) -> None:
        super().__init__(vc, mo_id)
        self.name = name
        self.parent = parent
        self.custom_values: dict[int, str] = {}
        #: Tasks on this entity, running or recently finished (vCenter's recentTask).
        self.recent_tasks: list[SimObject] = []
        self.props.update(
            overallStatus="green",
            configStatus="green",
            alarmActionsEnabled=True,
            disabledMethod=[],
            effectiveRole=[-1],
            permission=[],
            tag=[],
            triggeredAlarmState=[],
            declaredAlarmState=[],
        )

    def prop_recentTask(self) -> list[Any]:
        return [task.ref for task in self.recent_tasks]

    def prop_name(self) -> str:
        return self.name

    def prop_parent(self) -> Any:
        return self.parent.ref if self.parent is not None else None

    def prop_customValue(self) -> list[Any]:
        return [vim.CustomFieldsManager.StringValue(key=k, value=v) for k, v in sorted(self.custom_values.items())]

    def prop_value(self) -> list[Any]:
        return self.prop_customValue()

    def prop_availableField(self) -> list[Any]:
        return self.vc.custom_fields.definitions_for(self.vim_type)

    def children(self) -> list[ManagedEntity]:
        """Entities directly below this one in the inventory tree."""
        return []

    def inventory_path(self) -> str:
        """Slash-separated path from the root folder, as SearchIndex uses."""
        parts: list[str] = []
        node: ManagedEntity | None = self
        while node is not None and node.parent is not None:
            parts.append(node.name)
            node = node.parent if isinstance(node.parent, ManagedEntity) else None
        return "/".join(reversed(parts))

    @vmomi_method("Global.SetCustomField")
    def setCustomValue(self, ctx: CallContext, key: str, value: str) -> None:
        field = self.vc.custom_fields.field_by_name(key)
        if field is None:
            # vmodl, not vim: pyVmomi has no vim.fault.InvalidArgument (it became a SystemError).
            raise vmodl.fault.InvalidArgument(msg=f"Custom field '{key}' is not defined", invalidProperty="key")
        self.custom_values[field] = value
        self.changed()

    @vmomi_method()
    def Rename_Task(self, ctx: CallContext, newName: str) -> Any:
        def rename() -> None:
            self.name = newName
            self.changed()

        return self.vc.tasks.start(ctx, self, "Rename_Task", "rename", rename)
