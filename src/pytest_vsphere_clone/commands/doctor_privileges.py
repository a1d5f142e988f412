"""The doctor's privilege checks: with templates, each privilege of the run's flow is checked on
the object vCenter checks it on (the template, its folder, resource pool and datastores, the root
for the marker field) with one HasPrivilegeOnEntities call, and a FAIL names what is lacking where;
without templates, the whole set is checked on the inventory root, where a lack is only a WARN
(permissions may be granted further down). Hardware settings add their VirtualMachine.Config
privileges (and Network.Assign on --networks' port groups) only when given. The console screenshots'
privileges have a line of their own, a WARN when lacking: a failed test's screenshot is optional evidence.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..client import clone_types
from ..client.privileges import PORT_GROUP_PRIVILEGE, SCREENSHOT_ON_CLONE, SCREENSHOT_ON_DATASTORE
from ._common import describe_exception

if TYPE_CHECKING:
    from ..client.inventory import Inventory, TemplateInfo
    from ..client.session import VSphereConnection
    from .doctor_hardware import HardwareNeeds
    from .doctor_plan import Plan
    from .doctor_report import Report

GUEST_PRIVILEGES = ("VirtualMachine.GuestOperations.Execute", "VirtualMachine.GuestOperations.Query",
                    "VirtualMachine.GuestOperations.Modify")


def privilege_plan(info: TemplateInfo, clone_type: str, collapse: str, field_defined: bool,
                   root: Any, hardware: HardwareNeeds | None = None) -> list[tuple[Any, list[str]]]:
    """(entity, privileges) pairs: each privilege on the object vCenter checks it on (permissions inherit).

    ``hardware``: what the hardware settings in use add (none without them)."""
    from ..client.privileges import EXTRA_PRIVILEGES, required_privileges, source_privilege

    # CloneVM_Task's privilege on the source: DeployTemplate when it is a vSphere template, else Clone.
    on_vm = [source_privilege(info.is_template)]
    if collapse != "none":
        on_vm += EXTRA_PRIVILEGES["collapse"]
    # Clones are created in (and inherit their permissions from) the template's folder.
    on_folder = ["VirtualMachine.Inventory.CreateFromExisting", "VirtualMachine.Inventory.Delete",
                 "VirtualMachine.Interact.PowerOn", "VirtualMachine.Interact.PowerOff", "Global.SetCustomField",
                 *GUEST_PRIVILEGES]
    on_folder += clone_types.clone_type(clone_type).extra_privileges
    if hardware is not None:  # the clones are reconfigured as they are made: they inherit the folder's
        on_folder += hardware.on_clone
    pairs: list[tuple[Any, list[str]]] = [(info.ref, on_vm), (info.folder, on_folder)]
    if info.resource_pool is not None:
        pairs.append((info.resource_pool, ["Resource.AssignVMToPool"]))
    pairs += [(datastore, ["Datastore.AllocateSpace"]) for datastore in info.datastores]
    if hardware is not None:
        pairs += [(network, [PORT_GROUP_PRIVILEGE]) for network in hardware.port_groups]
    if not field_defined:
        pairs.append((root, list(EXTRA_PRIVILEGES["marker-field"])))
    # Whatever the client layer requires and is not placed above is checked where clones live.
    placed = {p for _, privileges in pairs for p in privileges}
    required = required_privileges(clone_type, guest_ops=True, collapse=collapse != "none",
                                   source_is_template=info.is_template)
    on_folder += [p for p in required if p not in placed]
    return [(entity, sorted(set(privileges))) for entity, privileges in pairs if entity is not None]


def _lacking(conn: VSphereConnection, pairs: list[tuple[Any, list[str]]]) -> dict[Any, list[str]]:
    from ..client.privileges import missing_privileges

    union = sorted({p for _, privileges in pairs for p in privileges})
    missing = missing_privileges(conn, [entity for entity, _ in pairs], union)
    lacking = {}
    for entity, privileges in pairs:
        gap = sorted(set(missing.get(entity, ())) & set(privileges))
        if gap:
            lacking[entity] = gap
    return lacking


def _entity_label(inventory: Inventory, entity: Any) -> str:
    if entity not in inventory.objects:  # the root folder: the view lists what is below it
        return "the inventory root"
    kind = type(entity).__name__.rsplit(".", 1)[-1]
    if kind == "VirtualMachine" and inventory.objects[entity].get("config.template"):
        kind = "vSphere template"
    kind = {"VirtualMachine": "VM", "Folder": "folder", "ResourcePool": "resource pool", "Datastore": "datastore",
            "ClusterComputeResource": "cluster", "Datacenter": "datacenter", "Network": "port group",
            "DistributedVirtualPortgroup": "port group"}.get(kind, kind)
    return f"{inventory.name(entity)} ({kind})"


def check_privileges(conn: VSphereConnection, inventory: Inventory, info: TemplateInfo, plan: Plan,
                     report: Report, field_defined: bool, hardware: HardwareNeeds | None = None) -> None:
    """Each privilege of the flow on the object it is checked on; a FAIL names what is lacking where."""
    label = f"privileges for {info.name}"
    pairs = privilege_plan(info, plan.clone_type, plan.collapse, field_defined, conn.content.rootFolder, hardware)
    try:
        lacking = _lacking(conn, pairs)
    except Exception as exc:
        report.fail(label, f"could not check them with HasPrivilegeOnEntities ({describe_exception(exc)}): ask the "
                           f"vCenter administrator to check the user's role")
        return
    total = len({p for _, privileges in pairs for p in privileges})
    flow = f"{plan.clone_type} clones with Guest Operations" + (f" and collapse={plan.collapse}"
                                                                if plan.collapse != "none" else "")
    if hardware is not None and (hardware.on_clone or hardware.port_groups):
        flow += " and the hardware settings"
    if not lacking:
        where = ", ".join(_entity_label(inventory, entity) for entity, _ in pairs)
        report.ok(label, f"user {conn.user!r} has all {total} privileges {flow} need (on {where})")
        return
    parts = "; ".join(f"{', '.join(privileges)} on {_entity_label(inventory, entity)}"
                      for entity, privileges in lacking.items())
    report.fail(label, f"user {conn.user!r} lacks {parts}: grant them to the user's role on those objects (or a "
                       f"parent, with propagation)")


def check_root_privileges(conn: VSphereConnection, plan: Plan, report: Report, field_defined: bool) -> None:
    """The flow's privileges on the inventory root (no template given): a lack there is a WARN."""
    from ..client.privileges import EXTRA_PRIVILEGES, hardware_privileges, missing_privileges, required_privileges

    wanted = required_privileges(plan.clone_type, guest_ops=True, collapse=plan.collapse != "none")
    if plan.hardware is not None:
        wanted += hardware_privileges(plan.hardware, None)
    if not field_defined:
        wanted += EXTRA_PRIVILEGES["marker-field"]
    root = conn.content.rootFolder
    try:
        missing = missing_privileges(conn, [root], wanted)
    except Exception as exc:
        report.fail("privileges", f"could not check them with HasPrivilegeOnEntities ({describe_exception(exc)}): "
                                  f"ask the vCenter administrator to check the user's role")
        return
    lacking = sorted({p for privileges in missing.values() for p in privileges})
    if lacking:
        report.warn("privileges", f"user {conn.user!r} lacks {', '.join(lacking)} on the inventory root; they may "
                                  f"be granted further down: pass --template to check where clones are made")
    else:
        report.ok("privileges", f"user {conn.user!r} has all {len(set(wanted))} privileges on the inventory root")


def check_screenshot_privileges(conn: VSphereConnection, inventory: Inventory, info: TemplateInfo,
                                report: Report) -> None:
    """A WARN (never a FAIL) when a failed test's clones could not get console screenshots: the run goes on
    without them, one warning line each."""
    label = f"screenshot privileges for {info.name}"
    pairs: list[tuple[Any, list[str]]] = [(info.folder, [SCREENSHOT_ON_CLONE])]
    pairs += [(entity, [SCREENSHOT_ON_DATASTORE]) for entity in (info.datacenter, *info.datastores)
              if entity is not None]
    try:
        lacking = _lacking(conn, pairs)
    except Exception as exc:
        report.warn(label, f"could not check them with HasPrivilegeOnEntities ({describe_exception(exc)}); a failed "
                           f"test's clones get console screenshots only with {SCREENSHOT_ON_CLONE} and "
                           f"{SCREENSHOT_ON_DATASTORE}")
        return
    if not lacking:
        where = ", ".join(_entity_label(inventory, entity) for entity, _ in pairs)
        report.ok(label, f"user {conn.user!r} has {SCREENSHOT_ON_CLONE} and {SCREENSHOT_ON_DATASTORE} (on {where}): "
                         f"a failed test's clones get console screenshots")
        return
    parts = "; ".join(f"{', '.join(privileges)} on {_entity_label(inventory, entity)}"
                      for entity, privileges in lacking.items())
    report.warn(label, f"user {conn.user!r} lacks {parts}: a failed test's clones get no console screenshot (a "
                       f"warning line instead); grant them to the user's role for that evidence")
