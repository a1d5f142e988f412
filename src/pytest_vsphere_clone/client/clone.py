"""Clone strategies: linked, full and instant clones of a template, and their clone specs.

:func:`clone_vm` runs a :class:`~.clone_request.CloneRequest` through the strategy of its clone
type. Each strategy checks its source, builds its spec (placement, NIC edits, the marker as the
annotation, the hardware plan of ``hardware.py``), starts its clone call and does what must follow
it (an instant clone's NIC reconnect); the lifecycle they share (the call safe against lost answers,
destroying a half-made clone, the power-on) is ``clone_request.py``'s.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from . import clone_types, props
from .clone_request import CloneRequest, CloneResult, CloneStrategy
from .clone_types import FULL, INSTANT, LINKED
from .errors import InvalidInstantSource, InvalidPlacement, NoSnapshot
from .hardware import HardwareError, HardwarePlan, network_backing
from .inventory import TemplateInfo
from .marker import marker_option
from .retry import RetryPolicy
from .waiter import Waiter

if TYPE_CHECKING:
    from .session import VSphereConnection

log = logging.getLogger(__name__)


# --- shared spec pieces -------------------------------------------------------------------------


def _relocate_spec(request: CloneRequest, *, with_host: bool = True) -> Any:
    from pyVmomi import vim

    placement = request.placement
    spec = vim.vm.RelocateSpec()
    if placement is not None:
        spec.pool = placement.resource_pool
        spec.datastore = placement.datastore
        if with_host:
            spec.host = placement.host
    return spec


def _nic_devices(conn: VSphereConnection, vm: Any) -> list[Any]:
    from pyVmomi import vim

    hardware = props.read(conn, vm, ["config.hardware"]).get("config.hardware")
    return [d for d in (hardware.device if hardware else None) or ()
            if isinstance(d, vim.vm.device.VirtualEthernetCard)]


def _hardware(conn: VSphereConnection, request: CloneRequest, *, instant: bool,
              snapshot: Any = None) -> tuple[HardwarePlan | None, list[Any] | None]:
    """The hardware plan and the source's devices (read once), or (None, None) when nothing is asked.

    A clone from a snapshot has the snapshot's devices (CloneSpec.snapshot: "the newly created virtual
    machine will have the same configuration as the virtual machine at the time the snapshot was taken"),
    so they are read from VirtualMachineSnapshot.config.
    """
    from .hardware import instant_problem, plan_hardware, source_devices

    hardware = request.hardware
    if hardware is None or hardware.request.empty:
        return None, None
    devices = source_devices(conn, snapshot if snapshot is not None else request.template.ref)
    problem = instant_problem(hardware, devices, request.template.name) if instant else None
    if problem:
        raise HardwareError(problem)
    datastore = request.placement.datastore if request.placement is not None else None
    return plan_hardware(conn, hardware, devices, datastore=datastore), devices


def _nic_edits(conn: VSphereConnection, request: CloneRequest, *, disconnect: bool,
               plan: HardwarePlan | None = None, devices: list[Any] | None = None) -> list[Any]:
    """deviceChange edits of the source's NICs: a new network (placement or --vsphere-networks) and/or
    disconnected NICs."""
    from pyVmomi import vim

    placement = request.placement
    retarget = placement is not None and placement.network is not None
    moves = plan.nic_edits if plan is not None else {}
    if not retarget and not disconnect and not moves:
        return []
    backing = network_backing(conn, placement.network, placement.network_name) \
        if placement is not None and retarget else None
    named = plan.named_nics if plan is not None else set()
    nics = _nic_devices(conn, request.template.ref) if devices is None else \
        [d for d in devices if isinstance(d, vim.vm.device.VirtualEthernetCard)]
    edits = []
    for nic in nics:
        # --vsphere-networks decides the NICs it names; --vsphere-network the others.
        new = moves.get(nic.key) if nic.key in named else backing
        if new is None and not disconnect:
            continue
        if new is not None:
            nic.backing = new
        if disconnect:
            # Down in the clone until the guest is told about its new MAC, then reconnected.
            nic.connectable = vim.vm.device.VirtualDevice.ConnectInfo(
                connected=False, startConnected=True, allowGuestControl=True, migrateConnect="disconnect")
        edits.append(vim.vm.device.VirtualDeviceSpec(operation="edit", device=nic))
    return edits


def _config_spec(request: CloneRequest, plan: HardwarePlan | None = None) -> Any:
    """The marker as the clone's annotation (Notes), so even a clone whose SetField never ran is marked;
    and the hardware: CPUs, memory, new NICs and disks, extraConfig."""
    from pyVmomi import vim

    if request.marker is None and plan is None:
        return None
    annotation = request.marker.annotation() if request.marker is not None else None
    if plan is None:
        return vim.vm.ConfigSpec(annotation=annotation)
    return vim.vm.ConfigSpec(annotation=annotation, numCPUs=plan.cpus, memoryMB=plan.memory_mb,
                             deviceChange=plan.device_adds, extraConfig=plan.extra_config)


# --- strategies ------------------------------------------------------------------------------------


class LinkedClone(CloneStrategy):
    """CloneVM_Task from a snapshot with ``createNewChildDiskBacking``: a delta disk on the snapshot."""

    kind = LINKED

    def snapshot(self, template: TemplateInfo, wanted: str | None) -> Any:
        """The snapshot to branch from; NoSnapshot (never a silent full clone) if there is none."""
        available = [s.path for s in template.snapshots]
        if wanted is None:
            if template.current_snapshot is None:
                raise NoSnapshot(template.name, None, available)
            return template.current_snapshot
        found = template.snapshot_named(wanted)
        if found is None:
            raise NoSnapshot(template.name, wanted, available)
        return found.ref

    def build_spec(self, conn: VSphereConnection, request: CloneRequest, warnings: list[str]) -> Any:
        from pyVmomi import vim

        snapshot = self.snapshot(request.template, request.snapshot)
        plan, devices = _hardware(conn, request, instant=False, snapshot=snapshot)
        location = _relocate_spec(request)
        location.diskMoveType = "createNewChildDiskBacking"
        location.deviceChange = _nic_edits(conn, request, disconnect=False, plan=plan, devices=devices)
        return vim.vm.CloneSpec(location=location, snapshot=snapshot, template=False,
                                powerOn=request.power_on and request.power_on_in_clone_task,
                                config=_config_spec(request, plan))

    def start(self, request: CloneRequest, spec: Any) -> Any:
        return request.template.ref.CloneVM_Task(folder=self.target_folder(request), name=request.name, spec=spec)


class FullClone(LinkedClone):
    """CloneVM_Task copying every disk (from the chosen snapshot, or the current state)."""

    kind = FULL

    def build_spec(self, conn: VSphereConnection, request: CloneRequest, warnings: list[str]) -> Any:
        from pyVmomi import vim

        snapshot = self.snapshot(request.template, request.snapshot) if request.snapshot else None
        plan, devices = _hardware(conn, request, instant=False, snapshot=snapshot)
        location = _relocate_spec(request)
        location.deviceChange = _nic_edits(conn, request, disconnect=False, plan=plan, devices=devices)
        return vim.vm.CloneSpec(location=location, snapshot=snapshot, template=False,
                                powerOn=request.power_on and request.power_on_in_clone_task,
                                config=_config_spec(request, plan))


class InstantClone(CloneStrategy):
    """InstantClone_Task: the clone resumes running from the source's memory and disks.

    A frozen source is preferred. A running source works too: its NICs are disconnected
    in the clone spec and reconnected after, and each clone adds a delta disk to it.
    """

    kind = INSTANT

    def build_spec(self, conn: VSphereConnection, request: CloneRequest, warnings: list[str]) -> Any:
        from pyVmomi import vim

        template = request.template
        if template.power_state != "poweredOn":
            raise InvalidInstantSource(template.name, template.power_state, template.is_template)
        placement = request.placement
        if placement is not None and placement.host is not None and placement.host != template.host:
            raise InvalidPlacement(f"instant clones stay on their source's host, but --vsphere-esxi-host names "
                                   f"another one than {template.name!r}'s: drop --vsphere-esxi-host or use "
                                   f"--vsphere-clone-type=linked")
        running = not template.frozen
        if running:
            message = (f"instant clone from running (not frozen) source {template.name!r}: each clone adds a delta "
                       f"disk to it (limit 255, KB 67186); freeze it (`vsphere-clone freeze {template.name}`) or "
                       f"collapse it after the run (--vsphere-collapse)")
            log.warning("%s", message)
            warnings.append(message)
        location = _relocate_spec(request, with_host=False)
        location.folder = self.target_folder(request)
        plan, devices = _hardware(conn, request, instant=True)
        location.deviceChange = _nic_edits(conn, request, disconnect=running, plan=plan, devices=devices)
        config = [marker_option(request.marker)] if request.marker is not None else []
        if plan is not None:
            # InstantCloneSpec.config: "key value pairs that will be passed to the destination VM ... queryable
            # via destination VM's extraConfig"; guestinfo.* ones reach the guest (vmware-rpctool info-get).
            config += plan.extra_config
        return vim.vm.InstantCloneSpec(name=request.name, location=location, config=config)

    def start(self, request: CloneRequest, spec: Any) -> Any:
        return request.template.ref.InstantClone_Task(spec=spec)

    def powers_on(self, request: CloneRequest) -> bool:
        return False  # an instant clone resumes running

    def after_clone(self, conn: VSphereConnection, waiter: Waiter, request: CloneRequest, vm: Any,
                    spec: Any) -> None:
        from pyVmomi import vim

        disconnected = [c.device for c in spec.location.deviceChange or ()
                        if c.device.connectable is not None and c.device.connectable.connected is False]
        if not disconnected:
            return
        changes = []
        for nic in disconnected:
            nic.connectable = vim.vm.device.VirtualDevice.ConnectInfo(
                connected=True, startConnected=True, allowGuestControl=True)
            changes.append(vim.vm.device.VirtualDeviceSpec(operation="edit", device=nic))
        what = f"NIC reconnect of {request.name}"
        task = conn.call(vm.ReconfigVM_Task, vim.vm.ConfigSpec(deviceChange=changes), what=what)
        waiter.wait_for_task(task, request.timeout, what)


STRATEGIES: dict[str, type[CloneStrategy]] = {s.kind.name: s for s in (LinkedClone, FullClone, InstantClone)}


def strategy_for(clone_type: str, retry: RetryPolicy | None = None) -> CloneStrategy:
    """The strategy for ``linked``, ``instant`` or ``full``."""
    return STRATEGIES[clone_types.clone_type(clone_type).name](retry)


def clone_vm(conn: VSphereConnection, request: CloneRequest, waiter: Waiter | None = None,
             retry: RetryPolicy | None = None) -> CloneResult:
    """Clone ``request.template`` as ``request.name`` with the request's strategy."""
    strategy = strategy_for(request.clone_type, retry)
    if waiter is not None:
        return strategy.clone(conn, request, waiter)
    with Waiter(conn) as own:
        return strategy.clone(conn, request, own)
