"""The doctor's template checks: the inventory is read, then for each template in turn it is found,
the hardware settings are checked against it (when given), the privileges on its objects are checked
(the console screenshots' apart, as a WARN), its readiness as a source of the clone type (a snapshot
for linked clones, powered on and preferably frozen for instant ones), VMware Tools (waiting a
little for a booting template) and, through them, the guest user and login.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..client import clone_types
from ._common import describe_exception, env_name
from .doctor_guest import check_guest_login, check_guest_user
from .doctor_hardware import check_hardware
from .doctor_privileges import check_privileges, check_root_privileges, check_screenshot_privileges

if TYPE_CHECKING:
    from ..client.inventory import TemplateInfo
    from ..client.session import VSphereConnection
    from .doctor_plan import Plan
    from .doctor_report import Report


def check_all(conn: VSphereConnection, plan: Plan, report: Report) -> None:
    """Read the inventory, then check each template of ``plan`` (or the root's privileges when none)."""
    from ..client.errors import VSphereCloneError
    from ..client.inventory import Inventory
    from ..client.marker import field_key

    try:
        field_defined = field_key(conn) is not None
        inventory = Inventory.load(conn)
    except Exception as exc:
        report.fail("inventory", f"could not read the inventory ({describe_exception(exc)}): grant the user at "
                                 f"least read-only access (System.View) on the vCenter")
        return
    if not plan.templates:
        check_root_privileges(conn, plan, report, field_defined)
        report.skip("templates", f"none given: pass --template NAME (or set {env_name('template')}) to check "
                                 f"template readiness and the privileges on the objects clones are made from")
        return
    for name in plan.templates:
        label = f"template {name}"
        try:
            info = inventory.find_template(name)
        except VSphereCloneError as exc:
            report.fail(label, str(exc))
            continue
        kind = "vSphere template" if info.is_template else "VM"
        state = "frozen" if info.frozen else info.power_state
        report.ok(label, f"found at {info.path} ({kind}, {state})")
        hardware = check_hardware(conn, inventory, info, plan, report)
        check_privileges(conn, inventory, info, plan, report, field_defined, hardware)
        check_screenshot_privileges(conn, inventory, info, report)
        _check_source(info, plan, report)
        tools_running = _check_tools(conn, info, plan, report)
        check_guest_user(info, plan, report)
        check_guest_login(conn, info, plan, report, tools_running)


def _check_source(info: TemplateInfo, plan: Plan, report: Report) -> None:
    from ..client.errors import InvalidInstantSource, NoSnapshot

    label = f"{plan.clone_type} source {info.name}"
    kind = clone_types.clone_type(plan.clone_type)
    if kind.snapshot_always:
        available = [s.path for s in info.snapshots]
        if plan.snapshot is not None:
            snap = info.snapshot_named(plan.snapshot)
            if snap is None:
                report.fail(label, str(NoSnapshot(info.name, plan.snapshot, available)))
            else:
                report.ok(label, f"snapshot {snap.path!r} exists; linked clones branch from it")
        elif info.current_snapshot is not None or info.snapshots:
            current = next((s for s in info.snapshots if s.ref == info.current_snapshot), None)
            shown = current.path if current is not None else info.snapshots[-1].path
            report.ok(label, f"current snapshot {shown!r}; linked clones branch from it")
        else:
            report.fail(label, str(NoSnapshot(info.name)))
    elif kind.needs_running_source:
        if info.frozen:
            report.ok(label, "frozen: the preferred instant-clone source (clones resume running, the source's disk "
                             "stays put)")
        elif info.power_state == "poweredOn":
            report.warn(label, f"running but not frozen: works, but each instant clone adds a delta disk to it "
                               f"(up to vSphere's limit of 255); freeze it with `vsphere-clone freeze {info.name}`")
        else:
            report.fail(label, str(InvalidInstantSource(info.name, info.power_state, info.is_template)))
    else:
        report.ok(label, "full clones need no snapshot (each copies the whole disk, slower than linked)")


def _check_tools(conn: VSphereConnection, info: TemplateInfo, plan: Plan, report: Report) -> bool:
    """Report on VMware Tools; True when they are running (so Guest Operations can be tried)."""
    from ..client import props

    label = f"VMware Tools in {info.name}"
    try:
        values = props.read(conn, info.ref, ["guest.toolsRunningStatus", "config.tools.toolsVersion"])
    except Exception as exc:
        report.fail(label, f"could not read their state ({describe_exception(exc)})")
        return False
    version = values.get("config.tools.toolsVersion") or 0
    status = str(values.get("guest.toolsRunningStatus") or "unknown")
    if info.frozen:
        report.skip(label, "paused while the VM is frozen; they resume in each instant clone")
        return False
    if info.power_state != "poweredOn":
        if not version:
            report.fail(label, f"not installed: install open-vm-tools (Linux) or VMware Tools (Windows) in "
                               f"{info.name}; clones need them for Guest Operations and IP discovery")
        else:
            report.ok(label, f"installed (version {version}); they run in the clones ({info.name} is "
                             f"{info.power_state})")
        return False
    if status != "guestToolsRunning" and plan.tools_wait > 0:
        status = _wait_for_tools(conn, info, plan.tools_wait) or status
    if status == "guestToolsRunning":
        report.ok(label, f"running (version {version})")
        return True
    report.fail(label, f"not running (toolsRunningStatus={status} after waiting {plan.tools_wait:g} s): install and "
                       f"start open-vm-tools (Linux) or VMware Tools (Windows) in {info.name}, or raise --tools-wait "
                       f"if it is still booting")
    return False


def _wait_for_tools(conn: VSphereConnection, info: TemplateInfo, timeout: float) -> str | None:
    """``guestToolsRunning`` once Tools of a booting VM run; None if they did not within ``timeout``."""
    from ..client.errors import WaitTimeout
    from ..client.waiter import Waiter

    with Waiter(conn) as waiter:
        try:
            return str(waiter.wait_for_property(info.ref, "guest.toolsRunningStatus",
                                                lambda v: v == "guestToolsRunning", timeout))
        except WaitTimeout:
            return None
