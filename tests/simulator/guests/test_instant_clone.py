"""Instant clones: the source's guest state with a new hardware MAC, stale until the guest refreshes its NIC."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from guest_helpers import PASSWORD, MakeGuest, copy_disk, run_in_guest, ssh, ssh_run, wait_until

from pytest_vsphere_clone.simulator.guests import Guest, GuestHost, GuestNotRunning

pytestmark = pytest.mark.guests


def _reaches(guest: Guest, target: tuple[str, int]) -> bool:
    """Can the guest open a TCP connection to the host? (run inside the guest, as root)"""
    probe = f"-c 'timeout 1 bash -c \"exec 3<>/dev/tcp/{target[0]}/{target[1]}\"'"
    return run_in_guest(guest, "root", "/bin/sh", probe) == 0


@pytest.fixture
def source(make_guest: MakeGuest) -> Guest:
    guest = make_guest(user="root", hostname="golden")
    guest.wait_for_ip()
    return guest


def _instant_clone(make_guest: MakeGuest, source: Guest, tmp_path: Path) -> Guest:
    return make_guest(
        resume_from=source, user="root", hostname="clone-name", disk_dir=copy_disk(source, tmp_path / "clone")
    )


def test_clone_resumes_stale_until_dhclient(
    host: GuestHost, make_guest: MakeGuest, source: Guest, tmp_path: Path, tcp_listener: tuple[str, int]
) -> None:
    source_ip = source.wait_for_ip()
    clone = _instant_clone(make_guest, source, tmp_path)

    # The clone believes it still has the source's address, MAC and hostname...
    (eth0,) = clone.interfaces()
    assert clone.primary_ip() == source_ip and clone.hostname == "golden"
    assert eth0.mac == source.spec.mac != clone.spec.mac
    # ...but its frames carry a MAC the virtual switch port does not accept: nothing works.
    assert not _reaches(clone, tcp_listener)
    assert _reaches(source, tcp_listener)

    clone.write_file("root", "/tmp/whoami", b"the clone\n")
    assert run_in_guest(clone, "root", shutil.which("dhclient") or "/sbin/dhclient") == 0  # kitchen-vcenter's refresh

    clone_ip = clone.primary_ip()
    assert clone_ip is not None and clone_ip != source_ip
    assert [a.ip for a in clone.interfaces()[0].ip_addresses if "." in a.ip] == [clone_ip]  # stale one gone
    assert clone.interfaces()[0].mac == clone.spec.mac
    assert _reaches(clone, tcp_listener)
    with ssh(clone_ip, "root", PASSWORD) as client:
        assert ssh_run(client, "cat /tmp/whoami; hostname") == (0, "the clone\ngolden\n")
    with ssh(source_ip, "root", PASSWORD) as client:  # the source is untouched
        assert ssh_run(client, "test -e /tmp/whoami; echo $?") == (0, "1\n")


def test_link_down_up_then_dhcp_refreshes(
    make_guest: MakeGuest, source: Guest, tmp_path: Path, tcp_listener: tuple[str, int]
) -> None:
    clone = _instant_clone(make_guest, source, tmp_path)
    assert run_in_guest(clone, "root", "/bin/sh", "-c 'ip link set eth0 down && ip link set eth0 up'") == 0

    # The simulated driver noticed the down and adopted the hardware MAC; the stale address is gone.
    wait_until(lambda: clone.interfaces()[0].mac == clone.spec.mac, what="MAC adoption")
    assert clone.primary_ip() is None

    assert run_in_guest(clone, "root", "/bin/sh", "-c 'dhclient -1 eth0'") == 0
    assert clone.primary_ip() not in (None, source.primary_ip())
    assert _reaches(clone, tcp_listener)


def test_clone_needs_a_running_source(make_guest: MakeGuest, tmp_path: Path) -> None:
    off = make_guest(boot=False)
    clone = make_guest(boot=False, resume_from=off, disk_dir=tmp_path / "disk")
    with pytest.raises(GuestNotRunning):
        clone.boot()
    assert not clone.running
