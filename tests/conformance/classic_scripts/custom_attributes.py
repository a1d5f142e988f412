#!/usr/bin/env python3
"""Set a custom attribute on a VM, the two ways scripts do, and read it back.

Defines the attribute with CustomFieldsManager.AddCustomFieldDef when it is missing, sets it with
``vm.setCustomValue`` and then with ``CustomFieldsManager.SetField``, reads ``vm.customValue`` and
``vm.summary.customValue``, and with ``--remove`` removes the definition again.
"""

from __future__ import annotations

import sys
from typing import Any

from pyVmomi import vim
from tools import cli, pchelper, service_instance, tasks


def values(vm: vim.VirtualMachine, fields: dict[int, str]) -> dict[str, str]:
    """The VM's custom values by attribute name, read from ``vm.customValue``."""
    return {fields.get(value.key, str(value.key)): value.value for value in vm.customValue}


def main() -> int:
    parser = cli.build_parser(__doc__.splitlines()[0])
    parser.add_argument("-v", "--vm-name", required=True, help="name of the VM")
    parser.add_argument("--attribute", required=True, help="custom attribute name")
    parser.add_argument("--value", required=True, help="value to set")
    parser.add_argument("--remove", action="store_true", help="remove the attribute's definition at the end")
    args = cli.parse(parser)
    si = service_instance.connect(args)
    content = si.RetrieveContent()
    manager = content.customFieldsManager
    vm = pchelper.get_obj(content, vim.VirtualMachine, args.vm_name)
    if vm is None:
        tasks.fail(f"no VM called {args.vm_name}")

    field: Any = next((f for f in manager.field if f.name == args.attribute), None)
    if field is None:
        field = manager.AddCustomFieldDef(name=args.attribute, moType=vim.VirtualMachine)
        print(f"AddCustomFieldDef: {field.name} key={field.key} type={field.managedObjectType.__name__}")
    else:
        print(f"Custom attribute {field.name} exists, key={field.key}")
    try:
        manager.AddCustomFieldDef(name=args.attribute, moType=vim.VirtualMachine)
    except vim.fault.DuplicateName:
        print(f"AddCustomFieldDef({args.attribute}) again: DuplicateName")
    else:
        tasks.fail(f"a second AddCustomFieldDef({args.attribute}) succeeded")
    available = [f.name for f in vm.availableField]
    print(f"{vm.name} availableField: {', '.join(available)}")
    if args.attribute not in available:
        tasks.fail(f"{args.attribute} is not among the VM's availableField")

    fields = {f.key: f.name for f in manager.field}
    vm.setCustomValue(key=args.attribute, value=f"{args.value} (setCustomValue)")
    print(f"setCustomValue: {values(vm, fields)}")
    manager.SetField(entity=vm, key=field.key, value=args.value)
    got = values(vm, fields)
    print(f"SetField: {got}")
    summary = {fields.get(v.key, str(v.key)): v.value for v in vm.summary.customValue}
    print(f"summary.customValue: {summary}")
    if got.get(args.attribute) != args.value or summary.get(args.attribute) != args.value:
        tasks.fail(f"{args.attribute} reads {got.get(args.attribute)!r} (summary "
                   f"{summary.get(args.attribute)!r}), set to {args.value!r}")
    print(f"{vm.name}: {args.attribute}={args.value}")

    if args.remove:
        manager.RemoveCustomFieldDef(key=field.key)
        left = [f.name for f in manager.field]
        if args.attribute in left or any(v.key == field.key for v in vm.customValue):
            tasks.fail(f"{args.attribute} still defined or set after RemoveCustomFieldDef")
        print(f"RemoveCustomFieldDef: {args.attribute} removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
