"""A clone that got another live clone's address (or its source's): one error naming the cause.

DHCP servers key a lease by the client identifier when the client sends one (RFC 2131 section
4.2). systemd-networkd's default identifier is derived from /etc/machine-id (systemd.network(5),
ClientIdentifier=duid), so clones of a template that keeps its machine-id all ask for the same
lease and end up with one address (systemd #9609, chef/bento #1062). SSH or WinRM to that address
then reaches whichever VM answers ARP last: never go on with such a clone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..client.clone_types import clone_type
from ..client.errors import VSphereCloneError

if TYPE_CHECKING:
    from ..client.session import VSphereConnection
    from .clone import Clone
    from .ledger import Ledger

#: What a ledger entry's state is while its clone exists with its address.
_ALIVE = ("created", "kept")


class AddressShared(VSphereCloneError):
    """Two VMs answer one address: the template hands its clones one DHCP identity (or one static address)."""

    def __init__(self, clone: Clone, holder: str) -> None:
        self.clone_name = clone.name
        self.ip = clone.ip
        self.holder = holder
        if clone.os == "linux":
            cause = ("clones that keep their template's /etc/machine-id share systemd-networkd's DHCP client "
                     "identity (derived from it), so the DHCP server gives them one lease: empty /etc/machine-id in "
                     f"{clone.template} (`truncate -s 0 /etc/machine-id`, then take the snapshot linked clones use; "
                     "each clone then makes its own at first boot), or set ClientIdentifier=mac in the [DHCPv4] "
                     "section of its systemd-networkd configuration (netplan: dhcp-identifier: mac)")
        else:
            cause = (f"the clones of {clone.template} share one address: give the template's network adapter DHCP "
                     f"instead of a static address")
        super().__init__(f"{clone.name} got the address {clone.ip}, which {holder} has too, so connections to it "
                         f"would reach either VM: {cause}")


def check_unique_address(ledger: Ledger, conn: VSphereConnection, clone: Clone, source: Any, *,
                         source_may_run: bool = True) -> None:
    """Raise :class:`AddressShared` when ``clone.ip`` is a live clone's of this run or ``source``'s own.

    The run's clones are read from its ledger (every worker's, with the addresses they reached).
    An instant clone's source is left out: discovery never takes the address its source reports;
    so is a source that was powered off when the run looked it up (``source_may_run`` False): a
    template is not started mid-run, and its read would cost a request per clone.
    """
    for entry in ledger.entries().values():
        if entry.name != clone.name and entry.ip == clone.ip and entry.state in _ALIVE:
            raise AddressShared(clone, f"{entry.name} (another clone of this run, from {entry.template})")
    if clone_type(clone.clone_type).resumes_running or not source_may_run:
        return
    from ..client import props
    from ..client.discovery import tools_addresses

    values = props.read(conn, source, ["runtime.powerState", "guest.net", "guest.ipAddress"])
    if values.get("runtime.powerState") != "poweredOn":
        return
    if any(a.address == clone.ip for a in tools_addresses(values.get("guest.net"), values.get("guest.ipAddress"))):
        raise AddressShared(clone, f"its source {clone.template}")
