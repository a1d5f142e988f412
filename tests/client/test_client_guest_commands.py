"""Guest-side pieces that need no vCenter: command wrapping, output parsing, address filters, NIC refresh script.

The Linux refresh script runs in a real /bin/sh here (with stub network tools on PATH); the
Windows wrapper runs in the simulator's cmd.exe dialect, as Guest Operations would.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim

from pytest_vsphere_clone.client.discovery import (
    ActiveDiscovery,
    Address,
    AddressFilter,
    ToolsDiscovery,
    ipconfig_adapters,
    parse_addresses,
    parse_any,
    parse_ip_o,
    parse_ipconfig,
)
from pytest_vsphere_clone.client.errors import GuestOperationFailed, NoUsableAddress, VSphereCloneError
from pytest_vsphere_clone.client.guest_ops import GuestOperations, wrap_windows_command
from pytest_vsphere_clone.client.inventory import find_template
from pytest_vsphere_clone.client.nic_refresh import linux_script, windows_command
from pytest_vsphere_clone.client.session import VSphereConnection
from pytest_vsphere_clone.client.waiter import Waiter
from pytest_vsphere_clone.simulator import Simulator

IP_O = """\
1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
4: docker0    inet 172.17.0.1/16 brd 172.17.255.255 scope global docker0\\       valid_lft forever preferred_lft forever
2: eth0    inet 192.168.122.45/24 metric 100 brd 192.168.122.255 scope global dynamic eth0\\       valid_lft 3453sec
2: eth0    inet6 2001:db8::45/64 scope global dynamic mngtmpaddr noprefixroute \\       valid_lft 86367sec
2: eth0    inet6 2001:db8::99/64 scope global tentative \\       valid_lft forever preferred_lft forever
3: eth1    inet 169.254.10.1/16 brd 169.254.255.255 scope global eth1\\       valid_lft forever preferred_lft forever
"""

IPCONFIG = """\r
Windows IP Configuration\r
\r
\r
Ethernet adapter Ethernet0:\r
\r
   Connection-specific DNS Suffix  . : localdomain\r
   IPv6 Address. . . . . . . . . . . : 2001:db8::46\r
   Link-local IPv6 Address . . . . . : fe80::1c4b:8f1e:5b2a:9d4e%12\r
   IPv4 Address. . . . . . . . . . . : 192.168.122.46(Preferred) \r
   Subnet Mask . . . . . . . . . . . : 255.255.255.0\r
   Default Gateway . . . . . . . . . : 192.168.122.1\r
\r
Ethernet adapter Ethernet 2:\r
\r
   Autoconfiguration IPv4 Address. . : 169.254.77.3\r
   Subnet Mask . . . . . . . . . . . : 255.255.0.0\r
"""


def test_parse_ip_o() -> None:
    found = parse_ip_o(IP_O)
    assert [str(a) for a in found] == ["lo 127.0.0.1", "docker0 172.17.0.1", "eth0 192.168.122.45",
                                       "eth0 2001:db8::45", "eth0 2001:db8::99", "eth1 169.254.10.1"]
    assert found[4].note == "tentative"


def test_parse_ipconfig_and_adapters() -> None:
    found = parse_ipconfig(IPCONFIG)
    assert [str(a) for a in found] == ["Ethernet0 2001:db8::46", "Ethernet0 fe80::1c4b:8f1e:5b2a:9d4e",
                                       "Ethernet0 192.168.122.46", "Ethernet 2 169.254.77.3"]
    assert ipconfig_adapters(IPCONFIG) == ["Ethernet0", "Ethernet 2"]


def test_parse_free_text_skips_netmasks() -> None:
    assert [a.address for a in parse_any("addr: 10.1.2.3 mask 255.255.255.0\nv6 2001:db8::7/64 x.y")] == [
        "10.1.2.3", "2001:db8::7"]


def test_parse_addresses_picks_the_format() -> None:
    assert parse_addresses(IP_O)[0].interface == "lo"
    assert parse_addresses(IPCONFIG)[0].interface == "Ethernet0"
    assert parse_addresses("10.9.8.7\n") == [Address("10.9.8.7")]


def test_filter_picks_the_reachable_address() -> None:
    ipv4 = AddressFilter()
    usable = ipv4.usable(parse_ip_o(IP_O))
    assert [a.address for a in usable] == ["192.168.122.45", "172.17.0.1"]  # the bridge last
    assert ipv4.describe(parse_ip_o(IP_O)) == [
        "lo 127.0.0.1 (loopback)", "docker0 172.17.0.1 (usable)", "eth0 192.168.122.45 (usable)",
        "eth0 2001:db8::45 (not IPv4)", "eth0 2001:db8::99 (tentative)", "eth1 169.254.10.1 (link-local)"]


def test_filter_families_and_networks() -> None:
    addresses = parse_ipconfig(IPCONFIG)
    assert [a.address for a in AddressFilter("ipv6").usable(addresses)] == ["2001:db8::46"]  # fe80 refused
    assert [a.address for a in AddressFilter("any").usable(addresses)] == ["192.168.122.46", "2001:db8::46"]
    assert AddressFilter("any", "2001:db8::/32").usable(addresses)[0].address == "2001:db8::46"
    assert AddressFilter("ipv4", "10.0.0.0/8").usable(addresses) == []
    assert AddressFilter("ipv4", "10.0.0.0/8").rejection("192.168.122.46") == "outside 10.0.0.0/8"
    assert AddressFilter().rejection("224.0.0.1") == "not a host address"
    assert AddressFilter().wanted == "IPv4" and AddressFilter("any", "10.0.0.0/8").wanted == "IP in 10.0.0.0/8"


@pytest.mark.parametrize(("family", "network", "setting"), [("ipv5", None, "--vsphere-ip-family"),
                                                             ("ipv4", "10.0.0.0/33", "--vsphere-ip-network")])
def test_invalid_filters_name_the_setting(family: str, network: str | None, setting: str) -> None:
    with pytest.raises(VSphereCloneError, match=setting):
        AddressFilter(family, network)


# --- command wrapping ------------------------------------------------------------------------------------


def test_windows_wrapper_in_the_cmd_dialect(tmp_path: Path) -> None:
    out = r"C:\Users\Administrator\AppData\Local\Temp\vmware1.out"
    err = r"C:\Users\Administrator\AppData\Local\Temp\vmware2.err"
    program, arguments = wrap_windows_command("echo hello& echo oops 1>&2& exit /b 3", out, err)
    cli = "pytest_vsphere_clone.simulator.guests.windows.cmd.cli"
    run = subprocess.run([sys.executable, "-m", cli, "--disk-root", str(tmp_path), program, arguments],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 3
    temp = tmp_path / "C" / "Users" / "Administrator" / "AppData" / "Local" / "Temp"
    assert (temp / "vmware1.out").read_bytes() == b"hello\r\n"
    assert (temp / "vmware2.err").read_bytes() == b"oops \r\n"


def test_windows_refresh_command() -> None:
    assert windows_command("Ethernet 2") == ('netsh interface set interface "Ethernet 2" disable & netsh interface '
                                             'set interface "Ethernet 2" enable & ipconfig /renew "Ethernet 2"')


# --- the Linux NIC refresh script, with stub tools --------------------------------------------------------


def _stub_bin(tmp_path: Path, tools: dict[str, str]) -> Path:
    """A PATH with the basic utilities the script needs plus stub network tools that log their calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("awk", "cut", "grep", "cat"):
        real = next(Path(d) / name for d in ("/usr/bin", "/bin") if (Path(d) / name).exists())
        (bin_dir / name).symlink_to(real)
    log = tmp_path / "calls.log"
    link_list = "1: lo: <LOOPBACK,UP> mtu 65536\\n2: eth0@if9: <BROADCAST,UP> mtu 1500\\n3: docker0: <UP> mtu 1500"
    base = {"ip": f'echo "ip $*" >> {log}; [ "$1" = -o ] && printf "{link_list}\\n"; exit 0'}
    for name, body in {**base, **tools}.items():
        script = bin_dir / name
        script.write_text(f"#!/bin/sh\necho \"{name} $*\" >> {log}\n{body}\n" if name != "ip"
                          else f"#!/bin/sh\n{body}\n")
        script.chmod(0o755)
    return bin_dir


def _run_script(tmp_path: Path, tools: dict[str, str]) -> tuple[int, str, list[str]]:
    bin_dir = _stub_bin(tmp_path, tools)
    env = {"PATH": str(bin_dir)}
    run = subprocess.run(["/bin/sh", "-c", linux_script()], capture_output=True, text=True, env=env, check=False)
    log = tmp_path / "calls.log"
    calls = [c for c in log.read_text().splitlines() if c != "ip -o link show"] if log.exists() else []
    return run.returncode, run.stdout, calls


def test_refresh_with_dhclient(tmp_path: Path) -> None:
    status, stdout, calls = _run_script(tmp_path, {"dhclient": "exit 0"})
    assert status == 0 and stdout.strip() == "nic-refresh: dhclient eth0"
    assert calls == ["dhclient -r eth0", "ip link set eth0 down", "ip link set eth0 up", "dhclient -1 eth0"]


def test_refresh_with_networkmanager(tmp_path: Path) -> None:
    status, stdout, calls = _run_script(tmp_path, {"nmcli": '[ "$1" = -t ] && echo running; exit 0',
                                                   "dhclient": "exit 0"})
    assert status == 0 and stdout.startswith("nic-refresh: networkmanager")
    assert calls == ["nmcli -t -f RUNNING general", "nmcli device disconnect eth0", "nmcli device connect eth0"]


def test_refresh_with_systemd_networkd(tmp_path: Path) -> None:
    status, stdout, calls = _run_script(tmp_path, {"networkctl": "exit 0", "systemctl": "exit 0",
                                                   "netplan": "exit 0"})
    assert status == 0 and stdout.startswith("nic-refresh: systemd-networkd")
    assert calls[-1] == "networkctl reconfigure eth0"


def test_refresh_with_netplan_only(tmp_path: Path) -> None:
    status, stdout, calls = _run_script(tmp_path, {"netplan": "exit 0"})
    assert status == 0 and stdout.startswith("nic-refresh: netplan")
    assert calls == ["netplan apply"]


def test_refresh_falls_back_to_a_link_bounce(tmp_path: Path) -> None:
    status, stdout, calls = _run_script(tmp_path, {})
    assert status == 0 and stdout.strip() == "nic-refresh: link-bounce eth0"
    assert calls == ["ip link set eth0 down", "ip link set eth0 up"]


def test_refresh_failure_is_the_exit_status(tmp_path: Path) -> None:
    status, _, _ = _run_script(tmp_path, {"dhclient": '[ "$1" = -1 ] && exit 2; exit 0'})
    assert status == 2


# --- without guests -------------------------------------------------------------------------------


def test_guest_operations_the_server_does_not_support_are_clear(sim: Simulator, conn: VSphereConnection) -> None:
    # Without guests the simulator answers Guest Operations with NotSupported: the errors say what
    # to do, and discovery without a fallback ends at once instead of retrying until its timeout.
    template = find_template(conn, "linux-frozen")
    guest = GuestOperations(conn, template.ref, "root", "pw", os_family="linux")
    with pytest.raises(GuestOperationFailed, match=r"not supported by the server.*--vsphere-discovery=tools"):
        guest.run("true")
    started = time.monotonic()
    with pytest.raises(NoUsableAddress, match="NotSupported"):
        ActiveDiscovery(guest).discover(30)
    assert time.monotonic() - started < 10


def test_active_discovery_falls_back_to_tools_without_guest_operations(sim: Simulator,
                                                                       conn: VSphereConnection) -> None:
    # No guests: Tools never report an address either, so the fallback fails, listing both.
    template = find_template(conn, "linux-frozen")
    guest = GuestOperations(conn, template.ref, "root", "pw", os_family="linux", vm_name="linux-frozen")
    with Waiter(conn) as waiter, pytest.raises(NoUsableAddress) as raised:
        ActiveDiscovery(guest, fallback=ToolsDiscovery(conn, template.ref, waiter, vm_name="linux-frozen")).discover(1)
    message = str(raised.value)
    assert "no usable IPv4 address for VM 'linux-frozen' within 1 s" in message
    assert "guest operations failed" in message and "NotSupported" in message


def _tools_report(sim: Simulator, name: str, ip: str | None, net: list[Any]) -> None:
    """Make the simulated Tools of ``name`` report ``ip`` / ``net`` (what a guest's Tools would send)."""
    vm = sim.find_vm(name)
    assert sim.vc is not None
    with sim.vc.lock:
        vm.frozen = False
        vm.tools.running = True
        vm.tools.ip_address = ip
        vm.tools.net = net
        vm.changed()


def test_tools_discovery_from_guest_ip_address(sim: Simulator, conn: VSphereConnection) -> None:
    template = find_template(conn, "linux-frozen")
    _tools_report(sim, "linux-frozen", "10.0.0.7", [])
    with Waiter(conn) as waiter:
        found = ToolsDiscovery(conn, template.ref, waiter).discover(5)
    assert (found.ip, found.method) == ("10.0.0.7", "tools")


def test_tools_discovery_timeout_lists_what_tools_reported(sim: Simulator, conn: VSphereConnection) -> None:
    template = find_template(conn, "linux-frozen")
    _tools_report(sim, "linux-frozen", "169.254.0.9", [])
    with Waiter(conn) as waiter, pytest.raises(NoUsableAddress) as raised:
        ToolsDiscovery(conn, template.ref, waiter, vm_name="linux-frozen").discover(1)
    assert "tools: 169.254.0.9 (link-local)" in str(raised.value)


def test_tools_discovery_from_guest_net(sim: Simulator, conn: VSphereConnection) -> None:
    template = find_template(conn, "linux-frozen")
    nic = vim.vm.GuestInfo.NicInfo(network="VM Network", macAddress="00:50:56:80:00:01", connected=True,
                                   deviceConfigId=4000, ipAddress=["fe80::1", "10.0.0.8"])
    _tools_report(sim, "linux-frozen", None, [nic])
    with Waiter(conn) as waiter:
        found = ToolsDiscovery(conn, template.ref, waiter).discover(3)
    assert found.ip == "10.0.0.8"
