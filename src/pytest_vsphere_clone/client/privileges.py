"""Privileges the plugin's flows need, checked up front with HasPrivilegeOnEntities.

One table each for what the plugin and ``vsphere-clone doctor`` both check: the flow's privileges, what
each hardware setting adds (:data:`HARDWARE_PRIVILEGES`) and the console screenshots' optional ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from . import clone_types
from .errors import MissingPrivileges, VSphereCloneError

if TYPE_CHECKING:
    from .hardware import HardwareRequest
    from .session import VSphereConnection

#: CloneVM_Task (API reference): "The privilege required on the source virtual machine depends on the source
#: and destination types: source is virtual machine, destination is virtual machine -
#: VirtualMachine.Provisioning.Clone; source is virtual machine, destination is template -
#: VirtualMachine.Provisioning.CreateTemplateFromVM; source is template, destination is virtual machine -
#: VirtualMachine.Provisioning.DeployTemplate; source is template, destination is template -
#: VirtualMachine.Provisioning.CloneTemplate". The plugin always makes virtual machines, so its source needs
#: Clone, or DeployTemplate when it is marked as a template (config.template). InstantClone_Task's privilege is
#: Clone; its source must be powered on, which a template never is.
CLONE_VM_PRIVILEGE = "VirtualMachine.Provisioning.Clone"
DEPLOY_TEMPLATE_PRIVILEGE = "VirtualMachine.Provisioning.DeployTemplate"
#: Needed on the template (and its folder / pool / datastore) by every clone type; the first is the source's
#: (see :func:`source_privilege`).
CLONE_PRIVILEGES = (
    CLONE_VM_PRIVILEGE,
    "VirtualMachine.Inventory.CreateFromExisting",
    "VirtualMachine.Inventory.Delete",
    "VirtualMachine.Interact.PowerOn",
    "VirtualMachine.Interact.PowerOff",
    "Resource.AssignVMToPool",
    "Datastore.AllocateSpace",
    "Global.SetCustomField",
)
#: Extra privileges per clone type and feature.
EXTRA_PRIVILEGES: dict[str, tuple[str, ...]] = {
    "guest": ("VirtualMachine.GuestOperations.Execute", "VirtualMachine.GuestOperations.Query",
              "VirtualMachine.GuestOperations.Modify"),
    "collapse": ("VirtualMachine.State.CreateSnapshot", "VirtualMachine.State.RemoveSnapshot",
                 "VirtualMachine.Provisioning.PromoteDisks"),
    "marker-field": ("Global.ManageCustomFields",),
}
#: What each hardware setting needs on the clones (docs/privileges.md), which inherit the permissions of the
#: folder they are made in: the VirtualMachine.Config privilege of each kind of change to a VM's configuration
#: (VirtualMachineConfigSpec names numCPUs' and memoryMB's "Reconfigure privilege"; ReconfigVM_Task checks
#: them). CloneVM_Task's reference names none of them for CloneSpec.config, so a vCenter may not refuse the
#: clone task; the plugin and the doctor check them up front so that a role made from docs/privileges.md
#: is right wherever the clone's spec is applied. ``networks``: the source's NICs moved to their port
#: groups; ``added-nics``: NICs added beyond the source's.
HARDWARE_PRIVILEGES: dict[str, tuple[str, ...]] = {
    "cpus": ("VirtualMachine.Config.CPUCount",),
    "memory-mb": ("VirtualMachine.Config.Memory",),
    "disks": ("VirtualMachine.Config.AddNewDisk",),
    "networks": ("VirtualMachine.Config.EditDevice",),
    "added-nics": ("VirtualMachine.Config.AddRemoveDevice",),
    "extra-config": ("VirtualMachine.Config.AdvancedConfig",),
}
#: On each port group --vsphere-networks names: a NIC is connected to it.
PORT_GROUP_PRIVILEGE = "Network.Assign"
#: A failed test's console screenshot (docs/reports.md): CreateScreenshot_Task on the clone, then the PNG read
#: over HTTPS from its datastore, which needs Datastore.Browse on the datacenter and the datastore. Optional:
#: without them a failed test has no screenshot, never a failure.
SCREENSHOT_ON_CLONE = "VirtualMachine.Interact.CreateScreenshot"
SCREENSHOT_ON_DATASTORE = "Datastore.Browse"


class MissingHardwarePrivileges(MissingPrivileges):
    """The user lacks privileges the hardware settings in use need; the message names each, the setting
    that needs it and the object it is lacking on."""

    def __init__(self, user: str, gaps: Sequence[tuple[str, Sequence[tuple[str, str]]]], template: str,
                 doctor: str = "") -> None:
        self.user = user
        self.privileges = sorted({p for _, lacking in gaps for p, _ in lacking})
        parts = "; ".join(f"{', '.join(f'{p} ({setting})' for p, setting in lacking)} on {where}"
                          for where, lacking in gaps)
        VSphereCloneError.__init__(
            self, f"vCenter user {user!r} lacks privilege(s) {parts}, which clones of {template!r} need for these "
                  f"hardware settings (a clone inherits its folder's permissions): grant them to the user's role "
                  f"there (or on a parent, with propagation) or drop the settings; `{doctor or 'vsphere-clone doctor'}`"
                  f" checks them all")


def doctor_command(template: str, request: HardwareRequest) -> str:
    """``vsphere-clone doctor --template T --cpus 2 ...``: the doctor run checking these settings (extraConfig
    keys only: a value may be a secret)."""
    import shlex

    args = ["vsphere-clone", "doctor", "--template", template]
    args += ["--cpus", str(request.cpus)] if request.cpus else []
    args += ["--memory-mb", str(request.memory_mb)] if request.memory_mb else []
    for name in request.networks:
        args += ["--networks", name]
    for size in request.disks_gb:
        args += ["--disks", str(size)]
    for key, _ in request.config_pairs():
        args += ["--extra-config", f"{key}=VALUE"]
    return shlex.join(args)


def source_privilege(is_template: bool) -> str:
    """The privilege cloning a VM from this source needs on it: DeployTemplate from a vSphere template
    (``config.template``), Clone from a virtual machine (see :data:`DEPLOY_TEMPLATE_PRIVILEGE`)."""
    return DEPLOY_TEMPLATE_PRIVILEGE if is_template else CLONE_VM_PRIVILEGE


def required_privileges(clone_type: str = "linked", *, guest_ops: bool = True, collapse: bool = False,
                        source_is_template: bool = False) -> list[str]:
    """The privileges a run with these settings needs (from a vSphere template: DeployTemplate, not Clone)."""
    wanted = [source_privilege(source_is_template) if p == CLONE_VM_PRIVILEGE else p for p in CLONE_PRIVILEGES]
    wanted += clone_types.clone_type(clone_type).extra_privileges
    if guest_ops:
        wanted += EXTRA_PRIVILEGES["guest"]
    if collapse:
        wanted += EXTRA_PRIVILEGES["collapse"]
    return sorted(set(wanted))


def hardware_needs(request: HardwareRequest, nic_count: int | None) -> list[tuple[str, str]]:
    """(privilege, the setting that needs it) for the hardware settings in use, from HARDWARE_PRIVILEGES;
    ``nic_count``: the source's NICs (None: unknown, so NICs may be added)."""
    used = {"cpus": request.cpus, "memory-mb": request.memory_mb, "disks": request.disks_gb,
            "networks": request.networks, "extra-config": request.extra_config,
            "added-nics": request.networks and (nic_count is None or len(request.networks) > nic_count)}
    return [(privilege, f"--vsphere-{'networks' if key == 'added-nics' else key}")
            for key, privileges in HARDWARE_PRIVILEGES.items() if used[key] for privilege in privileges]


def hardware_privileges(request: HardwareRequest, nic_count: int | None) -> list[str]:
    """The VirtualMachine.Config privileges the hardware settings in use need (see :func:`hardware_needs`)."""
    return [privilege for privilege, _ in hardware_needs(request, nic_count)]


def missing_privileges(conn: VSphereConnection, entities: Sequence[Any],
                       privileges: Iterable[str]) -> dict[Any, list[str]]:
    """entity -> privileges the session's user lacks on it (only entities lacking something)."""
    manager = conn.content.authorizationManager
    assert manager is not None
    wanted = sorted(set(privileges))
    session = conn.session_key
    answers = conn.call(manager.HasPrivilegeOnEntities, list(entities), session, wanted,
                        what="HasPrivilegeOnEntities") or []
    missing: dict[Any, list[str]] = {}
    for answer in answers:
        lacking = [p.privId for p in answer.privAvailability or () if not p.isGranted]
        if lacking:
            missing[answer.entity] = lacking
    return missing


def check_privileges(conn: VSphereConnection, entities: Sequence[Any], privileges: Iterable[str],
                     where: str = "") -> None:
    """Raise MissingPrivileges listing every privilege the user lacks on ``entities``."""
    missing = missing_privileges(conn, entities, privileges)
    if missing:
        lacking = sorted({p for privs in missing.values() for p in privs})
        raise MissingPrivileges(conn.user, lacking, where)


def check_hardware_privileges(conn: VSphereConnection, request: HardwareRequest, nic_count: int | None, *,
                              folder: Any, port_groups: Sequence[Any], template: str,
                              label: Callable[[Any], str]) -> None:
    """Raise MissingHardwarePrivileges naming what the hardware settings in use lack (one
    HasPrivilegeOnEntities call): the VirtualMachine.Config ones on ``folder``, where the clones are made,
    and Network.Assign on each of ``port_groups``. ``label`` names an entity (``folder 'vm'``)."""
    needs = hardware_needs(request, nic_count)
    pairs: list[tuple[Any, list[tuple[str, str]]]] = [(folder, needs)] if needs else []
    pairs += [(group, [(PORT_GROUP_PRIVILEGE, "--vsphere-networks")]) for group in port_groups]
    if not pairs:
        return
    missing = missing_privileges(conn, [entity for entity, _ in pairs], {p for _, wanted in pairs for p, _ in wanted})
    gaps = []
    for entity, wanted in pairs:
        lacking = set(missing.get(entity, ()))
        if any(p in lacking for p, _ in wanted):
            gaps.append((label(entity), [(p, setting) for p, setting in wanted if p in lacking]))
    if gaps:
        raise MissingHardwarePrivileges(conn.user, gaps, template, doctor_command(template, request))

