"""A guest's file system is a copy-on-write view of the host's, its changes kept on the VM disk.

Guests run package installs and configuration management as root: nothing they
write may reach the host, and what they write behaves like a disk (kept across
power cycles, copied for a full clone, private to each VM).
"""

from __future__ import annotations

import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from guest_helpers import MakeGuest, copy_disk, run_in_guest

from pytest_vsphere_clone.simulator.guests import Guest, GuestFileNotFound
from pytest_vsphere_clone.simulator.guests.host.namespace import host_submounts

pytestmark = pytest.mark.guests

PROBES = ("/usr/local/bin/pvc-probe", "/opt/pvc-probe/data", "/var/lib/pvc-probe/data", "/pvc-probe")
HOST_PATHS = ("/usr/local/bin/pvc-probe", "/opt/pvc-probe", "/var/lib/pvc-probe", "/pvc-probe")
_WRITE_PROBES = (
    "-c 'set -e; mkdir -p /opt/pvc-probe /var/lib/pvc-probe; "
    "for f in /usr/local/bin/pvc-probe /opt/pvc-probe/data /var/lib/pvc-probe/data /pvc-probe; "
    "do echo \"$(hostname) $f\" > $f; done'"
)


@pytest.fixture
def host_victim() -> Iterator[Path]:
    """A host file on the root file system that a guest will delete."""
    path = Path("/var/tmp") / f"pvc-victim-{uuid.uuid4().hex}"
    path.write_text("host\n")
    yield path
    path.unlink(missing_ok=True)


def _sees_probes(guest: Guest, hostname: str) -> None:
    for probe in PROBES:
        assert guest.read_file("root", probe) == f"{hostname} {probe}\n".encode(), probe


def test_guest_writes_land_on_its_disk_not_on_the_host(make_guest: MakeGuest, host_victim: Path) -> None:
    assert not any(map(os.path.lexists, HOST_PATHS)), "leftovers on the host from an earlier run"
    guest = make_guest(user="root", hostname="cow1")
    assert run_in_guest(guest, "root", "/bin/sh", _WRITE_PROBES) == 0
    assert run_in_guest(guest, "root", "/bin/rm", str(host_victim)) == 0
    # File operations see the same view, and write to it too.
    guest.write_file("root", "/usr/local/pvc-probe-fileop", b"fileop\n")

    _sees_probes(guest, "cow1")
    assert guest.read_file("root", "/usr/local/pvc-probe-fileop") == b"fileop\n"
    with pytest.raises(GuestFileNotFound):
        guest.read_file("root", str(host_victim))
    assert not any(map(os.path.lexists, HOST_PATHS)) and not Path("/usr/local/pvc-probe-fileop").exists()
    assert host_victim.read_text() == "host\n"
    rootfs = guest.spec.disk_dir / "rootfs"
    assert (rootfs / "usr/local/bin/pvc-probe").read_text() == "cow1 /usr/local/bin/pvc-probe\n"
    whiteout = os.lstat(rootfs / str(host_victim).lstrip("/"))
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0

    guest.shutdown()
    assert str(guest.spec.disk_dir) not in Path("/proc/self/mountinfo").read_text()  # nothing left mounted
    guest.boot()
    _sees_probes(guest, "cow1")  # the disk persists across a power cycle
    with pytest.raises(GuestFileNotFound):
        guest.read_file("root", str(host_victim))


def test_full_clone_disk_carries_the_changes(make_guest: MakeGuest, host_victim: Path, tmp_path: Path) -> None:
    source = make_guest(user="root", hostname="cow2")
    assert run_in_guest(source, "root", "/bin/sh", _WRITE_PROBES) == 0
    assert run_in_guest(source, "root", "/bin/rm", str(host_victim)) == 0
    clone = make_guest(user="root", hostname="cow2clone", disk_dir=copy_disk(source, tmp_path / "clone-disk"))

    _sees_probes(clone, "cow2")
    with pytest.raises(GuestFileNotFound):
        clone.read_file("root", str(host_victim))
    # From here on the two disks are separate.
    clone.write_file("root", "/opt/pvc-probe/data", b"clone\n", overwrite=True)
    assert source.read_file("root", "/opt/pvc-probe/data") == b"cow2 /opt/pvc-probe/data\n"
    assert host_victim.exists()


def test_guests_do_not_see_each_others_writes(make_guest: MakeGuest) -> None:
    first = make_guest(user="root", hostname="cow3")
    second = make_guest(user="root", hostname="cow4")
    assert run_in_guest(first, "root", "/bin/sh", _WRITE_PROBES) == 0
    _sees_probes(first, "cow3")
    for probe in PROBES:
        with pytest.raises(GuestFileNotFound):
            second.read_file("root", probe)
    assert run_in_guest(second, "root", "/bin/sh", _WRITE_PROBES) == 0
    _sees_probes(second, "cow4")
    _sees_probes(first, "cow3")


def test_guest_root_is_not_the_host_root_but_keeps_permissions(make_guest: MakeGuest) -> None:
    guest = make_guest()  # alice, an ordinary user
    # The guest sees the host's programs and keeps their permissions: a user cannot write /usr.
    assert run_in_guest(guest, "alice", "/bin/sh", "-c 'test -x /bin/sh && ! touch /usr/local/x'") == 0
    assert run_in_guest(guest, "alice", "/bin/sh", "-c 'test -k /tmp && test -k /var/tmp && test -w /var/tmp'") == 0
    # The tools are installed on the disk; the guest may replace them, as any package.
    assert run_in_guest(guest, "alice", "/usr/bin/vmware-rpctool", "info-get guestinfo.none") == 1
    assert (guest.spec.disk_dir / "rootfs" / "usr" / "bin" / "vmtoolsd").exists()


def test_unusable_disk_layer_falls_back_to_a_volatile_one(make_guest: MakeGuest) -> None:
    """If the disk cannot hold an overlay's upper layer, changes are lost at power-off - never put on the host."""
    guest = make_guest(boot=False, user="root")
    disk = guest.spec.disk_dir
    (disk / "rootfs" / "w").mkdir(parents=True)
    (disk / ".work").mkdir()
    (disk / ".work" / "rootfs").symlink_to(disk / "rootfs" / "w")  # overlayfs refuses a workdir inside upperdir
    guest.boot()
    assert "changes to" in (guest.runtime_dir / "init.log").read_text()
    script = "-c 'echo x > /pvc-probe && vmware-rpctool info-get x; [ $? = 1 ]'"  # the tools still work
    assert run_in_guest(guest, "root", "/bin/sh", script) == 0
    assert guest.read_file("root", "/pvc-probe") == b"x\n"
    assert not os.path.lexists("/pvc-probe") and not (disk / "rootfs" / "pvc-probe").exists()
    guest.shutdown()
    guest.boot()
    with pytest.raises(GuestFileNotFound):
        guest.read_file("root", "/pvc-probe")


def test_host_submounts_get_their_own_overlay() -> None:
    mountinfo = "\n".join(
        [
            "22 1 8:1 / / rw - ext4 /dev/sda1 rw",
            "23 22 0:5 / /proc rw - proc proc rw",
            "24 22 8:2 / /var rw - xfs /dev/sda2 rw",
            "25 24 0:30 / /var/tmp rw - tmpfs tmpfs rw",
            "26 22 0:31 / /boot/efi rw - autofs systemd-1 rw",
            "27 26 8:3 / /boot/efi rw - vfat /dev/sda3 rw",
            "28 22 0:32 / /home rw - ext4 /dev/sda4 rw",
            "29 22 0:33 / /run/user/0 rw - tmpfs tmpfs rw",
            "30 22 0:34 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw",
            "31 22 0:35 / /etc/hosts rw - ext4 /dev/sda1 rw",
            r"32 22 0:36 / /var/with\040space rw - ext4 /dev/sda5 rw",
            "33 22 0:37 / /opt/a:b rw - ext4 /dev/sda6 rw",
        ]
    )
    found = host_submounts("linux", mountinfo)
    # Only directories that exist here can be listed: the host's real / has /var and /home.
    assert "/var" in found and "/home" not in found and "/proc" not in found
    assert not any(mp.startswith(("/run", "/sys", "/etc", "/opt/a")) for mp in found)
    assert found == sorted(found)
    assert set(found) <= {"/var", "/var/tmp", "/boot/efi", "/var/with space"}
    windows = host_submounts("windows", mountinfo)
    assert "/home" in windows
