"""What a Linux guest's OS image decides for its network identity: /etc/machine-id and systemd-networkd.

machine-id(5): /etc/machine-id is "a single newline-terminated, hexadecimal, 32-character, lowercase ID";
when it is empty or missing at boot, systemd generates one, and on a writable root keeps it (the first
boot commits it). systemd.network(5), [DHCPv4] ClientIdentifier=: "mac" sends the MAC address; the
default "duid" sends an RFC 4361 identifier, an IAID and a DUID, the DUID derived from the machine-id
(DUID-EN, systemd's enterprise number 43793). A template that keeps its machine-id thus gives every
clone the same DHCP client identity, and a DHCP server (which keys leases by client identifier when
there is one, RFC 2131 section 4.2) the same lease (systemd #9609, chef/bento #1062). The fixes: an
empty /etc/machine-id in the template, or ClientIdentifier=mac.

The simulated guests run ISC dhclient in networkd's place; for a networkd image the guest's
/etc/dhcp/dhclient.conf sends the identifier networkd would, so every DHCP exchange of the guest (at
boot, on a NIC refresh, on ``ipconfig /renew``) carries it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from pathlib import Path

_MACHINE_ID_RE = re.compile(r"^[0-9a-f]{32}$")
#: The .network file an inventory's ``"dhcp_client": "networkd"`` installs in the template's image.
NETWORKD_UNIT = "systemd/network/80-vmware-eth0.network"
_NETWORKD_CONFIG = "[Match]\nName=eth0\n\n[Network]\nDHCP=ipv4\n"
_DHCLIENT_MARK = "# Written by the simulated guest: systemd-networkd's DHCP client identity"
_SYSTEMD_ENTERPRISE_NUMBER = 43793  # the IANA enterprise number systemd's DUID-EN carries


def valid_machine_id(value: str) -> bool:
    return bool(_MACHINE_ID_RE.match(value))


def new_machine_id() -> str:
    return secrets.token_hex(16)


def seed(etc: Path, machine_id: str | None, networkd: bool) -> None:
    """Give a template's image (its disk's /etc layer) a committed machine-id and/or networkd's DHCP config.

    Only what is not there yet: the image is the template's, changed since by whatever its guest did.
    """
    if machine_id is not None and not (etc / "machine-id").exists():
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "machine-id").write_text(machine_id + "\n")
        (etc / "machine-id").chmod(0o444)
    unit = etc / NETWORKD_UNIT
    if networkd and not unit.exists():
        unit.parent.mkdir(parents=True, exist_ok=True)
        unit.write_text(_NETWORKD_CONFIG)


def ensure_machine_id(etc: Path) -> str:
    """The image's machine-id; an empty or missing one is generated and kept, as systemd's first boot does."""
    path = etc / "machine-id"
    current = path.read_text().strip() if path.exists() else ""
    if valid_machine_id(current):
        return current
    machine_id = new_machine_id()
    path.write_text(machine_id + "\n")
    path.chmod(0o444)
    return machine_id


def _networkd_client_identifier(etc: Path) -> str | None:
    """``ClientIdentifier=`` of the .network file that runs DHCP on eth0 ("duid" by default); None without one."""
    directory = etc / "systemd" / "network"
    for unit in sorted(directory.glob("*.network")) if directory.is_dir() else ():
        section, values = "", {}
        for raw in unit.read_text(errors="replace").splitlines():
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1]
                continue
            key, sep, value = line.partition("=")
            if sep:
                values[(section, key.strip())] = value.strip()
        names = values.get(("Match", "Name"), "").split()
        dhcp = values.get(("Network", "DHCP"), "no").lower()
        if any(_glob_match(name, "eth0") for name in names) and dhcp in ("yes", "true", "ipv4", "1"):
            return (values.get(("DHCPv4", "ClientIdentifier")) or values.get(("DHCP", "ClientIdentifier"))
                    or "duid").lower()
    return None


def _glob_match(pattern: str, name: str) -> bool:
    import fnmatch

    return fnmatch.fnmatchcase(name, pattern)


def client_identifier(kind: str, machine_id: str, mac: str, interface: str = "eth0") -> bytes:
    """DHCP option 61 as networkd sends it: ``mac`` (type 1 and the MAC) or ``duid`` (RFC 4361).

    The IAID comes from the interface name, the DUID-EN from the machine-id: clones that share both
    send the same identifier. (systemd hashes with SipHash; any hash of the same inputs behaves alike.)
    """
    if kind == "mac":
        return bytes([1]) + bytes.fromhex(mac.replace(":", ""))
    iaid = hashlib.sha256(f"iaid/{interface}".encode()).digest()[:4]
    duid = (2).to_bytes(2, "big") + _SYSTEMD_ENTERPRISE_NUMBER.to_bytes(4, "big") \
        + hashlib.sha256(f"duid/{machine_id}".encode()).digest()[:8]
    return bytes([0xFF]) + iaid + duid


def write_dhcp_identity(etc: Path, mac: str) -> bytes | None:
    """Make the guest's DHCP client send networkd's identifier (a networkd image), or leave the host's
    configuration to it; returns the identifier sent, if any."""
    conf = etc / "dhcp" / "dhclient.conf"
    kind = _networkd_client_identifier(etc)
    if kind is None:
        if conf.exists() and conf.read_text(errors="replace").startswith(_DHCLIENT_MARK):
            conf.unlink()  # no longer a networkd image: the host's dhclient.conf applies again
        return None
    identifier = client_identifier(kind, ensure_machine_id(etc), mac)
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(
        f"{_DHCLIENT_MARK} (ClientIdentifier={kind}), from /etc/systemd/network and /etc/machine-id.\n"
        "send host-name = gethostname();\n"
        f"send dhcp-client-identifier {':'.join(f'{b:02x}' for b in identifier)};\n"
        "request subnet-mask, broadcast-address, time-offset, routers, domain-name, domain-name-servers,\n"
        "        domain-search, host-name, interface-mtu;\n")
    return identifier
