"""govmomi's vcsim for the conformance tier: build it, serve it, prepare what the tests clone.

The server is ``vcsim/main.go`` (ours: Debian's govmomi package has the simulator library but no
vcsim command) built in GOPATH mode against /usr/share/gocode, once per test session. It serves
the library's stock VPX inventory over HTTPS with a certificate made here, so the plugin verifies
it with ``--vsphere-ca-bundle`` like any vCenter. The tests' templates are made from stock VMs
through the vSphere API (rename, power off, snapshot), as an administrator would.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from go_toolchain import GoBinary, GoToolchainError, build
from local_sshd import die_with_parent

SOURCE_DIR = Path(__file__).parent / "vcsim"
TEMPLATE = "conformance-template"
NO_SNAPSHOT_TEMPLATE = "conformance-nosnap"
SNAPSHOT = "base"
USER = "conformance@vsphere.local"
PASSWORD = "Conformance-Pass-1"
#: vcsim log lines worth showing from anywhere in a failing test's log: Go panics (net/http logs a
#: handler's panic as "http: panic serving"), faults, errors, cancelled waits. Not "object ... no
#: longer exists": vcsim logs it whenever a collector reads a list view that still names a destroyed VM
#: (its ListView is not told of deletions), hundreds of times in a passing run.
NOTABLE_LOG = re.compile(r"panic|goroutine |[Ff]ault|error|canceled")


class VcsimError(RuntimeError):
    """vcsim could not be built or started; the message says what is missing."""


# --- build ------------------------------------------------------------------------------


VcsimBuild = GoBinary


def build_vcsim(shared_dir: Path) -> VcsimBuild:
    """vcsim built from SOURCE_DIR into ``shared_dir`` (see go_toolchain.build)."""
    try:
        return build(SOURCE_DIR, "vcsim-conformance", shared_dir, needs="simulator")
    except GoToolchainError as exc:
        raise VcsimError(str(exc)) from None


def make_certificate(workdir: Path) -> tuple[Path, Path]:
    """A self-signed CA certificate for 127.0.0.1 and its key: (cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vcsim conformance")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = workdir / "vcsim-cert.pem", workdir / "vcsim-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


# --- the running server ---------------------------------------------------------------------


@dataclass
class Vcsim:
    """A running vcsim: its address, credentials and CA file, and read-only looks at its inventory."""

    host: str  # 127.0.0.1:PORT
    ca_file: Path
    user: str = USER
    password: str = field(default=PASSWORD, repr=False)
    stock_vms: frozenset[str] = frozenset()
    #: vcsim's own log (its stderr): the evidence a failing test prints (see conftest.py).
    log_file: Path | None = None

    def log_excerpt(self, tail: int = 60, notable: int = 40) -> str:
        """The log's notable lines (panics, faults, errors) and its last ``tail`` lines."""
        if self.log_file is None or not self.log_file.exists():
            return "(no vcsim log)"
        lines = self.log_file.read_text(errors="replace").splitlines()
        marked = [line for line in lines if NOTABLE_LOG.search(line)]
        return (f"{self.log_file} ({len(lines)} lines)\n--- notable ({len(marked)}, last {notable}) ---\n"
                + "\n".join(marked[-notable:]) + f"\n--- last {tail} ---\n" + "\n".join(lines[-tail:]))

    def connect(self) -> Any:
        """A fresh pyVmomi ServiceInstance (the caller disconnects it)."""
        from pyVim.connect import SmartConnect

        address, port = self.host.rsplit(":", 1)
        return SmartConnect(host=address, port=int(port), user=self.user, pwd=self.password,
                            sslContext=ssl.create_default_context(cafile=str(self.ca_file)))

    @contextmanager
    def session(self) -> Iterator[Any]:
        from pyVim.connect import Disconnect

        si = self.connect()
        try:
            yield si
        finally:
            Disconnect(si)

    def vm_names(self) -> list[str]:
        """The names of every VM in the inventory, sorted."""
        with self.session() as si:
            return sorted(props["name"] for props in vm_properties(si, ["name"]).values())

    def clones(self) -> list[str]:
        """Every VM that was not in the prepared inventory: what the plugin made and did not destroy."""
        return [name for name in self.vm_names() if name not in self.stock_vms]

    def plugin_args(self) -> list[str]:
        """The connection settings a user would pass to pytest for this vCenter."""
        return [f"--vsphere-host={self.host}", f"--vsphere-user={self.user}",
                f"--vsphere-password={self.password}", f"--vsphere-ca-bundle={self.ca_file}"]

    def cli_args(self) -> list[str]:
        """The same settings for ``vsphere-clone`` commands."""
        return [f"--host={self.host}", f"--user={self.user}", f"--password={self.password}",
                f"--ca-bundle={self.ca_file}"]


@contextmanager
def run_vcsim(binary: Path, workdir: Path, cert: tuple[Path, Path]) -> Iterator[Vcsim]:
    """Start vcsim, prepare the templates, yield it; stop it and remove its files after."""
    workdir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="vcsim-ds-", dir=workdir))  # the model's datastore directories
    log_file = workdir / "vcsim.log"  # kept with the test's tmp_path; a failing test prints its excerpt
    with open(log_file, "wb") as log:
        process = subprocess.Popen(
            [str(binary), "-listen", "127.0.0.1:0", "-user", USER, "-password", PASSWORD,
             "-cert", str(cert[0]), "-key", str(cert[1])],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env={**os.environ, "TMPDIR": str(tmp)},
            preexec_fn=die_with_parent)
    try:
        url = _read_url(process, log_file)
        port = re.match(r"https://127\.0\.0\.1:(\d+)/sdk$", url)
        if port is None:
            raise VcsimError(f"vcsim printed an unexpected URL: {url}")
        server = Vcsim(host=f"127.0.0.1:{port.group(1)}", ca_file=cert[0], log_file=log_file)
        server.stock_vms = frozenset(prepare_templates(server))
        yield server
    finally:
        if process.stdin is not None:
            process.stdin.close()  # vcsim's signal to stop
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _read_url(process: subprocess.Popen[bytes], log_file: Path, timeout: float = 30.0) -> str:
    found: list[str] = []
    reader = threading.Thread(target=lambda: found.append((process.stdout.readline() if process.stdout else b"")
                                                          .decode().strip()), daemon=True)
    reader.start()
    reader.join(timeout)
    line = found[0] if found else ""
    if not line.startswith("VCSIM_URL="):
        process.kill()
        process.wait()
        errors = log_file.read_text(errors="replace") if log_file.exists() else ""
        raise VcsimError(f"vcsim did not start within {timeout:.0f} s: {errors.strip()[-2000:]}")
    return line.split("=", 1)[1]


# --- inventory -------------------------------------------------------------------------------


def vm_properties(si: Any, paths: list[str]) -> dict[Any, dict[str, Any]]:
    """``paths`` of every VirtualMachine, in one RetrievePropertiesEx (VM -> path -> value)."""
    from pyVmomi import vim, vmodl

    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        spec = vmodl.query.PropertyCollector.FilterSpec(
            objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=view, skip=True, selectSet=[
                vmodl.query.PropertyCollector.TraversalSpec(name="view", type=vim.view.ContainerView, path="view")])],
            propSet=[vmodl.query.PropertyCollector.PropertySpec(type=vim.VirtualMachine, pathSet=paths)])
        found: dict[Any, dict[str, Any]] = {}
        result = content.propertyCollector.RetrievePropertiesEx([spec], vmodl.query.PropertyCollector.RetrieveOptions())
        while result is not None:
            for item in result.objects:
                found[item.obj] = {prop.name: prop.val for prop in item.propSet}
            if not result.token:
                break
            result = content.propertyCollector.ContinueRetrievePropertiesEx(result.token)
        return found
    finally:
        view.DestroyView()


def wait_task(task: Any, timeout: float = 60.0) -> Any:
    """The task's result once it succeeded; its fault raised if it failed."""
    deadline = time.monotonic() + timeout
    while task.info.state not in ("success", "error"):
        if time.monotonic() > deadline:
            raise VcsimError(f"task {task._moId} still {task.info.state} after {timeout:.0f} s")
        time.sleep(0.05)
    if task.info.state == "error":
        raise task.info.error
    return task.info.result


def tools_installed_spec() -> Any:
    """A ConfigSpec that makes vcsim report VMware Tools as installed and current.

    vcsim departs from the reference here: its VMs report ``guest.toolsVersionStatus2`` unset
    (the reference: "Current version status of VMware Tools in the guest operating system, if
    known"), where a real template has Tools installed. vcsim's own ``SET.<property path>``
    extraConfig keys set the property, as the Tools in a real template would have reported it.
    """
    from pyVmomi import vim

    return vim.vm.ConfigSpec(extraConfig=[
        vim.option.OptionValue(key="SET.guest.toolsVersionStatus2", value="guestToolsCurrent"),
        vim.option.OptionValue(key="SET.guest.toolsVersion", value="12352"),
        vim.option.OptionValue(key="SET.guest.toolsStatus", value="toolsNotRunning"),  # installed, VM off
        vim.option.OptionValue(key="SET.guest.guestFamily", value="linuxGuest"),
    ])


def prepare_templates(server: Vcsim) -> list[str]:
    """Make TEMPLATE (powered off, snapshot SNAPSHOT) and NO_SNAPSHOT_TEMPLATE from two stock VMs.

    Returns every VM name afterwards: the inventory the tests must find again when a run ends.
    """
    with server.session() as si:
        vms = sorted(vm_properties(si, ["name"]).items(), key=lambda item: str(item[1]["name"]))
        stock = [vm for vm, props in vms if str(props["name"]).startswith("DC0_H0_VM")]
        if len(stock) < 2:
            raise VcsimError(f"vcsim's VPX model lacks the VMs DC0_H0_VM0/1: {[p['name'] for _, p in vms]}")
        for vm, name in zip(stock[:2], (TEMPLATE, NO_SNAPSHOT_TEMPLATE), strict=True):
            wait_task(vm.Rename_Task(name))
            if vm.runtime.powerState != "poweredOff":
                wait_task(vm.PowerOffVM_Task())
            wait_task(vm.ReconfigVM_Task(tools_installed_spec()))
        wait_task(stock[0].CreateSnapshot_Task(name=SNAPSHOT, description="conformance base", memory=False,
                                               quiesce=False))
        return sorted(str(props["name"]) for props in vm_properties(si, ["name"]).values())
