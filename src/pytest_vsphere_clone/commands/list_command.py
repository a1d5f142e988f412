"""``vsphere-clone list``: every VM carrying the ownership marker, with its owner and whether it may be reaped."""

from __future__ import annotations

import argparse
import json
import time
from typing import TYPE_CHECKING, Any

from ._common import Console, common_parent, connection_settings, run_command, span, stamp, table

if TYPE_CHECKING:
    from ..client.teardown import MarkedVM


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "list", parents=[common_parent()], help="list the VMs carrying the pytest-vsphere-clone marker",
        description="List the VMs carrying the pytest-vsphere-clone ownership marker: name, run id, worker, host, "
                    "pid, creation, expiry, whether each is expired or orphaned (made on this machine by a process "
                    "that is gone), its power state, its IP address and, for a kept clone, the test that kept it. "
                    "VMs without the marker are never listed.")
    parser.add_argument("--json", action="store_true", help="print a JSON array instead of a table")
    parser.add_argument("--run", dest="run_id", metavar="ID", help="only the VMs of this run id")
    add_extra_config_option(parser)
    parser.set_defaults(run=lambda args: run_command(args, run))


def add_extra_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-extra-config", dest="extra_config", action="store_false",
        help="do not read every VM's extraConfig (faster on a large vCenter, but misses an instant clone whose run "
             "died between its clone task and setting the marker attribute)")


def status_of(vm: MarkedVM, now: float) -> tuple[bool, bool]:
    """(expired, orphaned) of a marked VM."""
    return vm.marker.is_expired(now), vm.marker.is_orphaned(now)


def describe_status(expired: bool, orphaned: bool) -> str:
    return "+".join(word for word, flag in (("expired", expired), ("orphaned", orphaned)) if flag) or "live"


def as_json(vm: MarkedVM, now: float, ip: str = "") -> dict[str, Any]:
    expired, orphaned = status_of(vm, now)
    marker = vm.marker
    return {"name": vm.name, "moref": str(vm.ref._moId), "run_id": marker.run_id, "worker": marker.worker,
            "host": marker.host, "pid": marker.pid, "template": marker.template or None,
            "created": stamp(marker.created), "expires": stamp(marker.expiry), "expired": expired,
            "orphaned": orphaned, "power_state": vm.power_state, "ip": ip or marker.ip or None,
            "test": marker.kept_by or None}


def addresses(conn: Any, marked: list[MarkedVM]) -> dict[Any, str]:
    """Each powered-on VM's address as VMware Tools report it (guest.ipAddress), from one RetrievePropertiesEx.

    A kept clone's marker also names the address it had (and the test that kept it); this is its address now.
    """
    from ..client import faults, props

    running = [vm.ref for vm in marked if vm.power_state == "poweredOn"]
    try:
        found = props.retrieve(conn, running, ["guest.ipAddress"])
    except Exception as exc:  # a VM destroyed since the listing: the markers' addresses will do
        if not faults.is_not_found(exc):
            raise
        return {}
    return {ref: str(values.get("guest.ipAddress") or "") for ref, values in found.items()}


def run(args: argparse.Namespace, console: Console) -> int:
    from ..client.teardown import list_marked

    settings = connection_settings(args)
    with settings.connect() as conn:
        marked = list_marked(conn, include_extra_config=args.extra_config)
        if args.run_id is not None:
            marked = [vm for vm in marked if vm.marker.run_id == args.run_id]
        ips = addresses(conn, marked)
    marked.sort(key=lambda vm: (vm.marker.created, vm.name))
    now = time.time()
    if args.json:
        console.out(json.dumps([as_json(vm, now, ips.get(vm.ref, "")) for vm in marked], indent=2))
        return 0
    if not marked:
        which = f" of run {args.run_id!r}" if args.run_id is not None else ""
        console.out(f"no VM{which} carries the pytest-vsphere-clone marker")
        return 0
    rows = [["NAME", "RUN", "WORKER", "HOST", "PID", "CREATED", "EXPIRES", "STATUS", "POWER", "IP", "TEST"]]
    for vm in marked:
        expired, orphaned = status_of(vm, now)
        marker = vm.marker
        left = marker.expiry - now
        expires = f"{stamp(marker.expiry)} ({'in ' + span(left) if left > 0 else span(left) + ' ago'})"
        rows.append([vm.name, marker.run_id, marker.worker, marker.host, str(marker.pid), stamp(marker.created),
                     expires, describe_status(expired, orphaned), vm.power_state,
                     ips.get(vm.ref) or marker.ip or "-", marker.kept_by or "-"])
    for line in table(rows):
        console.out(line)
    reapable = sum(1 for vm in marked if any(status_of(vm, now)))
    console.out(f"{len(marked)} marked VM{'s' if len(marked) != 1 else ''}, {reapable} expired or orphaned "
                f"(`vsphere-clone reap` destroys those)")
    return 0

