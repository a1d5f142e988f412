"""The client's guest file transfers against vCenter-shaped URLs: they go to the VM's ESXi host, and a
host the runner cannot reach is named in one line (or discovery falls back to VMware Tools' report).

Real pieces throughout: the client (pyVmomi) -> simulator over HTTPS -> the VM's guest, with the
ESXi host's own /guestFile service on its own address; faults come from the simulator, never mocks.
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from client_helpers import FAST_RETRY

from pytest_vsphere_clone.client import guest_files
from pytest_vsphere_clone.client.discovery import ActiveDiscovery, ToolsDiscovery
from pytest_vsphere_clone.client.errors import EsxiHostUnreachable, EsxiTlsVerificationFailed
from pytest_vsphere_clone.client.guest_ops import GuestOperations
from pytest_vsphere_clone.client.inventory import find_template
from pytest_vsphere_clone.client.session import VSphereConnection
from pytest_vsphere_clone.client.waiter import Waiter
from pytest_vsphere_clone.simulator import Simulator, SimulatorConfig
from pytest_vsphere_clone.simulator.guests import guest_support_problem

pytestmark = pytest.mark.guests

INVENTORY: dict[str, Any] = {"datacenters": [{
    "name": "dc1", "datastores": [{"name": "datastore1"}], "networks": ["VM Network"],
    "clusters": [{"name": "cluster1", "hosts": ["esx1", "esx2"]}],
    "vms": [{"name": "run1", "power": "poweredOn", "host": "esx1"}],
}]}


@pytest.fixture(scope="module")
def tsim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    reason = guest_support_problem()
    if reason:
        pytest.skip(reason)
    path = tmp_path_factory.mktemp("client-transfer-urls") / "inventory.json"
    path.write_text(json.dumps(INVENTORY))
    with Simulator(SimulatorConfig(guests=True, inventory=path)) as simulator:
        yield simulator


def _connect(sim: Simulator) -> VSphereConnection:
    return VSphereConnection(f"{sim.host}:{sim.port}", sim.user, sim.password, ca_bundle=sim.ca_file,
                             retry=FAST_RETRY, timeout=30.0).connect()


@pytest.fixture(scope="module")
def tconn(tsim: Simulator) -> Iterator[VSphereConnection]:
    conn = _connect(tsim)
    yield conn
    conn.close()


def _guest(sim: Simulator, conn: VSphereConnection) -> GuestOperations:
    facts = sim.connection_facts()
    vm = find_template(conn, "run1").ref
    return GuestOperations(conn, vm, facts["GUEST_USER"], facts["GUEST_PASSWORD"], os_family="linux",
                           retry=FAST_RETRY, vm_name="run1")


@pytest.fixture
def guest(tsim: Simulator, tconn: VSphereConnection) -> Iterator[GuestOperations]:
    yield _guest(tsim, tconn)
    tsim.host_reachable("esx1")  # whatever the test did to it


def test_transfers_go_to_the_vm_s_esxi_host(tsim: Simulator, guest: GuestOperations) -> None:
    manager: Any = guest.conn.content.guestOperationsManager
    info = manager.fileManager.InitiateFileTransferFromGuest(guest.vm, guest._auth(), "/etc/hostname")
    # A vCenter's URL names the host: used as it is, nothing put in.
    assert guest.transfer_url(info.url) == info.url
    assert (urlsplit(info.url).hostname, urlsplit(info.url).port) == tsim.host_address("esx1")
    guest.write_file("/tmp/client-transfer-urls", b"through esx1\n")
    assert guest.read_file("/tmp/client-transfer-urls") == b"through esx1\n"
    assert guest.run("cat /tmp/client-transfer-urls").stdout == "through esx1\n"
    runtime = tsim.vc.guests if tsim.vc is not None else None
    assert runtime is not None
    assert runtime.file_transfers.pending() == 1  # only the URL this test asked for itself: the client used its own


def test_a_star_url_names_the_endpoint_this_connection_talks_to(guest: GuestOperations) -> None:
    # A direct ESXi connection answers "*" ("the host you asked"): its host and port, as govmomi does.
    conn = guest.conn
    assert guest.transfer_url("https://*:443/guestFile?id=1&token=x") == \
        f"https://{conn.host}:{conn.port}/guestFile?id=1&token=x"
    assert guest.transfer_url("https://*/guestFile?id=2") == f"https://{conn.host}:{conn.port}/guestFile?id=2"


def test_a_direct_esxi_connection_s_star_urls_work(tmp_path: Path) -> None:
    # Through ESXi the URL's host is "*" on 443, meaning the host the client talks to: the client
    # puts in the endpoint it is connected to (the simulator's own port here).
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps(INVENTORY))
    with Simulator(SimulatorConfig(guests=True, inventory=path, api_type="HostAgent")) as esxi:
        conn = _connect(esxi)
        try:
            guest = _guest(esxi, conn)
            manager: Any = conn.content.guestOperationsManager
            url = manager.fileManager.InitiateFileTransferFromGuest(guest.vm, guest._auth(), "/etc/hostname").url
            assert (urlsplit(url).hostname, urlsplit(url).port) == ("*", 443)
            guest.write_file("/tmp/through-esxi", b"direct\n")
            assert guest.read_file("/tmp/through-esxi") == b"direct\n"
        finally:
            conn.close()


def test_an_unreachable_esxi_host_is_named_in_one_line(tsim: Simulator, guest: GuestOperations) -> None:
    address, port = tsim.host_address("esx1")
    tsim.host_unreachable("esx1")
    with pytest.raises(EsxiHostUnreachable) as raised:
        guest.read_file("/etc/hostname")
    message = str(raised.value)
    assert "\n" not in message
    assert message == (f"guest file transfer from VM 'run1' failed: cannot reach ESXi host esx1 at "
                       f"{address}:{port} (connection refused): the machine running pytest must reach the ESXi "
                       f"hosts on port 443 for Guest Operations file transfers; open that path, or do without "
                       f"them: --vsphere-discovery=tools and --vsphere-ssh-host-key-policy=known-hosts (or "
                       f"accept-new)")
    with pytest.raises(EsxiHostUnreachable, match=r"^guest file transfer to VM 'run1' failed: cannot reach ESXi"):
        guest.write_file("/tmp/never", b"x")
    with pytest.raises(EsxiHostUnreachable):  # a command's output comes back through a transfer too
        guest.run("echo hi", timeout=20)
    tsim.host_reachable("esx1")
    assert guest.read_file("/etc/hostname") == b"run1\n"


def test_a_host_that_never_answers_is_named_within_the_connect_timeout(
        tsim: Simulator, guest: GuestOperations, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(guest_files, "TRANSFER_CONNECT_TIMEOUT", 0.5)
    tsim.host_unreachable("esx1", mode="drop")
    with pytest.raises(EsxiHostUnreachable) as raised:
        guest.read_file("/etc/hostname")
    assert "cannot reach ESXi host esx1 at" in str(raised.value)
    assert "(no answer within 0.5 s)" in str(raised.value)


def test_active_discovery_falls_back_to_tools_when_the_host_is_unreachable(
        tsim: Simulator, guest: GuestOperations, caplog: pytest.LogCaptureFixture) -> None:
    tsim.host_unreachable("esx1")
    caplog.set_level(logging.INFO, logger="pytest_vsphere_clone")
    with Waiter(guest.conn) as waiter:
        found = ActiveDiscovery(guest, fallback=ToolsDiscovery(guest.conn, guest.vm, waiter)).discover(30)
    assert found.method == "tools" and found.ip
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("waiting for VMware Tools' report instead" in w and "cannot reach ESXi host esx1" in w
               for w in warnings), warnings


def test_an_untrusted_esxi_certificate_is_named(tsim: Simulator, tmp_path: Path) -> None:
    conn = _connect(tsim)
    try:
        # Verified against the simulator's CA for the vCenter, then against a trust store without
        # it for the transfers: as a runner that trusts the vCenter's certificate but not the CA
        # that signed its hosts'.
        conn.ssl_context = ssl.create_default_context(cafile=_other_ca(tmp_path))
        guest = _guest(tsim, conn)
        with pytest.raises(EsxiTlsVerificationFailed) as raised:
            guest.read_file("/etc/hostname")
        message = str(raised.value)
        assert "\n" not in message and "TLS certificate of ESXi host esx1 at" in message
        assert "--vsphere-ca-bundle" in message
    finally:
        conn.close()


def _other_ca(directory: Path) -> str:
    from pytest_vsphere_clone.simulator.tls import create_tls_files

    return str(create_tls_files(directory / "other", ["127.0.0.1"]).ca_file)


def test_the_vm_s_host_is_read_only_for_an_error(tsim: Simulator, guest: GuestOperations) -> None:
    # Reaching the host costs no property reads: its name is read only to name it in an error.
    guest.read_file("/etc/hostname")  # the guest managers are read once per session
    tsim.reset_counters()
    assert guest.read_file("/etc/hostname") == b"run1\n"
    counts = tsim.counters()
    assert counts["InitiateFileTransferFromGuest"] == 1
    assert counts["RetrievePropertiesEx"] == counts["RetrieveProperties"] == 0
