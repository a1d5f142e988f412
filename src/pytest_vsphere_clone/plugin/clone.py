"""``Clone``: the object tests get — a fresh VM with its IP, connections and timings."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..results import CommandResult

if TYPE_CHECKING:
    import paramiko
    import winrm

    from ..client.guest_ops import GuestOperations
    from ..client.session import VSphereConnection
    from .files import LocalSource, LocalTarget
    from .settings import Settings

PHASES = ("clone", "power_on", "ip", "connect")


@dataclass(eq=False)
class Clone:
    """A disposable VM made for this run: what ``vsphere_vm`` and ``vsphere_vm_factory`` give.

    ``ssh()`` / ``winrm()`` give connections, ``run()`` runs a command over
    whichever fits the guest OS, ``guest_run()`` goes through VMware Tools,
    ``put()`` / ``get()`` copy files (SFTP on Linux, Guest Operations on Windows).
    The plugin destroys the VM when its scope ends (unless ``keep`` says otherwise).

    Attributes:
        name: The VM's name in the vCenter inventory (``PREFIX-RUNID-WORKER-N``).
        moref: Its managed object id, e.g. ``vm-1234``.
        ip: The address found by discovery, filtered by ``--vsphere-ip-family`` and ``--vsphere-ip-network``.
        os: ``linux`` or ``windows`` (``--vsphere-os``, or the guest family VMware Tools report).
        template: The source VM or template it was cloned from, as configured.
        clone_type: ``linked``, ``instant`` or ``full``.
        timings: Seconds per phase: ``clone``, ``power_on``, ``ip``, ``connect``.
        host_keys: The guest's SSH host keys (``"type base64"`` each), read through Guest Operations.
    """

    name: str
    moref: str
    ip: str
    os: str
    template: str
    clone_type: str
    timings: dict[str, float] = field(default_factory=dict)
    host_keys: tuple[str, ...] = ()
    owned: bool = True
    failed: bool = False
    marker: Any = field(default=None, repr=False)  # the client's Marker it was created with
    _conn: VSphereConnection | None = field(default=None, repr=False)
    _settings: Settings | None = field(default=None, repr=False)
    _ssh: paramiko.SSHClient | None = field(default=None, repr=False)
    _winrm: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __repr__(self) -> str:
        return (f"Clone(name={self.name!r}, moref={self.moref!r}, ip={self.ip!r}, os={self.os!r}, "
                f"template={self.template!r}, clone_type={self.clone_type!r})")

    # --- vSphere side ---------------------------------------------------------------

    @property
    def vm(self) -> Any:
        """The pyVmomi VirtualMachine of this clone."""

        conn = self._require_conn()
        return conn.ref("VirtualMachine", self.moref)

    def _require_conn(self) -> VSphereConnection:
        if self._conn is None:
            raise RuntimeError(f"clone {self.name} has no vSphere connection")
        return self._conn

    def _settings_or_fail(self) -> Settings:
        if self._settings is None:
            raise RuntimeError(f"clone {self.name} has no settings")
        return self._settings

    def guest_operations(self) -> GuestOperations:
        """Guest Operations on this clone as the configured guest user."""
        from ..client.guest_ops import GuestOperations

        settings = self._settings_or_fail()
        if not settings.guest_user:
            raise RuntimeError("guest operations need --vsphere-guest-user and --vsphere-guest-password")
        return GuestOperations(self._require_conn(), self.vm, settings.guest_user, settings.guest_password or "",
                               os_family=self.os, vm_name=self.name)

    def guest_run(self, cmd: str, timeout: float | None = None) -> CommandResult:
        """Run ``cmd`` through VMware Tools Guest Operations as the guest user (needs no network).

        Linux runs it in a shell, Windows in ``cmd.exe``; ``timeout`` (seconds) defaults to 120.
        """
        return self.guest_operations().run(cmd, timeout=timeout or 120.0)

    # --- files ----------------------------------------------------------------------------

    def put(self, local: LocalSource, remote: str, *, via: str | None = None, overwrite: bool = True) -> None:
        """Copy ``local`` to the guest path ``remote``.

        ``local``: bytes (the content) or a local file's path (str or os.PathLike; streamed).
        ``via``: None picks SFTP on Linux and Guest Operations on Windows; ``"sftp"`` (or ``"ssh"``)
        and ``"guest"`` force one. ``overwrite=False`` refuses an existing file. Errors are
        ``FileTransferFailed`` (one line naming the fix); see the Files page of the docs.
        """
        from . import files

        files.put(self, local, remote, via=via, overwrite=overwrite)

    def get(self, remote: str, local: LocalTarget = None, *,
            via: str | None = None) -> bytes | None:
        """Copy the guest path ``remote`` to the local path ``local`` (returns None), or return its
        content as bytes when ``local`` is None. ``via`` as for ``put``."""
        from . import files

        return files.get(self, remote, local, via=via)

    # --- connections ------------------------------------------------------------------

    def ssh(self) -> paramiko.SSHClient:
        """A connected paramiko SSHClient (host key checked per --vsphere-ssh-host-key-policy); reused across calls."""
        from ..connection import ssh

        settings = self._settings_or_fail()
        with self._lock:
            transport = self._ssh.get_transport() if self._ssh is not None else None
            if transport is None or not transport.is_active():
                target = ssh.SshTarget(self.ip, settings.ssh_port, settings.guest_user or "root",
                                       settings.guest_password, settings.ssh_key, self.host_keys,
                                       settings.ssh_host_key_policy, settings.known_hosts)
                self._ssh = ssh.connect(target, settings.connect_timeout)
            return self._ssh

    def winrm(self) -> winrm.Session:
        """A pywinrm Session to this clone."""
        from ..connection import winrm_session

        settings = self._settings_or_fail()
        with self._lock:
            if self._winrm is None:
                target = winrm_session.WinRMTarget(self.ip, settings.winrm_port, settings.guest_user or "",
                                                   settings.guest_password or "", settings.winrm_transport,
                                                   settings.winrm_ssl)
                self._winrm = winrm_session.connect(target, settings.connect_timeout)
            return self._winrm

    def run(self, cmd: str, timeout: float | None = None) -> CommandResult:
        """Run ``cmd`` over SSH (Linux, in the guest user's shell) or WinRM (Windows, ``cmd.exe``).

        Returns the exit status and the whole output; a non-zero status is not an error
        (``run(cmd).check()`` makes it one). Over SSH, ``timeout`` (seconds) bounds each wait for output.
        """
        if self.os == "windows":
            from ..connection import winrm_session

            return winrm_session.run(self.winrm(), cmd)
        from ..connection import ssh

        return ssh.run(self.ssh(), cmd, timeout)

    def close(self) -> None:
        """Close open connections (the VM itself is the janitor's business)."""
        with self._lock:
            if self._ssh is not None:
                self._ssh.close()
                self._ssh = None
            self._winrm = None
