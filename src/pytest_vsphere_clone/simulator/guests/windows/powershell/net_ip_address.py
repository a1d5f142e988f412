"""``Get-NetIPAddress``: the guest's real interfaces and addresses as MSFT_NetIPAddress objects.

Reads the adapters of the guest's network namespace (windows/network.py) and renders each address
with the properties Windows reports (prefix and suffix origin, address state, lifetimes), filtered by
the cmdlet's ``-AddressFamily``, ``-InterfaceAlias``, ``-InterfaceIndex``, ``-PrefixOrigin`` and
``-AddressState``, failing as Windows' CIM query does when a filter matches nothing.
"""

from __future__ import annotations

import fnmatch

from ..context import WindowsGuestContext
from ..network import Adapter, IpAddress
from .language import ScriptError, Value, scalar


def _lifetime(seconds: int | None) -> str:
    if seconds is None:
        return "Infinite ([TimeSpan]::MaxValue)"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return (f"{days}." if days else "") + f"{hours:02d}:{minutes:02d}:{secs:02d}"


def net_ip_address(adapter: Adapter, address: IpAddress) -> dict[str, object]:
    """One MSFT_NetIPAddress object's properties, as Windows fills them for ``address``."""
    loopback = adapter.interface.loopback
    link = address.scope == "link"
    origin = "WellKnown" if loopback or link else ("Dhcp" if address.dynamic else "Manual")
    suffix = "WellKnown" if loopback else ("Link" if link else ("Dhcp" if address.dynamic else "Manual"))
    shown = f"{address.address}%{adapter.interface.index}" if link else address.address
    return {
        "IPAddress": shown,
        "InterfaceIndex": adapter.interface.index,
        "InterfaceAlias": adapter.alias,
        "AddressFamily": "IPv4" if address.family == 4 else "IPv6",
        "Type": "Unicast",
        "PrefixLength": address.prefix_length,
        "PrefixOrigin": origin,
        "SuffixOrigin": suffix,
        "AddressState": "Deprecated" if address.preferred_lifetime == 0 else "Preferred",
        "ValidLifetime": _lifetime(address.valid_lifetime),
        "PreferredLifetime": _lifetime(address.preferred_lifetime),
        "SkipAsSource": False,
        "PolicyStore": "ActiveStore",
    }


def get_net_ip_address(context: WindowsGuestContext, params: dict[str, Value]) -> list[Value]:
    """``Get-NetIPAddress`` with its ``params`` (lower-case names): the matching addresses, IPv6 first."""
    family = scalar(params.get("addressfamily", "")).lower()
    alias = scalar(params.get("interfacealias", "*"))
    index = params.get("interfaceindex")
    origins = {o.strip().lower() for o in scalar(params.get("prefixorigin", "")).split(",") if o.strip()}
    states = {o.strip().lower() for o in scalar(params.get("addressstate", "")).split(",") if o.strip()}
    result: list[Value] = []
    # Windows lists IPv6 addresses before IPv4 ones.
    for wanted in (6, 4):
        if family and family != f"ipv{wanted}":
            continue
        for adapter in context.adapters(include_loopback=True):
            if not adapter.interface.admin_up or not fnmatch.fnmatch(
                adapter.alias.lower(), alias.lower()
            ):
                continue
            if index is not None and str(index) != str(adapter.interface.index):
                continue
            result += [
                entry for entry in (
                    net_ip_address(adapter, a) for a in adapter.interface.addresses if a.family == wanted)
                if (not origins or str(entry["PrefixOrigin"]).lower() in origins)
                and (not states or str(entry["AddressState"]).lower() in states)
            ]
    filtered = ("interfacealias", "interfaceindex", "prefixorigin", "addressstate")
    if not result and any(name in params for name in filtered):
        raise ScriptError(
            "No matching MSFT_NetIPAddress objects found by CIM query for instances of the "
            "ROOT/StandardCimv2/MSFT_NetIPAddress class on the  CIM server.",
            "ObjectNotFound",
            "CmdletizationQuery_NotFound,Get-NetIPAddress",
        )
    return result
