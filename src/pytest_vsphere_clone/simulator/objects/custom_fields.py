"""CustomFieldsManager: custom attribute definitions and the values on entities."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyVmomi import vim, vmodl

from .base import ManagedEntity, SimObject, vmomi_method

if TYPE_CHECKING:
    from ..vcenter import CallContext


class CustomFieldsRegistry:
    """Field definitions, shared by the manager and every entity's ``availableField``."""

    def __init__(self) -> None:
        self.fields: dict[int, Any] = {}
        self._next_key = 100

    def add(self, name: str, mo_type: Any, owner: Any) -> Any:
        """A new field definition; ``owner`` (the manager's ref) is the DuplicateName fault's required object."""
        for field in self.fields.values():
            if field.name == name and field.managedObjectType == mo_type:
                raise vim.fault.DuplicateName(msg=f"The name '{name}' already exists.", name=name, object=owner)
        self._next_key += 1
        field = vim.CustomFieldsManager.FieldDef(
            key=self._next_key, name=name, type=str, managedObjectType=mo_type,
            fieldDefPrivileges=vim.PrivilegePolicyDef(
                createPrivilege="System.Read", readPrivilege="System.Read", updatePrivilege="System.Read"),
            fieldInstancePrivileges=vim.PrivilegePolicyDef(
                createPrivilege="System.Read", readPrivilege="System.Read", updatePrivilege="System.Read"),
        )
        self.fields[field.key] = field
        return field

    def field_by_name(self, name: str) -> int | None:
        for key, field in self.fields.items():
            if field.name == name:
                return key
        return None

    def definitions_for(self, mo_type: Any) -> list[Any]:
        return [f for f in self.fields.values()
                if f.managedObjectType is None or issubclass(mo_type, f.managedObjectType)]


class CustomFieldsManager(SimObject):
    """vim.CustomFieldsManager."""

    vim_type = vim.CustomFieldsManager

    def prop_field(self) -> list[Any]:
        return list(self.vc.custom_fields.fields.values())

    @vmomi_method("Global.ManageCustomFields")
    def AddCustomFieldDef(self, ctx: CallContext, name: str, moType: Any = None, fieldDefPolicy: Any = None,
                          fieldPolicy: Any = None) -> Any:
        with self.vc.lock:
            field = self.vc.custom_fields.add(name, moType, self.ref)
            self.changed()
            return field

    @vmomi_method("Global.ManageCustomFields")
    def RemoveCustomFieldDef(self, ctx: CallContext, key: int) -> None:
        with self.vc.lock:
            if self.vc.custom_fields.fields.pop(key, None) is None:
                raise vmodl.fault.InvalidArgument(msg=f"Custom field {key} does not exist", invalidProperty="key")
            for entity in self.vc.of_type(ManagedEntity):
                if entity.custom_values.pop(key, None) is not None:
                    entity.changed()
            self.changed()

    @vmomi_method("Global.ManageCustomFields")
    def RenameCustomFieldDef(self, ctx: CallContext, key: int, name: str) -> None:
        with self.vc.lock:
            field = self.vc.custom_fields.fields.get(key)
            if field is None:
                raise vmodl.fault.InvalidArgument(msg=f"Custom field {key} does not exist", invalidProperty="key")
            field.name = name
            self.changed()

    @vmomi_method("Global.SetCustomField", on="entity")
    def SetField(self, ctx: CallContext, entity: Any, key: int, value: str) -> None:
        with self.vc.lock:
            target = self.vc.lookup_as(entity, ManagedEntity)
            if key not in self.vc.custom_fields.fields:
                raise vmodl.fault.InvalidArgument(msg=f"Custom field {key} does not exist", invalidProperty="key")
            target.custom_values[key] = value
            target.changed()
