"""GuestHost lifecycle: complete cleanup, crash recovery, and several simulators side by side."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from guest_helpers import PASSWORD, require_guest_support, ssh, ssh_run

from pytest_vsphere_clone.simulator.guests import GuestHost, GuestSpec
from pytest_vsphere_clone.simulator.guests.host import procfs

pytestmark = pytest.mark.guests

SRC = Path(__file__).resolve().parents[3] / "src"


def _netns() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout


def _links() -> str:
    return subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout


def _spec(tmp_path: Path, n: int, **kw: object) -> GuestSpec:
    values: dict[str, object] = {
        "vm_id": f"vm-{n}",
        "hostname": f"h{n}",
        "mac": f"00:50:56:aa:00:{n:02x}",
        "family": "linux",
        "disk_dir": tmp_path / f"disk{n}",
        "user": "alice",
        "password": PASSWORD,
    }
    values.update(kw)
    return GuestSpec(**values)  # type: ignore[arg-type]


@pytest.fixture
def fresh_host(tmp_path: Path) -> Iterator[GuestHost]:
    require_guest_support()
    host = GuestHost(tmp_path / "state", "lifecycle")
    host.start()
    try:
        yield host
    finally:
        host.stop()


def test_stop_removes_everything(fresh_host: GuestHost, tmp_path: Path) -> None:
    guests = [fresh_host.create_guest(_spec(tmp_path, n)) for n in range(3)]
    for guest in guests:
        guest.boot()
    guests[0].wait_for_ip()
    guests[1].start_program("alice", "/bin/sleep", "60")
    tag, runtime = fresh_host.tag, fresh_host.runtime_dir
    # Short-lived children (dhclient-script's own commands) may end on their own meanwhile: judge the rest.
    pids = [pid for pid in [pid for g in guests for pid in g.pids()] + [fresh_host.dhcp.pid]
            if pid and procfs.is_alive(pid)]
    assert len(pids) >= 7  # per guest at least init, sshd and dhclient, plus dnsmasq
    assert tag in _netns() and tag in _links()

    fresh_host.stop()
    fresh_host.stop()  # idempotent

    assert tag not in _netns()
    assert tag not in _links()
    assert not any(procfs.is_alive(pid) for pid in pids if pid)
    assert not any(
        str(runtime) in " ".join(procfs.cmdline(pid)) for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
    )
    assert not runtime.exists()
    assert all((tmp_path / f"disk{n}" / "etc" / "passwd").exists() for n in range(3))  # disks are the VMs'


_CRASHING_SIMULATOR = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from pytest_vsphere_clone.simulator.guests import GuestHost, GuestSpec

    state = Path(sys.argv[1])
    host = GuestHost(state / "state", "doomed")
    host.start()
    guest = host.create_guest(GuestSpec(
        vm_id="vm-1", hostname="doomed", mac="00:50:56:bb:00:01", family="linux",
        disk_dir=state / "disk", user="alice", password="pw"))
    guest.boot()
    guest.wait_for_ip()
    print(json.dumps({"tag": host.tag, "netns": guest.name, "runtime": str(host.runtime_dir),
                      "pids": guest.pids() + [host.dhcp.pid]}), flush=True)
    time.sleep(120)
    """
)


def test_next_start_sweeps_what_a_killed_simulator_left(tmp_path: Path) -> None:
    require_guest_support()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    doomed = subprocess.Popen(
        [sys.executable, "-c", _CRASHING_SIMULATOR, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        left = json.loads(doomed.stdout.readline())  # type: ignore[union-attr]
    finally:
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
    assert left["netns"] in _netns()  # a crash leaves everything behind...
    assert any(procfs.is_alive(pid) for pid in left["pids"])

    successor = GuestHost(tmp_path / "state2", "successor")
    successor.start()  # ...until the next simulator starts
    try:
        assert left["netns"] not in _netns()
        assert not any(procfs.is_alive(pid) for pid in left["pids"])
        assert f"{left['tag']}-1" not in _links()
        assert not Path(left["runtime"]).exists()
    finally:
        successor.stop()


def test_concurrent_hosts_do_not_touch_each_other(fresh_host: GuestHost, tmp_path: Path) -> None:
    first = fresh_host.create_guest(_spec(tmp_path, 1))
    first.boot()
    ip = first.wait_for_ip()

    with GuestHost(tmp_path / "other-state", "other") as other:  # its start sweeps only dead owners
        assert other.subnet != fresh_host.subnet and other.tag != fresh_host.tag
        second = other.create_guest(_spec(tmp_path, 2, mac=first.spec.mac))  # same MAC, other network
        second.boot()
        assert second.wait_for_ip() in [str(a) for a in other.subnet.hosts()]
        with ssh(ip, "alice", PASSWORD) as client:
            assert ssh_run(client, "hostname") == (0, "h1\n")

    assert first.running and fresh_host.tag in _netns()
