"""SSH to a guest with paramiko: the host key is pinned, never blindly accepted."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..results import CommandResult

if TYPE_CHECKING:
    import paramiko


class SshConnectError(Exception):
    """sshd did not accept us in time; the message says what was last seen."""


@dataclass(frozen=True)
class SshTarget:
    """Where and as whom to connect; ``host_keys`` are the guest's public keys ("type base64")."""

    host: str
    port: int
    username: str
    password: str | None = field(default=None, repr=False)
    key_file: Path | None = None
    host_keys: tuple[str, ...] = ()


def _pinned_policy(target: SshTarget) -> paramiko.MissingHostKeyPolicy:
    import paramiko

    class PinnedHostKey(paramiko.MissingHostKeyPolicy):
        """Accept exactly the keys read from inside the guest, reject anything else."""

        def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
            offered = f"{key.get_name()} {key.get_base64()}"
            if not any(offered == " ".join(pinned.split()[:2]) for pinned in target.host_keys):
                raise paramiko.SSHException(
                    f"host key of {hostname} ({key.get_name()} {key.fingerprint}) is not the guest's own key: "
                    "refusing to connect (a different machine answers at this address)")

    return PinnedHostKey()


def connect(target: SshTarget, timeout: float) -> paramiko.SSHClient:
    """A connected SSHClient, retrying until sshd answers or ``timeout`` seconds pass."""
    import paramiko

    deadline = time.monotonic() + timeout
    last_error = "no attempt made"
    delay = 0.05
    while True:
        client = paramiko.SSHClient()
        if target.host_keys:
            client.set_missing_host_key_policy(_pinned_policy(target))
        else:
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
        remaining = max(0.5, deadline - time.monotonic())
        try:
            client.connect(target.host, port=target.port, username=target.username, password=target.password,
                           key_filename=str(target.key_file) if target.key_file else None,
                           timeout=min(10.0, remaining), banner_timeout=min(10.0, remaining),
                           auth_timeout=min(10.0, remaining), allow_agent=False, look_for_keys=False)
            return client
        except paramiko.AuthenticationException:
            client.close()
            raise SshConnectError(f"SSH to {target.username}@{target.host}:{target.port} refused the credentials: "
                                  "check --vsphere-guest-user / --vsphere-guest-password / --vsphere-ssh-key") from None
        except (TimeoutError, OSError, paramiko.SSHException, EOFError) as exc:
            client.close()
            last_error = f"{type(exc).__name__}: {exc}"
            if "not the guest's own key" in str(exc):
                raise SshConnectError(str(exc)) from None
            if "not found in known_hosts" in str(exc):
                # No pinned keys (they are read through Guest Operations): never trust blindly.
                raise SshConnectError(f"SSH to {target.host}: the guest's host keys are unknown, so its identity "
                                      "cannot be checked; give the guest user Guest Operations access "
                                      "(--vsphere-guest-user/--vsphere-guest-password)") from None
        if time.monotonic() + delay > deadline:
            raise SshConnectError(f"SSH to {target.host}:{target.port} not accepting after {timeout:.0f} s "
                                  f"(last: {last_error}); raise --vsphere-connect-timeout or check sshd in the guest")
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


def run(client: paramiko.SSHClient, command: str, timeout: float | None = None) -> CommandResult:
    """Run ``command`` over an open SSH connection and collect its output."""
    stdin, stdout, stderr = client.exec_command(command, timeout=timeout)
    stdin.close()
    out = stdout.read().decode(errors="replace")
    err = stderr.read().decode(errors="replace")
    status = stdout.channel.recv_exit_status()
    return CommandResult(status, out, err)
