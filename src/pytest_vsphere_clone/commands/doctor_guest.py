"""The doctor's guest checks: whether the run's one guest user fits a template's guest OS (``root``
on Windows is a WARN naming the fix), a no-op program run through Guest Operations to prove the
credentials, and, on a Linux template, whether clones would copy a machine-id that systemd-networkd
derives their DHCP identity from (one lease, one address for all of them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._common import GuestCredentials, describe_exception, env_name

if TYPE_CHECKING:
    from ..client.guest_ops import GuestOperations
    from ..client.inventory import TemplateInfo
    from ..client.session import VSphereConnection
    from .doctor_plan import Plan
    from .doctor_report import Report

#: A no-op per guest OS family, run to prove the guest credentials.
NO_OP = {"linux": "true", "windows": "exit 0"}
#: Account names that exist on one guest OS family only (lower case): a guest user among
#: them cannot log in to the other family's templates.
ONLY_ON = {"linux": {"root"}, "windows": {"administrator"}}
#: The bundled simulator's fact naming each family's guest account (`vsphere-clone simulator` prints them).
SIMULATOR_FACT = {"linux": "GUEST_USER", "windows": "WINDOWS_GUEST_USER"}


def guest_user_misfit(user: str, os_family: str) -> str | None:
    """The guest OS family ``user`` belongs to when that is not ``os_family`` (None: it may fit)."""
    name = user.rsplit("\\", 1)[-1].lower()  # DOMAIN\Administrator is still the Administrator
    for family, names in ONLY_ON.items():
        if family != os_family and name in names:
            return family
    return None


def check_guest_user(info: TemplateInfo, plan: Plan, report: Report) -> None:
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


def check_guest_login(conn: VSphereConnection, info: TemplateInfo, plan: Plan, report: Report,
                      tools_running: bool) -> None:
    """Run a no-op through Guest Operations as the guest user; then, on Linux, the machine-id check."""
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
