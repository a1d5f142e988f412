"""A guest's virtual NIC: a veth pair from the guest's eth0 to a port of the bridge.

The bridge port enforces vSphere's "forged transmits: reject" policy in the
kernel: the port is *locked* with learning off, and a static FDB entry admits
only the NIC's hardware MAC as source. A guest whose eth0 carries another MAC -
an instant clone still using its source's - gets no frame through, so its stale
address configuration does not work.
"""

from __future__ import annotations

import json

from ..errors import GuestHostError
from .host_tools import ip_batch, run

GUEST_IFNAME = "eth0"


class VirtualNic:
    """The veth pair and bridge port of one guest."""

    def __init__(self, bridge: str, host_ifname: str, netns: str, hardware_mac: str) -> None:
        if len(host_ifname) > 15:
            raise ValueError(f"interface name {host_ifname!r} longer than 15 characters")
        self.bridge = bridge
        self.host_ifname = host_ifname
        self.netns = netns
        self.hardware_mac = hardware_mac

    def create(self, guest_mac: str, connected: bool) -> None:
        """Create the pair with ``guest_mac`` on eth0 (normally the hardware MAC) and plug it in."""
        ip_batch(
            [
                f"link add {self.host_ifname} type veth peer name {GUEST_IFNAME} address {guest_mac}"
                f" netns {self.netns}",
                f"link set {self.host_ifname} master {self.bridge}",
                f"link set {self.host_ifname} type bridge_slave learning off locked on",
                f"link set {self.host_ifname} {'up' if connected else 'down'}",
            ]
        )
        try:
            run(["bridge", "fdb", "add", self.hardware_mac, "dev", self.host_ifname, "master", "static"])
        except GuestHostError as exc:
            raise GuestHostError(f"MAC {self.hardware_mac} is already in use on {self.bridge}: {exc}") from exc

    def set_connected(self, connected: bool) -> None:
        """Connect or disconnect the virtual cable: the guest sees carrier on or off."""
        run(["ip", "link", "set", self.host_ifname, "up" if connected else "down"])

    def guest_link(self) -> dict[str, object]:
        """``ip -j link`` data of the guest's eth0."""
        links = json.loads(run(["ip", "-n", self.netns, "-j", "link", "show", GUEST_IFNAME]))
        return dict(links[0])

    def reset_guest_side(self) -> None:
        """What reloading the guest's NIC driver does: eth0 takes the hardware MAC, IPv4 config is lost.

        The link is bounced only if it was up (IPv6 link-local is regenerated from the new MAC).
        """
        was_up = "UP" in self.guest_link().get("flags", [])  # type: ignore[operator]
        lines = [
            f"link set {GUEST_IFNAME} down",
            f"link set {GUEST_IFNAME} address {self.hardware_mac}",
            f"address flush dev {GUEST_IFNAME}",
        ]
        if was_up:
            lines.append(f"link set {GUEST_IFNAME} up")
        ip_batch(lines, netns=self.netns)

    def delete(self) -> None:
        """Remove the pair if it still exists (deleting the netns removes it too)."""
        run(["ip", "link", "delete", self.host_ifname], check=False)
