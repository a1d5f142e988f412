"""Booting real Linux guests: DHCP address, sshd with password and key login, own hostname and users."""

from __future__ import annotations

import ipaddress
import socket
import subprocess
from pathlib import Path

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from guest_helpers import PASSWORD, MakeGuest, copy_disk, ssh, ssh_run

from pytest_vsphere_clone.simulator.guests import GuestHost, GuestHostError, GuestNotRunning

pytestmark = pytest.mark.guests


def test_boot_gives_dhcp_address_and_ssh_with_password(host: GuestHost, make_guest: MakeGuest) -> None:
    host_files = {p: p.read_bytes() for p in (Path("/etc/resolv.conf"), Path("/etc/hostname")) if p.exists()}
    host_leases = sorted(Path("/var/lib/dhcp").glob("*"))
    guest = make_guest(hostname="web01")
    ip = guest.wait_for_ip()

    assert ipaddress.IPv4Address(ip) in host.subnet and ip != host.gateway_ip
    assert host.dhcp.leases()[guest.spec.mac] == ip  # the lease is keyed by the VM's MAC
    with ssh(ip, "alice", PASSWORD) as client:
        assert ssh_run(client, "hostname") == (0, "web01\n")
        assert ssh_run(client, "id -un; echo $HOME; pwd") == (0, "alice\n/home/alice\n/home/alice\n")
        # The guest's own account database: no host login users, the sshd privsep user present.
        code, passwd = ssh_run(client, "cut -d: -f1 /etc/passwd")
        assert code == 0 and {"root", "sshd", "alice"} <= set(passwd.split())
        assert "alice" not in Path("/etc/passwd").read_text().split(":")
    # The guest's DHCP client works on the guest's files only.
    assert {p: p.read_bytes() for p in host_files} == host_files
    assert sorted(Path("/var/lib/dhcp").glob("*")) == host_leases
    assert list((guest.spec.disk_dir / "var" / "lib" / "dhcp").glob("dhclient*.leases"))


def test_ssh_with_authorized_key(make_guest: MakeGuest, tmp_path: Path) -> None:
    key_file = tmp_path / "id_ed25519"
    key_file.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
    )
    key = paramiko.Ed25519Key.from_private_key_file(str(key_file))
    guest = make_guest(authorized_keys=[f"{key.get_name()} {key.get_base64()} test@host"])
    with ssh(guest.wait_for_ip(), "alice", pkey=key) as client:
        assert ssh_run(client, "whoami") == (0, "alice\n")


def test_wrong_password_is_refused_by_sshd(make_guest: MakeGuest) -> None:
    guest = make_guest()
    with pytest.raises(paramiko.AuthenticationException):
        ssh(guest.wait_for_ip(), "alice", "not the password")
    assert guest.check_login("alice", PASSWORD)
    assert not guest.check_login("alice", "not the password")
    assert not guest.check_login("root", PASSWORD)  # root is locked unless it is the guest user
    assert not guest.check_login("nobody-here", PASSWORD)


def test_guests_have_private_tmp_and_hostnames(host: GuestHost, make_guest: MakeGuest) -> None:
    first, second = make_guest(hostname="alpha"), make_guest(hostname="beta")
    first.write_file("alice", "/tmp/marker", b"first")

    assert first.read_file("alice", "/tmp/marker") == b"first"
    assert not Path("/tmp/marker").exists()
    with ssh(second.wait_for_ip(), "alice", PASSWORD) as client:
        assert ssh_run(client, "hostname; test -e /tmp/marker; echo $?") == (0, "beta\n1\n")
    assert subprocess.run(["hostname"], capture_output=True, text=True).stdout.strip() not in ("alpha", "beta")


def test_root_guest_user_logs_in_as_root(make_guest: MakeGuest) -> None:
    guest = make_guest(user="root")
    with ssh(guest.wait_for_ip(), "root", PASSWORD) as client:
        assert ssh_run(client, "id -u; echo $HOME") == (0, "0\n/root\n")


def test_clone_of_disk_keeps_host_keys_but_gets_new_address(
    host: GuestHost, make_guest: MakeGuest, tmp_path: Path
) -> None:
    source = make_guest()
    source_ip = source.wait_for_ip()
    clone = make_guest(disk_dir=copy_disk(source, tmp_path / "clone-disk"), hostname="clone1")
    clone_ip = clone.wait_for_ip()

    assert clone_ip != source_ip
    with ssh(source_ip, "alice", PASSWORD) as a, ssh(clone_ip, "alice", PASSWORD) as b:
        keys = [c.get_transport().get_remote_server_key() for c in (a, b)]
        assert keys[0] == keys[1]
        assert ssh_run(b, "hostname") == (0, "clone1\n")


def test_power_cycle_keeps_disk_and_address(make_guest: MakeGuest) -> None:
    guest = make_guest()
    ip = guest.wait_for_ip()
    with ssh(ip, "alice", PASSWORD) as client:
        ssh_run(client, "echo kept > ~/on-disk; echo lost > /tmp/in-tmpfs")
    guest.shutdown()
    guest.shutdown()  # idempotent
    assert not guest.running and guest.interfaces() == []
    with pytest.raises(GuestNotRunning):
        guest.read_file("alice", "/home/alice/on-disk")

    guest.boot()
    assert guest.wait_for_ip() == ip  # same MAC, same lease
    assert guest.read_file("alice", "/home/alice/on-disk") == b"kept\n"
    with ssh(ip, "alice", PASSWORD) as client:
        assert ssh_run(client, "test -e /tmp/in-tmpfs; echo $?") == (0, "1\n")


def test_failed_boot_leaves_nothing_behind(host: GuestHost, make_guest: MakeGuest) -> None:
    guest = make_guest(boot=False)
    keys = guest.spec.disk_dir / "etc" / "ssh"
    keys.mkdir(parents=True)
    for name in ("ed25519", "ecdsa"):
        (keys / f"ssh_host_{name}_key").write_text("corrupted disk\n")  # sshd: no host keys

    with pytest.raises(GuestHostError, match="sshd"):
        guest.boot()

    assert not guest.running
    assert guest.name not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert guest.name not in subprocess.run(["ip", "link"], capture_output=True, text=True).stdout
    assert not guest.runtime_dir.exists()
    for key in keys.glob("ssh_host_*"):
        key.unlink()  # the disk repaired, the next boot works
    guest.boot()
    assert guest.running


def test_disconnected_nic_passes_no_traffic(make_guest: MakeGuest) -> None:
    guest = make_guest()
    ip = guest.wait_for_ip()
    guest.set_nic_connected(False)
    with pytest.raises(OSError):
        socket.create_connection((ip, 22), timeout=0.5).close()
    (eth0,) = guest.interfaces()
    assert not eth0.up  # the guest sees no carrier
    guest.set_nic_connected(True)
    with ssh(ip, "alice", PASSWORD) as client:
        assert ssh_run(client, "true")[0] == 0
