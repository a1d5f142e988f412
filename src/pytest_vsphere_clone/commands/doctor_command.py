"""``vsphere-clone doctor``: check everything a run needs, one line per check (OK, WARN, FAIL, SKIP).

Connection, TLS, login, privileges for the whole flow (HasPrivilegeOnEntities on the
objects each privilege is checked on by vCenter), and each template's readiness for the
clone type: it exists, a snapshot (linked), powered on and preferably frozen (instant),
VMware Tools, and the guest credentials (a no-op command through Guest Operations).
The guest user is one for every template, as the plugin's --vsphere-guest-user is (only
``pytest --vsphere-simulator`` gives Windows templates the simulator's own Windows account):
each guest line names it and where it came from, and a WARN says when it does not fit a
template's guest OS (``root`` for Windows). Every FAIL line names the fix; the exit status
is 1 if any check failed. ``--json`` prints the checks as one JSON object instead.
"""

from __future__ import annotations

import argparse
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..client import clone_types
from ..client.clone_types import CLONE_TYPES, COLLAPSE_MODES
from ._common import (
    Console,
    GuestCredentials,
    UsageError,
    add_guest_options,
    add_json_option,
    cli_spelling,
    common_parent,
    connection_settings,
    describe_exception,
    env_name,
    from_env,
    guest_credentials,
    non_negative_float,
    run_command,
)

if TYPE_CHECKING:
    from ..client.guest_ops import GuestOperations
    from ..client.inventory import Inventory, TemplateInfo
    from ..client.session import VSphereConnection

GUEST_PRIVILEGES = ("VirtualMachine.GuestOperations.Execute", "VirtualMachine.GuestOperations.Query",
                    "VirtualMachine.GuestOperations.Modify")
#: A no-op per guest OS family, run to prove the guest credentials.
NO_OP = {"linux": "true", "windows": "exit 0"}
#: Account names that exist on one guest OS family only (lower case): a guest user among
#: them cannot log in to the other family's templates.
ONLY_ON = {"linux": {"root"}, "windows": {"administrator"}}
#: The bundled simulator's fact naming each family's guest account (`vsphere-clone simulator` prints them).
SIMULATOR_FACT = {"linux": "GUEST_USER", "windows": "WINDOWS_GUEST_USER"}


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "doctor", parents=[common_parent()], help="check connection, privileges and template readiness",
        description="Check connection, TLS, login, the privileges a run needs and each template's readiness for "
                    "the clone type; one line per check: OK, WARN, FAIL (with the fix) or SKIP (cannot be checked "
                    "in the template's state). Exit status 1 if any check failed.")
    parser.add_argument("--template", action="append", metavar="TEMPLATE",
                        help=f"template to check, by name or inventory path; repeatable. Env {env_name('template')} "
                             f"(comma-separated).")
    parser.add_argument("--clone-type", choices=CLONE_TYPES,
                        help=f"how the run clones (default linked). Env {env_name('clone-type')}.")
    parser.add_argument("--snapshot", metavar="NAME",
                        help=f"snapshot linked clones branch from (default: the current one). Env "
                             f"{env_name('snapshot')}.")
    parser.add_argument("--collapse", choices=COLLAPSE_MODES,
                        help=f"collapse mode of the run, for its privileges (default none). Env "
                             f"{env_name('collapse')}.")
    parser.add_argument("--tools-wait", metavar="SECONDS", type=non_negative_float, default=15.0,
                        help="how long to wait for VMware Tools in a running template that is still booting "
                             "(default 15)")
    add_guest_options(parser)
    add_json_option(parser, "the checks (each with name, verdict ok/warn/fail/skip and detail) and their counts")
    parser.set_defaults(run=lambda args: run_command(args, run))


# --- report ---------------------------------------------------------------------------------------


@dataclass
class Report:
    """Prints each check as it completes (or, as JSON, all of them at the end) and counts the outcomes."""

    console: Console
    as_json: bool = False
    counts: dict[str, int] = field(default_factory=lambda: {"OK": 0, "WARN": 0, "FAIL": 0, "SKIP": 0})
    checks: list[dict[str, str]] = field(default_factory=list)

    def line(self, status: str, label: str, detail: str) -> None:
        self.counts[status] += 1
        detail = " ".join(cli_spelling(detail).split())
        self.checks.append({"name": label, "verdict": status.lower(), "detail": detail})
        if not self.as_json:
            self.console.out(f"{status:<4}  {label}: {detail}")

    def ok(self, label: str, detail: str) -> None:
        self.line("OK", label, detail)

    def warn(self, label: str, detail: str) -> None:
        self.line("WARN", label, detail)

    def fail(self, label: str, detail: str) -> None:
        self.line("FAIL", label, detail)

    def skip(self, label: str, detail: str) -> None:
        self.line("SKIP", label, detail)

    def finish(self) -> int:
        status = 1 if self.counts["FAIL"] else 0
        if self.as_json:
            self.console.json({"checks": self.checks,
                               "counts": {verdict.lower(): n for verdict, n in self.counts.items()},
                               "exit_status": status})
        else:
            self.console.out("doctor: " + ", ".join(f"{n} {verdict}" for verdict, n in self.counts.items() if n))
        return status


# --- inputs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    templates: tuple[str, ...]
    clone_type: str
    snapshot: str | None
    collapse: str
    guest: GuestCredentials | None
    tools_wait: float = 15.0


def _choice(args: argparse.Namespace, option: str, choices: tuple[str, ...], default: str) -> str:
    value = from_env(args, option) or default
    if value not in choices:
        raise UsageError(f"{env_name(option)}={value!r} is not one of {', '.join(choices)}: fix the environment "
                         f"variable or pass --{option}")
    return value


def plan_of(args: argparse.Namespace) -> Plan:
    templates = tuple(args.template or ())
    if not templates:
        templates = tuple(t for t in re.split(r"[,\s]+", from_env(args, "template") or "") if t)
    return Plan(templates, _choice(args, "clone-type", CLONE_TYPES, "linked"), from_env(args, "snapshot"),
                _choice(args, "collapse", COLLAPSE_MODES, "none"), guest_credentials(args, required=False),
                args.tools_wait)


# --- the checks -----------------------------------------------------------------------------------


def run(args: argparse.Namespace, console: Console) -> int:
    from ..client.errors import ConnectionFailed, LoginFailed, TlsVerificationFailed, VSphereCloneError
    from ..client.session import VSphereConnection

    settings = connection_settings(args)
    plan = plan_of(args)
    report = Report(console, as_json=args.json)
    try:
        conn = VSphereConnection(settings.host, settings.user, settings.password, insecure=settings.insecure,
                                 ca_bundle=settings.ca_bundle, timeout=settings.timeout)
    except VSphereCloneError as exc:  # an unusable host value or CA bundle
        report.fail("settings", str(exc))
        return report.finish()
    try:
        with _quiet("pytest_vsphere_clone.client.session"):  # doctor reports TLS itself
            conn.connect()
    except ConnectionFailed as exc:
        report.fail("connection", str(exc))
        return report.finish()
    except TlsVerificationFailed as exc:
        report.ok("connection", f"vCenter {conn.endpoint} answers")
        report.fail("tls", str(exc))
        return report.finish()
    except LoginFailed as exc:
        report.ok("connection", f"vCenter {conn.endpoint} answers")
        _tls_line(report, settings.insecure, settings.ca_bundle)
        report.fail("login", str(exc))
        return report.finish()
    try:
        about = conn.content.about
        report.ok("connection", f"vCenter {conn.endpoint} answers ({about.fullName if about else 'unknown version'})")
        _tls_line(report, settings.insecure, settings.ca_bundle)
        report.ok("login", f"logged in as {settings.user!r}")
        _check_endpoint(conn, plan, report)
        _check_all(conn, plan, report)
    finally:
        conn.close()
    return report.finish()


@contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _tls_line(report: Report, insecure: bool, ca_bundle: str | None) -> None:
    if insecure:
        report.warn("tls", "certificate NOT verified (--insecure): anyone on the network path could pose as the "
                           "vCenter and read the password; use --ca-bundle with the vCenter's CA (its VMCA root) "
                           "instead")
    else:
        report.ok("tls", f"certificate verified against {ca_bundle or 'the system CA store'}")


def _check_endpoint(conn: VSphereConnection, plan: Plan, report: Report) -> None:
    """A FAIL line when the endpoint is an ESXi host reached directly: it offers no cloning."""
    from ..client.clone import cloning_endpoint_problem

    problem = cloning_endpoint_problem(conn, plan.clone_type)
    if problem is not None:
        report.fail("endpoint", str(problem))


def _check_all(conn: VSphereConnection, plan: Plan, report: Report) -> None:
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
        _check_root_privileges(conn, plan, report, field_defined)
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
        _check_privileges(conn, inventory, info, plan, report, field_defined)
        _check_source(info, plan, report)
        tools_running = _check_tools(conn, info, plan, report)
        _check_guest_user(info, plan, report)
        _check_guest_login(conn, info, plan, report, tools_running)


# --- privileges -----------------------------------------------------------------------------------


def privilege_plan(info: TemplateInfo, clone_type: str, collapse: str, field_defined: bool,
                   root: Any) -> list[tuple[Any, list[str]]]:
    """(entity, privileges) pairs: each privilege on the object vCenter checks it on (permissions inherit)."""
    from ..client.privileges import EXTRA_PRIVILEGES, required_privileges

    on_vm = ["VirtualMachine.Provisioning.Clone"]
    if collapse != "none":
        on_vm += EXTRA_PRIVILEGES["collapse"]
    # Clones are created in (and inherit their permissions from) the template's folder.
    on_folder = ["VirtualMachine.Inventory.CreateFromExisting", "VirtualMachine.Inventory.Delete",
                 "VirtualMachine.Interact.PowerOn", "VirtualMachine.Interact.PowerOff", "Global.SetCustomField",
                 *GUEST_PRIVILEGES]
    on_folder += clone_types.clone_type(clone_type).extra_privileges
    pairs: list[tuple[Any, list[str]]] = [(info.ref, on_vm), (info.folder, on_folder)]
    if info.resource_pool is not None:
        pairs.append((info.resource_pool, ["Resource.AssignVMToPool"]))
    pairs += [(datastore, ["Datastore.AllocateSpace"]) for datastore in info.datastores]
    if not field_defined:
        pairs.append((root, list(EXTRA_PRIVILEGES["marker-field"])))
    # Whatever the client layer requires and is not placed above is checked where clones live.
    placed = {p for _, privileges in pairs for p in privileges}
    required = required_privileges(clone_type, guest_ops=True, collapse=collapse != "none")
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
    kind = {"VirtualMachine": "VM", "Folder": "folder", "ResourcePool": "resource pool", "Datastore": "datastore",
            "ClusterComputeResource": "cluster"}.get(kind, kind)
    return f"{inventory.name(entity)} ({kind})"


def _check_privileges(conn: VSphereConnection, inventory: Inventory, info: TemplateInfo, plan: Plan,
                      report: Report, field_defined: bool) -> None:
    label = f"privileges for {info.name}"
    pairs = privilege_plan(info, plan.clone_type, plan.collapse, field_defined, conn.content.rootFolder)
    try:
        lacking = _lacking(conn, pairs)
    except Exception as exc:
        report.fail(label, f"could not check them with HasPrivilegeOnEntities ({describe_exception(exc)}): ask the "
                           f"vCenter administrator to check the user's role")
        return
    total = len({p for _, privileges in pairs for p in privileges})
    flow = f"{plan.clone_type} clones with Guest Operations" + (f" and collapse={plan.collapse}"
                                                                if plan.collapse != "none" else "")
    if not lacking:
        where = ", ".join(_entity_label(inventory, entity) for entity, _ in pairs)
        report.ok(label, f"user {conn.user!r} has all {total} privileges {flow} need (on {where})")
        return
    parts = "; ".join(f"{', '.join(privileges)} on {_entity_label(inventory, entity)}"
                      for entity, privileges in lacking.items())
    report.fail(label, f"user {conn.user!r} lacks {parts}: grant them to the user's role on those objects (or a "
                       f"parent, with propagation)")


def _check_root_privileges(conn: VSphereConnection, plan: Plan, report: Report, field_defined: bool) -> None:
    from ..client.privileges import EXTRA_PRIVILEGES, missing_privileges, required_privileges

    wanted = required_privileges(plan.clone_type, guest_ops=True, collapse=plan.collapse != "none")
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


# --- template readiness ---------------------------------------------------------------------------


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
            report.fail(label, str(InvalidInstantSource(info.name, info.power_state)))
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


def guest_user_misfit(user: str, os_family: str) -> str | None:
    """The guest OS family ``user`` belongs to when that is not ``os_family`` (None: it may fit)."""
    name = user.rsplit("\\", 1)[-1].lower()  # DOMAIN\Administrator is still the Administrator
    for family, names in ONLY_ON.items():
        if family != os_family and name in names:
            return family
    return None


def _check_guest_user(info: TemplateInfo, plan: Plan, report: Report) -> None:
    """WARN when the one guest user of the run is an account of the other guest OS family."""
    if plan.guest is None:
        return
    family = info.os_family
    other = guest_user_misfit(plan.guest.user, family)
    if other is None:
        return
    system = {"linux": "Linux", "windows": "Windows"}
    report.warn(f"guest user for {info.name}",
                f"{_who(plan.guest)} is a {system[other]} account, but {info.name} runs {system[family]} and the "
                f"guest user is one for every template: check it with `vsphere-clone doctor --template {info.name} "
                f"--guest-user USER` and give pytest the same USER for it ({env_name('guest-user')}), USER being a "
                f"{system[family]} account (the bundled simulator's {SIMULATOR_FACT[family]})")


def _who(guest: GuestCredentials) -> str:
    """``guest user 'root' (from VSPHERE_GUEST_USER)``: which user is checked, and why that one."""
    return f"guest user {guest.user!r} (from {guest.source})"


def _check_guest_login(conn: VSphereConnection, info: TemplateInfo, plan: Plan, report: Report,
                       tools_running: bool) -> None:
    from ..client.guest_ops import GuestOperations

    label = f"guest login to {info.name}"
    if plan.guest is None:
        report.warn(label, f"no guest credentials given: pass --guest-user and set {env_name('guest-password')} "
                           f"to check them (active IP discovery and guest_run need them)")
        return
    who = _who(plan.guest)
    if not tools_running:
        state = "frozen" if info.frozen else info.power_state if info.power_state != "poweredOn" else \
            "without running VMware Tools"
        report.skip(label, f"cannot be tried while {info.name} is {state}; the clones will use {who}")
        return
    command = NO_OP[info.os_family]
    ops = GuestOperations(conn, info.ref, plan.guest.user, plan.guest.password, os_family=info.os_family,
                          vm_name=info.name)
    try:
        result = ops.run(command, timeout=60.0)
    except Exception as exc:
        report.fail(label, f"{describe_exception(exc)} (guest user from {plan.guest.source})")
        return
    if result.exit_status != 0:
        report.fail(label, f"`{command}` exited with status {result.exit_status} as {who} "
                           f"(stderr: {' '.join(result.stderr.split())[:200] or 'empty'}): check the guest OS "
                           f"family and the user's shell")
        return
    report.ok(label, f"{who} can run programs (`{command}` through Guest Operations)")
    if info.os_family == "linux":
        _check_machine_id(ops, info, report)


#: Reads what decides a Linux template's DHCP client identity: its machine-id, the systemd-networkd
#: configurations that run DHCP (the administrator's and netplan's generated ones), and whether they
#: send the MAC instead (ClientIdentifier=mac).
MACHINE_ID_SCRIPT = (
    "echo machine-id=$(cat /etc/machine-id 2>/dev/null); "
    "units=$(grep -liE '^[[:space:]]*DHCP[[:space:]]*=[[:space:]]*(yes|true|ipv4|1)' "
    "/etc/systemd/network/*.network /run/systemd/network/*.network 2>/dev/null); "
    "echo networkd-dhcp=$units; "
    "echo client-id-mac=$(grep -liE '^[[:space:]]*ClientIdentifier[[:space:]]*=[[:space:]]*mac' $units "
    "/dev/null 2>/dev/null)"
)


def _check_machine_id(ops: GuestOperations, info: TemplateInfo, report: Report) -> None:
    """WARN when clones would copy a machine-id that systemd-networkd derives their DHCP identity from.

    systemd.network(5): ClientIdentifier= defaults to "duid", and the DUID comes from /etc/machine-id;
    clones that keep the template's one then share one DHCP lease (systemd #9609, chef/bento #1062).
    """
    label = f"machine-id of {info.name}"
    try:
        result = ops.run(MACHINE_ID_SCRIPT, timeout=60.0)
    except Exception as exc:
        report.skip(label, f"could not read /etc/machine-id ({describe_exception(exc)})")
        return
    facts = dict(line.partition("=")[::2] for line in result.stdout.splitlines() if "=" in line)
    machine_id, units, by_mac = (facts.get(key, "").strip() for key in ("machine-id", "networkd-dhcp",
                                                                         "client-id-mac"))
    if not machine_id:
        report.ok(label, "/etc/machine-id is empty: each clone makes its own at first boot")
    elif not units or by_mac:
        how = "systemd-networkd sends the MAC (ClientIdentifier=mac)" if units else \
            "no systemd-networkd configuration runs DHCP"
        report.ok(label, f"/etc/machine-id is set ({machine_id[:8]}...), which clones copy, but {how}: their DHCP "
                         f"client identities differ")
    else:
        report.warn(label, f"/etc/machine-id is set ({machine_id[:8]}...) and systemd-networkd runs DHCP "
                           f"({units.split()[0]}) with the default ClientIdentifier=duid, derived from it: clones "
                           f"that copy it all get one DHCP lease, one address; empty it in {info.name} before its "
                           f"snapshot (`truncate -s 0 /etc/machine-id`) or set ClientIdentifier=mac in the [DHCPv4] "
                           f"section")
