"""The doctor's hardware checks, when ``--cpus``, ``--memory-mb``, ``--networks``, ``--disks`` or
``--extra-config`` is given: the port groups exist in the template's datacenter and the clone type can
take the changes (the client's own lookup and check, client/hardware.py, so the lines are the ones a
run would stop with), and which privileges the settings in use add (the client's table,
client/privileges.py, which the plugin's start-up check uses too).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..client import clone_types
from ..client.privileges import hardware_privileges
from ._common import describe_exception

if TYPE_CHECKING:
    from ..client.hardware import HardwareRequest
    from ..client.inventory import Inventory, TemplateInfo
    from ..client.session import VSphereConnection
    from .doctor_plan import Plan
    from .doctor_report import Report


@dataclass(frozen=True)
class HardwareNeeds:
    """What a template's hardware settings add to its privilege plan."""

    #: Privileges on the clones (checked on the folder they are made in, whose permissions they inherit).
    on_clone: tuple[str, ...] = ()
    #: The port groups found for --networks: a NIC on one needs Network.Assign there.
    port_groups: tuple[Any, ...] = ()


def describe(request: HardwareRequest) -> str:
    """``2 CPUs, 2048 MB, 1 extra disk (8 GB), extraConfig keys guestinfo.role``: never a value of extraConfig
    (a guestinfo value may be a token for the guest)."""
    parts = []
    if request.cpus:
        parts.append(f"{request.cpus} CPU{'s' if request.cpus != 1 else ''}")
    if request.memory_mb:
        parts.append(f"{request.memory_mb} MB of memory")
    if request.networks:
        parts.append(f"{len(request.networks)} NIC{'s' if len(request.networks) != 1 else ''} on named port groups")
    if request.disks_gb:
        sizes = ", ".join(f"{size} GB" for size in request.disks_gb)
        parts.append(f"{len(request.disks_gb)} extra disk{'s' if len(request.disks_gb) != 1 else ''} ({sizes})")
    if request.extra_config:
        parts.append(f"extraConfig keys {', '.join(key for key, _ in request.config_pairs())}")
    return ", ".join(parts)


def check_hardware(conn: VSphereConnection, inventory: Inventory, info: TemplateInfo, plan: Plan,
                   report: Report) -> HardwareNeeds:
    """The port groups line (with --networks) and the clone type's line; what the settings add to the
    privilege plan. Nothing when no hardware setting is given."""
    from pyVmomi import vim

    from ..client.hardware import HardwareError, ResolvedHardware, instant_problem, resolve_hardware, source_devices

    request = plan.hardware
    if request is None:
        return HardwareNeeds()
    label = f"hardware for {info.name}"
    devices: list[Any] | None = None
    if request.networks:  # how many NICs the source has decides what an instant clone can take
        try:
            devices = source_devices(conn, info.ref)
        except Exception as exc:
            report.fail(label, f"could not read the devices of {info.name} ({describe_exception(exc)})")
    resolved = ResolvedHardware(request)
    if request.networks:
        try:
            resolved = resolve_hardware(inventory, info, request)
        except HardwareError as exc:
            report.fail(f"port groups for {info.name}", str(exc))
        else:
            nics = ", ".join(f"NIC {index} on {group.name!r}" for index, group in enumerate(resolved.port_groups, 1))
            report.ok(f"port groups for {info.name}", f"{nics}: found among the datacenter's networks")
    kind = clone_types.clone_type(plan.clone_type)
    problem = None
    if not kind.configurable_hardware and (devices is not None or not request.networks):
        problem = instant_problem(resolved, devices or [], info.name)
    if problem:
        report.fail(label, problem)
    elif devices is not None or not request.networks:
        report.ok(label, f"{plan.clone_type} clones of {info.name} can take {describe(request)}")
    nic_count = None if devices is None else \
        sum(isinstance(d, vim.vm.device.VirtualEthernetCard) for d in devices)
    return HardwareNeeds(tuple(hardware_privileges(request, nic_count)),
                         tuple(group.ref for group in resolved.port_groups))
