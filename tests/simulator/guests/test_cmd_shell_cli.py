"""The cmd.exe dialect's CLI (what Guest Operations run) against the real network namespace of this host."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import pytest_vsphere_clone
from pytest_vsphere_clone.simulator.guests.host.host_registry import NAME_PREFIX
from pytest_vsphere_clone.simulator.guests.windows.network import LinuxNetwork

pytestmark = pytest.mark.skipif(shutil.which("ip") is None, reason="needs iproute2's ip")

SRC = Path(pytest_vsphere_clone.__file__).resolve().parents[1]


def run_cli(
    disk: Path, program: str, *arguments: str, extra: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])),
    }
    argv = [sys.executable, "-m", "pytest_vsphere_clone.simulator.guests.windows.cmd.cli", "--disk-root", str(disk)]
    argv += ["--hostname", "win-cli", "--user", "tester", *extra, program, *arguments]
    return subprocess.run(argv, capture_output=True, env=env, timeout=30, check=False)


def host_ipv4() -> dict[str, tuple[str, ...]]:
    """Global IPv4 addresses of the admin-up, non-loopback interfaces, straight from ``ip``.

    Simulator bridges are left out: guests booting in parallel tests flip their carrier at any time.
    """
    links = json.loads(subprocess.run(["ip", "-j", "addr"], capture_output=True, check=True).stdout)
    return {
        link["ifname"]: tuple(a["local"] for a in link.get("addr_info", []) if a["family"] == "inet")
        for link in links
        if "UP" in link["flags"] and "LOOPBACK" not in link["flags"] and "LOWER_UP" in link["flags"]
        and not link["ifname"].startswith(NAME_PREFIX)
    }


def test_ipconfig_shows_the_namespace_addresses(tmp_path: Path) -> None:
    before = host_ipv4()
    result = run_cli(tmp_path, r"C:\Windows\System32\ipconfig.exe")
    after = host_ipv4()
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    assert out.startswith("\r\nWindows IP Configuration\r\n\r\n")
    assert "\n" not in out.replace("\r\n", "")
    # Other tests may add or remove interfaces meanwhile; check the ones that stayed put.
    stable = {name: ips for name, ips in before.items() if after.get(name) == ips}
    for ips in stable.values():
        for ip in ips:
            assert f"   IPv4 Address. . . . . . . . . . . : {ip}\r\n" in out
    assert "127.0.0.1" not in out  # Windows' ipconfig does not list the loopback adapter


def test_cmd_redirection_lands_on_the_guest_disk(tmp_path: Path) -> None:
    result = run_cli(
        tmp_path,
        r"C:\Windows\System32\cmd.exe",
        r"/c ipconfig /all > C:\Users\tester\AppData\Local\Temp\out.txt",
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")
    saved = (
        (tmp_path / "C" / "Users" / "tester" / "AppData" / "Local" / "Temp" / "out.txt").read_bytes().decode()
    )
    assert "   Host Name . . . . . . . . . . . . : win-cli\r\n" in saved
    macs = {
        i.mac.upper().replace(":", "-") for i in LinuxNetwork().interfaces() if i.admin_up and not i.loopback
    }
    if macs:
        assert any(f"Physical Address. . . . . . . . . : {mac}\r\n" in saved for mac in macs)


def test_exit_codes_survive_the_process_boundary(tmp_path: Path) -> None:
    code_file = tmp_path / "exit-code"
    result = run_cli(tmp_path, "cmd.exe", "/c", "nosuchtool", extra=("--exit-code-file", str(code_file)))
    assert result.stderr.decode() == (
        "'nosuchtool' is not recognized as an internal or external command,\r\n"
        "operable program or batch file.\r\n"
    )
    assert code_file.read_text() == "9009\n"
    assert result.returncode == 9009 & 0xFF
    assert run_cli(tmp_path, "cmd.exe", "/c exit /b 3").returncode == 3


def test_powershell_encoded_command(tmp_path: Path) -> None:
    script = base64.b64encode(
        "hostname; (Get-NetIPAddress -AddressFamily IPv4).IPAddress".encode("utf-16-le")
    )
    result = run_cli(tmp_path, "powershell.exe", "-NonInteractive", "-EncodedCommand", script.decode())
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().split("\r\n")
    assert lines[0] == "win-cli"
    assert "127.0.0.1" in lines  # Get-NetIPAddress, unlike ipconfig, includes the loopback interface


def test_linux_network_parses_ip_json() -> None:
    interfaces = {i.name: i for i in LinuxNetwork().interfaces()}
    lo = interfaces["lo"]
    assert lo.loopback and lo.index == 1
    assert any(a.address == "127.0.0.1" and a.prefix_length == 8 and a.family == 4 for a in lo.addresses)


def test_ipconfig_renew_runs_the_configured_dhcp_command(tmp_path: Path) -> None:
    marker = tmp_path / "renewed"
    hook = f"sh -c 'echo renewed {{interface}} >> {marker}'"
    # Mapping "lo" keeps this deterministic whatever interfaces the host has. Renewing needs elevation,
    # which a program Guest Operations start has only as the built-in Administrator.
    extra = ("--interface", "Ethernet0=lo", "--dhcp-command", hook, "--user", "Administrator")
    result = run_cli(tmp_path, "ipconfig.exe", "/renew", extra=extra)
    assert result.returncode == 0, result.stderr
    assert marker.read_text() == "renewed lo\n"
    assert "Ethernet adapter Ethernet0:" in result.stdout.decode()
    assert "   IPv4 Address. . . . . . . . . . . : 127.0.0.1\r\n" in result.stdout.decode()
