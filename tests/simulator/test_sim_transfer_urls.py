"""Guest file transfer URLs as a vCenter hands them out: the VM's ESXi host on 443, single use, ten
minutes, void after a power-off; and a host the client cannot reach.

Every call goes pyVmomi -> simulator over HTTPS, every transfer is a plain HTTPS request (the
simulator's CA verified) to the address the URL names, served from the VM's real guest.
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from pyVmomi import vim
from sim_helpers import close, connect, vm_by_name, wait

from pytest_vsphere_clone.simulator import Simulator, SimulatorConfig, file_transfers
from pytest_vsphere_clone.simulator.guests import guest_support_problem

pytestmark = pytest.mark.guests

#: Running Linux VMs on both hosts; "victim" is powered off by its test.
INVENTORY: dict[str, Any] = {"datacenters": [{
    "name": "dc1", "datastores": [{"name": "datastore1"}], "networks": ["VM Network"],
    "clusters": [{"name": "cluster1", "hosts": ["esx1", "esx2"]}],
    "vms": [{"name": "run1", "power": "poweredOn", "host": "esx1"},
            {"name": "run2", "power": "poweredOn", "host": "esx2"},
            {"name": "victim", "power": "poweredOn", "host": "esx1"}],
}]}


def _write_inventory(directory: Path, data: dict[str, Any]) -> Path:
    path = directory / "inventory.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture(scope="module")
def tsim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    reason = guest_support_problem()
    if reason:
        pytest.skip(reason)
    inventory = _write_inventory(tmp_path_factory.mktemp("transfer-urls"), INVENTORY)
    with Simulator(SimulatorConfig(guests=True, inventory=inventory)) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def tsi(tsim: Simulator) -> Iterator[Any]:
    si = connect(tsim)
    yield si
    close(si)


def _auth(sim: Simulator) -> Any:
    facts = sim.connection_facts()
    return vim.vm.guest.NamePasswordAuthentication(username=facts["GUEST_USER"], password=facts["GUEST_PASSWORD"])


def _files(si: Any) -> Any:
    return si.content.guestOperationsManager.fileManager


def _download_url(sim: Simulator, si: Any, vm_name: str, path: str = "/etc/hostname") -> str:
    return str(_files(si).InitiateFileTransferFromGuest(vm_by_name(si, vm_name), _auth(sim), path).url)


def _upload_url(sim: Simulator, si: Any, vm_name: str, path: str, size: int) -> str:
    return str(_files(si).InitiateFileTransferToGuest(vm_by_name(si, vm_name), _auth(sim), path,
                                                      vim.vm.guest.FileManager.PosixFileAttributes(), size, True))


def _https(sim: Simulator, url: str, method: str = "GET", body: bytes | None = None,
           at: tuple[str, int] | None = None, timeout: float = 30.0) -> tuple[int, bytes]:
    """One plain HTTPS request for ``url`` (sent to ``at`` instead of the URL's host when given)."""
    parts = urlsplit(url)
    host, port = at or (parts.hostname or "", parts.port or 443)
    context = ssl.create_default_context(cafile=str(sim.ca_file))
    connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    try:
        connection.request(method, f"{parts.path}?{parts.query}", body=body,
                           headers={"Content-Length": str(len(body or b""))})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _management_address(host: Any) -> str:
    """The host's management address as clients such as govmomi read it: the selected vNIC of the
    ``management`` netConfig in config.virtualNicManagerInfo."""
    [config] = [c for c in host.config.virtualNicManagerInfo.netConfig if c.nicType == "management"]
    [vnic] = [v for v in config.candidateVnic if v.key in config.selectedVnic]
    return str(vnic.spec.ip.ipAddress)


def test_urls_name_the_vm_s_esxi_host_on_443(tsim: Simulator, tsi: Any) -> None:
    seen: dict[str, str] = {}
    for vm_name, host_name in (("run1", "esx1"), ("run2", "esx2")):
        vm = vm_by_name(tsi, vm_name)
        host = vm.runtime.host
        assert host.name == host_name
        url = urlsplit(_download_url(tsim, tsi, vm_name))
        # Through vCenter the URL names the ESXi host that runs the VM, on its HTTPS port.
        assert (url.scheme, url.port, url.path) == ("https", 443, "/guestFile")
        assert url.hostname == _management_address(host) == host.config.network.vnic[0].spec.ip.ipAddress
        assert (url.hostname, 443) == tsim.host_address(host_name)
        address = ipaddress.ip_address(url.hostname)
        assert address in ipaddress.ip_network("127.0.0.0/8") and str(address) != tsim.host
        seen[host_name] = str(url.hostname)
        status, body = _https(tsim, url.geturl())
        assert (status, body) == (200, f"{vm_name}\n".encode())
    assert seen["esx1"] != seen["esx2"]


def test_an_upload_goes_to_the_host_and_lands_in_the_guest(tsim: Simulator, tsi: Any) -> None:
    data = b"\x00uploaded through esx2\n"
    url = _upload_url(tsim, tsi, "run2", "/tmp/transfer-urls-upload", len(data))
    assert (urlsplit(url).hostname, urlsplit(url).port) == tsim.host_address("esx2")
    assert _https(tsim, url, "PUT", data)[0] == 200
    assert _https(tsim, _download_url(tsim, tsi, "run2", "/tmp/transfer-urls-upload")) == (200, data)


def test_the_host_presents_a_certificate_of_the_ca_with_the_thumbprint_it_reports(tsim: Simulator,
                                                                                  tsi: Any) -> None:
    host = vm_by_name(tsi, "run1").runtime.host
    address, port = tsim.host_address("esx1")
    context = ssl.create_default_context(cafile=str(tsim.ca_file))  # verifies the chain and the IP SAN
    with socket.create_connection((address, port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=address) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    digest = hashlib.sha1(der).hexdigest().upper()
    assert host.summary.config.sslThumbprint == ":".join(digest[i:i + 2] for i in range(0, 40, 2))
    assert host.summary.config.sslThumbprint != tsim.connection_facts()["THUMBPRINT"]  # its own, not vCenter's


def test_only_the_vm_s_host_serves_its_transfer(tsim: Simulator, tsi: Any) -> None:
    url = _download_url(tsim, tsi, "run1")
    # Neither the vCenter nor another host knows the ticket; asking them does not use it up.
    assert _https(tsim, url, at=(tsim.host, tsim.port))[0] == 404
    assert _https(tsim, url, at=tsim.host_address("esx2"))[0] == 404
    assert _https(tsim, url) == (200, b"run1\n")


def test_a_transfer_url_is_good_for_one_request(tsim: Simulator, tsi: Any) -> None:
    download = _download_url(tsim, tsi, "run1")
    assert _https(tsim, download) == (200, b"run1\n")
    assert _https(tsim, download)[0] == 404
    upload = _upload_url(tsim, tsi, "run1", "/tmp/transfer-urls-once", 3)
    assert _https(tsim, upload, "PUT", b"one")[0] == 200
    assert _https(tsim, upload, "PUT", b"two")[0] == 404
    assert _https(tsim, _download_url(tsim, tsi, "run1", "/tmp/transfer-urls-once")) == (200, b"one")


class _Clock:
    """A wall clock for file_transfers that the test moves on."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def time(self) -> float:
        return self.now


def test_transfer_urls_expire_after_ten_minutes(tsim: Simulator, tsi: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock()
    monkeypatch.setattr(file_transfers, "time", clock)
    early, late = _download_url(tsim, tsi, "run1"), _download_url(tsim, tsi, "run1")
    clock.now += 599
    assert _https(tsim, early) == (200, b"run1\n")
    clock.now += 2  # 601 s after the offer
    assert _https(tsim, late)[0] == 404


def test_the_lifetime_is_patchable(tsim: Simulator, tsi: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(file_transfers, "TRANSFER_TTL", -1.0)  # expired when offered
    assert _https(tsim, _download_url(tsim, tsi, "run1"))[0] == 404


def test_power_off_voids_the_vm_s_transfer_urls(tsim: Simulator, tsi: Any) -> None:
    download = _download_url(tsim, tsi, "victim")
    upload = _upload_url(tsim, tsi, "victim", "/tmp/transfer-urls-late", 4)
    wait(vm_by_name(tsi, "victim").PowerOffVM_Task())
    assert _https(tsim, download)[0] == 404
    assert _https(tsim, upload, "PUT", b"late")[0] == 404
    assert _https(tsim, _download_url(tsim, tsi, "run1")) == (200, b"run1\n")  # other VMs' transfers go on


def test_an_unreachable_host_refuses_then_serves_again(tsim: Simulator, tsi: Any) -> None:
    address, port = tsim.host_address("esx2")
    tsim.host_unreachable("esx2")
    try:
        url = _download_url(tsim, tsi, "run2")  # the vCenter still answers and names the host
        assert (urlsplit(url).hostname, urlsplit(url).port) == (address, port)
        with pytest.raises(ConnectionRefusedError):
            _https(tsim, url)
        assert _https(tsim, _download_url(tsim, tsi, "run1"))[0] == 200  # esx1 is not affected
    finally:
        tsim.host_reachable("esx2")
    assert _https(tsim, url) == (200, b"run2\n")  # the refused request never used the ticket


def test_a_dropping_host_leaves_the_client_waiting(tsim: Simulator, tsi: Any) -> None:
    tsim.host_unreachable("esx2", mode="drop")
    try:
        url = _download_url(tsim, tsi, "run2")
        with pytest.raises(TimeoutError):  # TCP connects (the kernel's backlog); TLS never answers
            _https(tsim, url, timeout=0.5)
    finally:
        tsim.host_reachable("esx2")
    assert _https(tsim, url) == (200, b"run2\n")


def test_a_free_port_when_asked(tmp_path: Path) -> None:
    reason = guest_support_problem()
    if reason:
        pytest.skip(reason)
    inventory = _write_inventory(tmp_path, {"datacenters": [{
        "name": "dc1", "clusters": [{"name": "cluster1", "hosts": ["esx1"]}],
        "vms": [{"name": "solo", "power": "poweredOn"}]}]})
    with Simulator(SimulatorConfig(guests=True, inventory=inventory, transfer_port=0)) as sim:
        si = connect(sim)
        try:
            url = urlsplit(_download_url(sim, si, "solo"))
            assert (url.hostname, url.port) == sim.host_address("esx1") and url.port != 443
            assert _https(sim, url.geturl()) == (200, b"solo\n")
        finally:
            close(si)


_WITHOUT_BIND_PRIVILEGE = textwrap.dedent("""
    import http.client, json, logging, ssl, sys
    from pathlib import Path
    from pytest_vsphere_clone.simulator.host_transfers import HostTransferService
    from pytest_vsphere_clone.simulator.inventory import DEFAULT_INVENTORY, build_inventory, build_service
    from pytest_vsphere_clone.simulator.objects.inventory import HostSystem
    from pytest_vsphere_clone.simulator.tls import create_tls_files
    from pytest_vsphere_clone.simulator.vcenter import VCenter

    warnings = []
    class Keep(logging.Handler):
        def emit(self, record): warnings.append(record.getMessage())
    logging.getLogger("pytest_vsphere_clone").addHandler(Keep(logging.WARNING))
    directory = Path(sys.argv[1])
    vc = VCenter()
    build_service(vc)
    build_inventory(vc, DEFAULT_INVENTORY)
    hosts = vc.of_type(HostSystem)
    service = HostTransferService(vc, hosts, 443, lambda host_id: lambda m, t, b: (404, b"unknown"))
    service.bind()
    tls = create_tls_files(directory, ["127.0.0.1"])
    service.use_certificates(tls, directory)
    service.start()
    try:
        statuses = []
        for host in hosts:
            address, port = service.endpoint(host)
            connection = http.client.HTTPSConnection(address, port, timeout=10,
                                                     context=ssl.create_default_context(cafile=str(tls.ca_file)))
            connection.request("GET", "/guestFile?id=x")
            statuses.append(connection.getresponse().status)
            connection.close()
        print(json.dumps({"fell_back": service.fell_back, "statuses": statuses, "warnings": warnings,
                          "ports": [service.endpoint(h)[1] for h in hosts],
                          "addresses": [h.address for h in hosts]}))
    finally:
        service.stop()
""")


def test_without_the_privilege_for_443_each_host_serves_on_a_free_port(tmp_path: Path) -> None:
    setpriv = shutil.which("setpriv")
    assert setpriv, "util-linux's setpriv is needed to drop CAP_NET_BIND_SERVICE"
    if os.geteuid() != 0:
        pytest.skip("runs as root without CAP_NET_BIND_SERVICE; this user cannot bind 443 anyway")
    done = subprocess.run([setpriv, "--bounding-set=-net_bind_service", "--inh-caps=-net_bind_service",
                           sys.executable, "-c", _WITHOUT_BIND_PRIVILEGE, str(tmp_path)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["fell_back"] is True
    assert all(port != 443 for port in report["ports"]) and report["statuses"] == [404, 404]
    assert len(set(report["addresses"])) == 2 and "127.0.0.1" not in report["addresses"]
    assert any("needs root or CAP_NET_BIND_SERVICE" in w for w in report["warnings"]), report["warnings"]


def test_an_upload_is_checked_when_initiated_and_sized_when_put(tsim: Simulator, tsi: Any) -> None:
    # InitiateFileTransferToGuest checks the path before any byte moves, as VMware Tools does; the
    # PUT must carry fileSize bytes; GuestPosixFileAttributes.permissions are chmod(2) bits, 0644 unset.
    files, vm, auth = _files(tsi), vm_by_name(tsi, "run1"), _auth(tsim)

    def initiate(path: str, size: int, overwrite: bool, permissions: int | None = None) -> str:
        attributes = vim.vm.guest.FileManager.PosixFileAttributes(permissions=permissions)
        return str(files.InitiateFileTransferToGuest(vm, auth, path, attributes, size, overwrite))

    assert _https(tsim, initiate("/tmp/upload-checks", 5, True), "PUT", b"first")[0] == 200
    with pytest.raises(vim.fault.FileAlreadyExists) as exists:
        initiate("/tmp/upload-checks", 6, False)
    assert exists.value.file == "/tmp/upload-checks"
    with pytest.raises(vim.fault.NotAFile):
        initiate("/tmp", 1, True)  # "It cannot be a path to a directory or a symbolic link"
    with pytest.raises(vim.fault.FileNotFound):
        initiate("/tmp/no-such-directory/file", 1, True)
    status, body = _https(tsim, initiate("/tmp/upload-checks", 6, True), "PUT", b"short")
    assert status == 400 and b"5 bytes" in body and b"announced 6" in body
    assert _https(tsim, _download_url(tsim, tsi, "run1", "/tmp/upload-checks")) == (200, b"first")  # untouched
    assert _https(tsim, initiate("/tmp/upload-private", 6, True, 0o600), "PUT", b"secret")[0] == 200
    listing = files.ListFilesInGuest(vm, auth, "/tmp", matchPattern=r"^upload-(checks|private)$").files
    modes = {f.path: f.attributes.permissions & 0o777 for f in listing}
    assert modes == {"upload-checks": 0o644, "upload-private": 0o600}
    # A replaced file takes the new attributes ("the old file attributes are not preserved").
    assert _https(tsim, initiate("/tmp/upload-private", 2, True), "PUT", b"ok")[0] == 200
    [replaced] = files.ListFilesInGuest(vm, auth, "/tmp/upload-private").files
    assert (replaced.size, replaced.attributes.permissions & 0o777) == (2, 0o644)
    for path in ("/tmp/upload-checks", "/tmp/upload-private"):
        files.DeleteFileInGuest(vm, auth, path)
