"""The clone types and collapse modes: every question the code asks about a clone type is answered here.

Plain data with no imports of the project's layers: the plugin's option table reads it at pytest's
start-up (where every module of this package it imports is assertion-rewritten and compiled), the
client's strategies and the docs generator read it too. :func:`pytest_vsphere_clone.client.clone_types.clone_type`
looks a type up by name with a one-line error.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CloneType:
    """What one way of cloning needs and does."""

    name: str
    #: The vSphere method that makes the clone, and the TaskInfo.descriptionId a vCenter gives its tasks.
    method: str
    description_id: str
    #: Clones from a snapshot of the source always (linked), or only when one is named (full).
    snapshot_always: bool
    snapshot_when_named: bool
    #: The source must be powered on (an instant clone forks its running state).
    needs_running_source: bool
    #: The clone resumes the source's running guest: its Tools run from the start, and they first
    #: report the source's addresses until the guest's NIC is refreshed.
    resumes_running: bool
    #: Each clone adds a delta disk to the source (what --vsphere-collapse merges).
    grows_source: bool
    #: The guest's NIC must be refreshed after the clone (new MAC, the source's lease).
    needs_nic_refresh: bool
    #: Privileges on the clone's folder beyond the common ones.
    extra_privileges: tuple[str, ...] = ()
    #: The clone spec may set CPUs, memory and new devices (CloneSpec.config, a VirtualMachineConfigSpec).
    #: An InstantCloneSpec may not: only extraConfig pairs and edits of existing NICs (docs/hardware.md).
    configurable_hardware: bool = True

    def uses_snapshot(self, named_snapshot: str | None) -> bool:
        """Whether a clone with the ``--vsphere-snapshot`` setting ``named_snapshot`` clones from a snapshot."""
        return self.snapshot_always or (self.snapshot_when_named and bool(named_snapshot))


LINKED = CloneType("linked", "CloneVM_Task", "VirtualMachine.clone", snapshot_always=True, snapshot_when_named=True,
                   needs_running_source=False, resumes_running=False, grows_source=False, needs_nic_refresh=False)
INSTANT = CloneType("instant", "InstantClone_Task", "VirtualMachine.instantClone", snapshot_always=False,
                    snapshot_when_named=False, needs_running_source=True, resumes_running=True, grows_source=True,
                    needs_nic_refresh=True, extra_privileges=("VirtualMachine.Config.EditDevice",),
                    configurable_hardware=False)
FULL = CloneType("full", "CloneVM_Task", "VirtualMachine.clone", snapshot_always=False, snapshot_when_named=True,
                 needs_running_source=False, resumes_running=False, grows_source=False, needs_nic_refresh=False)

BY_NAME: dict[str, CloneType] = {t.name: t for t in (LINKED, INSTANT, FULL)}
#: Every clone type's name, in the order the docs and help list them.
CLONE_TYPES: tuple[str, ...] = tuple(BY_NAME)
#: How a source's delta disks are collapsed at the end of a run (see client/teardown.py).
COLLAPSE_MODES: tuple[str, ...] = ("none", "snapshot", "promote")
