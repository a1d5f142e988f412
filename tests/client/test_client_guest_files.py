"""client/guest_files.py: uploads and downloads through Guest Operations, streamed in blocks, and the
one-line errors of a guest path at fault.

Real pieces throughout: the client (pyVmomi) -> simulator over HTTPS -> the ESXi host's /guestFile
service -> the VM's real guest; every fault is the simulator's answer, nothing is mocked.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from client_helpers import FAST_RETRY

from pytest_vsphere_clone.client import guest_files
from pytest_vsphere_clone.client.errors import FileTransferFailed
from pytest_vsphere_clone.client.guest_ops import GuestOperations
from pytest_vsphere_clone.client.inventory import find_template
from pytest_vsphere_clone.client.session import VSphereConnection
from pytest_vsphere_clone.simulator import Simulator, SimulatorConfig
from pytest_vsphere_clone.simulator.guests import guest_support_problem

pytestmark = pytest.mark.guests

INVENTORY: dict[str, Any] = {"datacenters": [{
    "name": "dc1", "datastores": [{"name": "datastore1"}], "networks": ["VM Network"],
    "clusters": [{"name": "cluster1", "hosts": ["esx1"]}],
    "vms": [{"name": "files1", "power": "poweredOn", "host": "esx1"}],
}]}


class _Reader(io.BytesIO):
    """A source that records the largest read asked of it."""

    largest = 0

    def read(self, size: int | None = -1) -> bytes:
        self.largest = max(self.largest, size if size is not None and size >= 0 else len(self.getbuffer()))
        return super().read(size)


class _Writer(io.BytesIO):
    """A sink that records the largest write it got."""

    largest = 0

    def write(self, data: Any) -> int:
        self.largest = max(self.largest, len(data))
        return super().write(data)


@pytest.fixture(scope="module")
def fsim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    reason = guest_support_problem()
    if reason:
        pytest.skip(reason)
    path = tmp_path_factory.mktemp("client-guest-files") / "inventory.json"
    path.write_text(json.dumps(INVENTORY))
    with Simulator(SimulatorConfig(guests=True, inventory=path)) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def fconn(fsim: Simulator) -> Iterator[VSphereConnection]:
    conn = VSphereConnection(f"{fsim.host}:{fsim.port}", fsim.user, fsim.password, ca_bundle=fsim.ca_file,
                             retry=FAST_RETRY, timeout=30.0).connect()
    yield conn
    conn.close()


def _guest(sim: Simulator, conn: VSphereConnection, user: str | None = None, password: str | None = None) -> Any:
    facts = sim.connection_facts()
    return GuestOperations(conn, find_template(conn, "files1").ref, user or facts["GUEST_USER"],
                           password or facts["GUEST_PASSWORD"], os_family="linux", retry=FAST_RETRY,
                           vm_name="files1")


def test_a_file_streams_both_ways_in_blocks(fsim: Simulator, fconn: VSphereConnection) -> None:
    guest = _guest(fsim, fconn)
    data = os.urandom(2 * 1024 * 1024 + 3)
    source = _Reader(data)
    fsim.reset_counters()
    guest_files.upload(guest, "/tmp/streamed.bin", source, len(data), permissions=0o600)
    sink = _Writer()
    assert guest_files.download(guest, "/tmp/streamed.bin", sink) == len(data)
    assert sink.getvalue() == data
    # Never the whole file in one read or write: the body moves in blocks.
    assert 0 < source.largest <= guest_files.BLOCK and 0 < sink.largest <= guest_files.BLOCK
    counts = fsim.counters()
    assert counts["InitiateFileTransferToGuest"] == counts["InitiateFileTransferFromGuest"] == 1
    assert guest.run("stat -c %a /tmp/streamed.bin").stdout.strip() == "600"  # GuestPosixFileAttributes
    guest.delete_file("/tmp/streamed.bin")


def test_a_guest_path_at_fault_is_one_line_naming_it(fsim: Simulator, fconn: VSphereConnection) -> None:
    guest = _guest(fsim, fconn)
    guest.write_file("/tmp/already-there", b"old")
    cases = [
        (lambda: guest_files.upload(guest, "/tmp/already-there", io.BytesIO(b"new"), 3, overwrite=False), "exists",
         "put of /tmp/already-there to VM 'files1' over Guest Operations failed: the file exists in the guest: "
         "pass overwrite=True to replace it"),
        (lambda: guest_files.upload(guest, "/tmp/missing-dir/x", io.BytesIO(b"x"), 1), "not-found",
         "put of /tmp/missing-dir/x to VM 'files1' over Guest Operations failed: its directory does not exist in "
         "the guest: create it first (e.g. vm.run('mkdir -p DIR'))"),
        (lambda: guest_files.upload(guest, "/tmp", io.BytesIO(b"x"), 1), "not-a-file",
         "put of /tmp to VM 'files1' over Guest Operations failed: it is a directory or not a regular file in the "
         "guest: name a file (e.g. DIR/name)"),
        (lambda: guest_files.download(guest, "/tmp/never-made", io.BytesIO()), "not-found",
         "get of /tmp/never-made from VM 'files1' over Guest Operations failed: no such file in the guest: check "
         "the path (absolute, as the guest spells it)"),
    ]
    for call, reason, message in cases:
        with pytest.raises(FileTransferFailed) as raised:
            call()
        assert (str(raised.value), raised.value.reason) == (message, reason)
    assert guest.read_file("/tmp/already-there") == b"old"  # refused before any byte was sent
    guest.delete_file("/tmp/already-there")


def test_a_guest_user_without_the_right_is_named(fsim: Simulator, fconn: VSphereConnection) -> None:
    root = _guest(fsim, fconn)
    made = root.run("id carol >/dev/null 2>&1 || useradd -m carol && echo 'carol:Carol-pw-1' | chpasswd")
    assert made.exit_status == 0, made
    carol = _guest(fsim, fconn, "carol", "Carol-pw-1")
    with pytest.raises(FileTransferFailed) as raised:
        guest_files.upload(carol, "/root/planted", io.BytesIO(b"x"), 1)
    assert str(raised.value) == ("put of /root/planted to VM 'files1' over Guest Operations failed: guest user "
                                 "'carol' may not write it: choose a path that user may write, or another "
                                 "--vsphere-guest-user")
    with pytest.raises(FileTransferFailed, match=r"guest user 'carol' may not read it") as raised:
        guest_files.download(carol, "/etc/shadow", io.BytesIO())
    assert raised.value.reason == "denied"
