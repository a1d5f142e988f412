"""``vsphere_testinfra_host``: a testinfra Host for the ``vsphere_vm`` clone (optional extra ``testinfra``).

testinfra is imported only when the fixture runs, never when the plugin loads.

Linux clones use testinfra's paramiko backend, with the host key pinned: the
guest's own keys (``Clone.host_keys``, read through Guest Operations) are
written to a temporary known_hosts file that the SSH client loads, and any
other key is rejected. testinfra's stock paramiko backend cannot do this by
itself (it accepts unknown keys with a warning, ignores ``UserKnownHostsFile``
and reconnects the same way after a dropped connection), so the backend is a
small subclass whose only change is how the paramiko client is made.
Windows clones use testinfra's winrm backend with the clone's WinRM settings.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .fixtures import vm_scope

if TYPE_CHECKING:
    from .clone import Clone
    from .settings import Settings

INSTALL_HINT = "pip install pytest-vsphere-clone[testinfra]"


def _import_testinfra() -> Any:
    try:
        import testinfra
        import testinfra.host
    except ImportError:
        pytest.fail(f"vsphere_testinfra_host needs pytest-testinfra: {INSTALL_HINT}", pytrace=False)
    return testinfra


def known_hosts_lines(host: str, port: int, host_keys: tuple[str, ...]) -> list[str]:
    """known_hosts entries pinning ``host_keys`` ("type base64" each) to ``host:port``."""
    name = host if port == 22 else f"[{host}]:{port}"
    return [f"{name} {' '.join(key.split()[:2])}" for key in host_keys if len(key.split()) >= 2]


def _hostspec(user: str, password: str | None, host: str, port: int) -> str:
    """``user:password@host:port`` as testinfra parses it (credentials percent-encoded)."""
    quote = urllib.parse.quote
    credentials = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
    address = f"[{host}]" if ":" in host else host
    return f"{credentials}@{address}:{port}"


def _pinned_paramiko_host(testinfra: Any, clone: Clone, settings: Settings, known_hosts: Path) -> Any:
    import functools

    import paramiko
    from testinfra.backend.paramiko import ParamikoBackend

    class PinnedParamikoBackend(ParamikoBackend):
        """testinfra's paramiko backend, connecting only to a host whose key is in ``known_hosts``."""

        @functools.cached_property
        def client(self) -> paramiko.SSHClient:
            client = paramiko.SSHClient()
            client.load_host_keys(str(known_hosts))
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
            client.connect(self.host.name, port=int(self.host.port or 22), username=self.host.user,
                           password=self.host.password, key_filename=self.ssh_identity_file,
                           timeout=self.timeout, banner_timeout=self.timeout, auth_timeout=self.timeout,
                           allow_agent=False, look_for_keys=False)
            return client

    hostspec = _hostspec(settings.guest_user or "root", settings.guest_password, clone.ip, settings.ssh_port)
    backend = PinnedParamikoBackend(hostspec, ssh_identity_file=str(settings.ssh_key) if settings.ssh_key else None,
                                    timeout=max(1, int(min(settings.connect_timeout, 60))))
    host = testinfra.host.Host(backend)
    backend.set_host(host)
    return host


def _winrm_host(testinfra: Any, clone: Clone, settings: Settings) -> Any:
    from testinfra.backend import get_backend

    hostspec = "winrm://" + _hostspec(settings.guest_user or "", settings.guest_password, clone.ip, settings.winrm_port)
    # Same certificate handling as Clone.winrm(): self-signed guest certificates are the norm.
    backend = get_backend(hostspec, no_ssl=not settings.winrm_ssl, no_verify_ssl=settings.winrm_ssl)
    backend.conn_args["transport"] = settings.winrm_transport
    host = testinfra.host.Host(backend)
    backend.set_host(host)
    return host


@pytest.fixture(scope=vm_scope)  # type: ignore[arg-type]
def vsphere_testinfra_host(vsphere_vm: Clone, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A ``testinfra.host.Host`` for the ``vsphere_vm`` clone (same scope as ``vsphere_vm``).

    Linux: paramiko backend, host key pinned to the guest's own keys. Windows: winrm backend.
    Needs the ``testinfra`` extra: ``pip install pytest-vsphere-clone[testinfra]``.
    """
    testinfra = _import_testinfra()
    clone = vsphere_vm
    settings = clone._settings
    if settings is None:
        pytest.fail(f"vsphere_testinfra_host: clone {clone.name} has no settings", pytrace=False)
    if clone.os == "windows":
        yield _winrm_host(testinfra, clone, settings)
        return
    lines = known_hosts_lines(clone.ip, settings.ssh_port, clone.host_keys)
    if not lines:
        pytest.fail(f"vsphere_testinfra_host: the host keys of {clone.name} are unknown, so its identity cannot be "
                    "checked; give the guest user Guest Operations access "
                    "(--vsphere-guest-user/--vsphere-guest-password)", pytrace=False)
    known_hosts = tmp_path_factory.mktemp("testinfra-known-hosts") / "known_hosts"
    known_hosts.write_text("\n".join(lines) + "\n")
    host = _pinned_paramiko_host(testinfra, clone, settings, known_hosts)
    try:
        yield host
    finally:
        client = host.backend.__dict__.pop("client", None)  # the cached paramiko client, if one was made
        if client is not None:
            client.close()
        known_hosts.unlink(missing_ok=True)
