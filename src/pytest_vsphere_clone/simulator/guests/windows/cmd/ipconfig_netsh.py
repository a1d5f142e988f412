"""``ipconfig`` and ``netsh interface``: Windows views of (and actions on) the namespace's real interfaces."""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Iterable
from datetime import datetime, timedelta

from ..context import WindowsGuestContext
from ..network import Adapter, IpAddress, NetworkError
from .base import CRLF, Invocation

__all__ = ["ipconfig", "netsh", "render_ipconfig"]

#: Labels whose filler starts with two spaces in Windows' message table.
_SUFFIX_LABELS = frozenset({"Connection-specific DNS Suffix", "Primary Dns Suffix"})
_LABEL_WIDTH = 34
_CONTINUATION = " " * (3 + _LABEL_WIDTH + 2)

_USAGE = f"""{CRLF}USAGE:
    ipconfig [/allcompartments] [/? | /all |
                                 /renew [adapter] | /release [adapter] |
                                 /renew6 [adapter] | /release6 [adapter] |
                                 /flushdns | /displaydns | /registerdns |
                                 /showclassid adapter |
                                 /setclassid adapter [classid] |
                                 /showclassid6 adapter |
                                 /setclassid6 adapter [classid] ]
"""


def _field(label: str, values: str | Iterable[str]) -> list[str]:
    """``   IPv4 Address. . . . . . . . . . . : 10.0.0.5``; extra values go on aligned lines."""
    start = len(label) + 2 if label in _SUFFIX_LABELS else len(label)
    filler = "".join("." if pos >= start and pos % 2 == 0 else " " for pos in range(len(label), _LABEL_WIDTH))
    items = [values] if isinstance(values, str) else list(values) or [""]
    return [f"   {label}{filler}: {items[0]}"] + [_CONTINUATION + item for item in items[1:]]


def _netmask(prefix_length: int) -> str:
    return str(ipaddress.IPv4Network(f"0.0.0.0/{prefix_length}").netmask)


def _long_date(moment: datetime) -> str:
    hour = moment.hour % 12 or 12
    suffix = "AM" if moment.hour < 12 else "PM"
    return f"{moment:%A, %B} {moment.day}, {moment.year} {hour}:{moment:%M:%S} {suffix}"


def _gateway(address: str, index: int) -> str:
    return f"{address}%{index}" if address.lower().startswith("fe80:") else address


def _adapter_lines(context: WindowsGuestContext, adapter: Adapter, full: bool) -> list[str]:
    iface = adapter.interface
    dns = context.network.dns()
    dhcp = context.network.dhcp_available or any(a.dynamic for a in iface.addresses)
    suffix = dns.search[0] if dhcp and dns.search else ""
    lines: list[str] = []
    if not iface.carrier:
        lines += _field("Media State", "Media disconnected")
    lines += _field("Connection-specific DNS Suffix", suffix)
    if full:
        description = "vmxnet3 Ethernet Adapter" + (f" #{adapter.ordinal}" if adapter.ordinal > 1 else "")
        lines += _field("Description", description)
        lines += _field("Physical Address", iface.mac.upper().replace(":", "-"))
        lines += _field("DHCP Enabled", "Yes" if dhcp else "No")
        lines += _field("Autoconfiguration Enabled", "Yes")
    if not iface.carrier:
        return lines

    def state(address: IpAddress) -> str:
        if not full:
            return ""
        return "(Deprecated) " if address.preferred_lifetime == 0 else "(Preferred) "

    v6 = [a for a in iface.addresses if a.family == 6]
    v4 = [a for a in iface.addresses if a.family == 4]
    for address in v6:
        if address.scope == "global":
            lines += _field("IPv6 Address", address.address + state(address))
    for address in v6:
        if address.scope == "link":
            lines += _field("Link-local IPv6 Address", f"{address.address}%{iface.index}{state(address)}")
    leases: list[IpAddress] = []
    for address in v4:
        lines += _field("IPv4 Address", address.address + state(address))
        lines += _field("Subnet Mask", _netmask(address.prefix_length))
        if address.dynamic and address.valid_lifetime is not None:
            leases.append(address)
    if full and leases:
        lines += _field(
            "Lease Expires", _long_date(datetime.now() + timedelta(seconds=leases[0].valid_lifetime or 0))
        )
    lines += _field("Default Gateway", [_gateway(g, iface.index) for g in iface.gateways])
    if full:
        if dns.servers:
            lines += _field("DNS Servers", dns.servers)
        lines += _field("NetBIOS over Tcpip", "Enabled")
    return lines


def render_ipconfig(context: WindowsGuestContext, *, full: bool = False, notes: Iterable[str] = ()) -> str:
    """The text ``ipconfig`` (``full``: ``ipconfig /all``) prints for the current real interfaces."""
    lines = ["", "Windows IP Configuration", ""]
    if full:
        dns = context.network.dns()
        lines += _field("Host Name", context.hostname.split(".", 1)[0])
        lines += _field("Primary Dns Suffix", "")
        lines += _field("Node Type", "Hybrid")
        lines += _field("IP Routing Enabled", "No")
        lines += _field("WINS Proxy Enabled", "No")
        if dns.search:
            lines += _field("DNS Suffix Search List", dns.search)
    lines += list(notes)
    for adapter in context.adapters():
        # Windows leaves disabled adapters out entirely; unplugged ones show "Media disconnected".
        if not adapter.interface.admin_up:
            continue
        lines += ["", f"Ethernet adapter {adapter.alias}:", ""]
        lines += _adapter_lines(context, adapter, full)
    return CRLF.join(lines) + CRLF


#: What Windows answers, with a filtered UAC token, to a command that needs elevation: ipconfig's and
#: netsh's messages (ansible/ansible #66472, vmware/pyvmomi-community-samples #272).
IPCONFIG_NEEDS_ELEVATION = "The requested operation requires elevation."
NETSH_NEEDS_ELEVATION = "The requested operation requires elevation (Run as administrator)."


def _lease_action(inv: Invocation, action: str, pattern: str | None) -> int:
    context = inv.shell.context
    if not context.elevated:  # renewing or releasing a lease changes the adapter: administrators only
        inv.out.write(f"{CRLF}Windows IP Configuration{CRLF}{CRLF}{IPCONFIG_NEEDS_ELEVATION}{CRLF}")
        return 1
    adapters = [a for a in context.adapters() if a.interface.admin_up]
    if pattern is not None:
        adapters = [a for a in adapters if fnmatch.fnmatch(a.alias.casefold(), pattern.casefold())]
        if not adapters:
            inv.print()
            inv.print("Windows IP Configuration")
            inv.print()
            inv.print("The operation failed as no adapter is in the state permissible for this operation.")
            return 1
    notes: list[str] = []
    failed = False
    for adapter in adapters:
        if not adapter.interface.carrier:
            notes.append(
                f"No operation can be performed on {adapter.alias} while it has its media disconnected."
            )
            continue
        try:
            if action == "renew":
                context.renew_dhcp(adapter.alias)
            else:
                context.release_dhcp(adapter.alias)
        except NetworkError as exc:
            verb = "renewing" if action == "renew" else "releasing"
            notes.append(f"An error occurred while {verb} interface {adapter.alias} : {exc}")
            failed = True
    inv.out.write(render_ipconfig(context, notes=notes))
    return 1 if failed else 0


def ipconfig(inv: Invocation) -> int:
    args = inv.args
    option = args[0].lower().replace("-", "/", 1) if args else ""
    pattern = args[1] if len(args) > 1 else None
    if not option:
        inv.out.write(render_ipconfig(inv.shell.context))
        return 0
    if option == "/all":
        inv.out.write(render_ipconfig(inv.shell.context, full=True))
        return 0
    if option in ("/renew", "/release"):
        return _lease_action(inv, option[1:], pattern)
    if option in ("/renew6", "/release6", "/registerdns"):
        # IPv6 here is SLAAC/static; there is no DHCPv6 lease to act on.
        inv.out.write(render_ipconfig(inv.shell.context))
        return 0
    if option == "/flushdns":
        inv.out.write(
            f"{CRLF}Windows IP Configuration{CRLF}{CRLF}Successfully flushed the DNS Resolver Cache.{CRLF}"
        )
        return 0
    if option == "/?":
        inv.out.write(_USAGE)
        return 0
    inv.out.write(f"{CRLF}Error: unrecognized or incomplete command line.{CRLF}{_USAGE}")
    return 1


# -- netsh ----------------------------------------------------------------------------------------


def _abbreviates(word: str, keyword: str, minimum: int = 1) -> bool:
    """netsh accepts any unambiguous prefix of a keyword ("int" for "interface")."""
    return len(word) >= minimum and keyword.startswith(word.lower())


def _set_interface(inv: Invocation, params: list[str]) -> int:
    positional = ["name", "admin", "connect", "newname"]
    values: dict[str, str] = {}
    for param in params:
        key, sep, value = param.partition("=")
        if sep and key.lower() in positional:
            values[key.lower()] = value
        else:
            free = next((p for p in positional if p not in values), None)
            if free is None:
                inv.print(
                    "The syntax supplied for this command is not valid. Check help for the correct syntax."
                )
                return 1
            values[free] = param
    name, admin = values.get("name"), values.get("admin")
    if not name or not admin or not (_abbreviates(admin, "enabled") or _abbreviates(admin, "disabled")):
        inv.print("The syntax supplied for this command is not valid. Check help for the correct syntax.")
        return 1
    context = inv.shell.context
    if not context.elevated:
        inv.print(NETSH_NEEDS_ELEVATION)
        inv.print()
        return 1
    if context.adapter(name) is None:
        inv.print("Element not found.")
        inv.print()
        return 1
    try:
        context.set_link(name, _abbreviates(admin, "enabled"))
    except NetworkError as exc:
        inv.print(str(exc))
        return 1
    return 0


def _show_interfaces(inv: Invocation) -> int:
    inv.print()
    inv.print(f"{'Admin State':<15}{'State':<15}{'Type':<17}Interface Name")
    inv.print("-" * 73)
    for adapter in inv.shell.context.adapters():
        iface = adapter.interface
        admin = "Enabled" if iface.admin_up else "Disabled"
        state = "Connected" if iface.admin_up and iface.carrier else "Disconnected"
        inv.print(f"{admin:<15}{state:<15}{'Dedicated':<17}{adapter.alias}")
    inv.print()
    return 0


def netsh(inv: Invocation) -> int:
    words = inv.args
    if len(words) >= 3 and _abbreviates(words[0], "interface", 2):
        verb, noun, rest = words[1], words[2], words[3:]
        if _abbreviates(verb, "set") and _abbreviates(noun, "interface", 2):
            return _set_interface(inv, rest)
        if _abbreviates(verb, "show", 2) and _abbreviates(noun, "interface", 2):
            return _show_interfaces(inv)
    inv.print(f"The following command was not found: {' '.join(words)}.")
    return 1
