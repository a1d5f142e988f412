"""Privileges the plugin's flows need, checked up front with HasPrivilegeOnEntities."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from . import clone_types
from .errors import MissingPrivileges

if TYPE_CHECKING:
    from .session import VSphereConnection

#: Needed on the template (and its folder / pool / datastore) by every clone type.
CLONE_PRIVILEGES = (
    "VirtualMachine.Provisioning.Clone",
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


def required_privileges(clone_type: str = "linked", *, guest_ops: bool = True, collapse: bool = False) -> list[str]:
    """The privileges a run with these settings needs."""
    wanted = list(CLONE_PRIVILEGES)
    wanted += clone_types.clone_type(clone_type).extra_privileges
    if guest_ops:
        wanted += EXTRA_PRIVILEGES["guest"]
    if collapse:
        wanted += EXTRA_PRIVILEGES["collapse"]
    return sorted(set(wanted))


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
