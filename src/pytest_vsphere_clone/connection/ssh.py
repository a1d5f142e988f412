"""SSH to a guest with paramiko: the host key is checked by a policy, never blindly accepted.

Policies (``--vsphere-ssh-host-key-policy``):

- ``guest``: only the keys read from inside the guest through Guest Operations (``host_keys``).
- ``known-hosts``: a key listed in an OpenSSH known_hosts file, whatever host name it is listed
  under: clones of one template share its keys but not its name or address.
- ``accept-new``: the first key seen is trusted (the caller pins it for later connections).

Whatever the policy, once ``host_keys`` are known the guest must present one of them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..results import CommandResult

if TYPE_CHECKING:
    import paramiko

POLICIES = ("guest", "known-hosts", "accept-new")
DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts")
#: The other policies, as the fix in messages of the ``guest`` policy.
OTHER_POLICIES = ("--vsphere-ssh-host-key-policy=known-hosts (keys from --vsphere-known-hosts) or "
                  "--vsphere-ssh-host-key-policy=accept-new (trust on first use)")


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
    policy: str = "guest"
    known_hosts: Path | None = None


@dataclass(frozen=True)
class KnownHosts:
    """The keys of an OpenSSH known_hosts file, host names set aside ("type base64" each)."""

    path: Path
    trusted: frozenset[str]
    revoked: frozenset[str]

    @property
    def key_types(self) -> frozenset[str]:
        return frozenset(key.split()[0] for key in self.trusted)


def known_hosts_path(path: Path | None) -> Path:
    """``path``, or ~/.ssh/known_hosts when none is set."""
    return (path or DEFAULT_KNOWN_HOSTS).expanduser()


def read_known_hosts(path: Path | None) -> KnownHosts:
    """The keys of an OpenSSH known_hosts file (sshd(8), "SSH_KNOWN_HOSTS FILE FORMAT").

    Host names (plain, patterns or hashed) are not looked at. ``@revoked`` keys are never
    trusted; ``@cert-authority`` lines sign host certificates, which this check does not
    use, so they are skipped. Raises OSError if the file cannot be read.
    """
    path = known_hosts_path(path)
    trusted: set[str] = set()
    revoked: set[str] = set()
    for line in path.read_text(errors="replace").splitlines():
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        marker = fields.pop(0) if fields[0].startswith("@") else ""
        if len(fields) < 3 or marker == "@cert-authority":
            continue
        key = f"{fields[1]} {fields[2]}"
        (revoked if marker == "@revoked" else trusted).add(key)
    return KnownHosts(path, frozenset(trusted - revoked), frozenset(revoked))


def _algorithms(key_type: str) -> list[str]:
    """Host key algorithms that negotiate a key of ``key_type`` (RSA keys sign with three)."""
    if key_type == "ssh-rsa":
        return ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]
    return [key_type]


class _Rejected(Exception):
    """The offered host key failed the policy; ``key_type`` is what the server offered."""

    def __init__(self, message: str, key_type: str) -> None:
        super().__init__(message)
        self.key_type = key_type


def _policy(target: SshTarget, known: KnownHosts | None) -> paramiko.MissingHostKeyPolicy:
    import paramiko

    class HostKeyCheck(paramiko.MissingHostKeyPolicy):
        """Accept the key the target's policy trusts, reject anything else."""

        def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
            offered = f"{key.get_name()} {key.get_base64()}"
            shown = f"{key.get_name()} {key.fingerprint}"
            if known is not None and offered in known.revoked:
                raise _Rejected(f"SSH to {hostname}: its host key ({shown}) is marked @revoked in {known.path}: "
                                "refusing to connect", key.get_name())
            if target.host_keys:
                if not any(offered == " ".join(pinned.split()[:2]) for pinned in target.host_keys):
                    raise _Rejected(f"host key of {hostname} ({shown}) is not the guest's own key: refusing to "
                                    "connect (a different machine answers at this address)", key.get_name())
                return
            if target.policy == "accept-new":
                return
            if known is not None:
                if offered not in known.trusted:
                    raise _Rejected(
                        f"SSH to {hostname}: its host key ({shown}) is not in {known.path} "
                        "(--vsphere-ssh-host-key-policy=known-hosts): add the template's host keys to that file "
                        "(e.g. `ssh-keyscan` of a clone you trust), point --vsphere-known-hosts at a file that "
                        "has them, or choose another --vsphere-ssh-host-key-policy", key.get_name())
                return
            raise _Rejected(
                f"SSH to {hostname}: the guest's host keys are unknown, so its identity cannot be checked "
                "(--vsphere-ssh-host-key-policy=guest reads them through Guest Operations); give the guest user "
                f"Guest Operations access (--vsphere-guest-user/--vsphere-guest-password), or pass {OTHER_POLICIES}",
                key.get_name())

    return HostKeyCheck()


def connect(target: SshTarget, timeout: float) -> paramiko.SSHClient:
    """A connected SSHClient, retrying until sshd answers or ``timeout`` seconds pass."""
    import paramiko

    known: KnownHosts | None = None
    if target.policy == "known-hosts":
        try:
            known = read_known_hosts(target.known_hosts)
        except OSError as exc:
            raise SshConnectError(f"cannot read {known_hosts_path(target.known_hosts)} ({exc.strerror or exc}): "
                                  "check --vsphere-known-hosts") from None
    deadline = time.monotonic() + timeout
    last_error = "no attempt made"
    delay = 0.05
    # A server offers several host keys and the client picks the type: a type whose key is not
    # trusted is turned off and the next trusted type (pinned, else from the file) is tried.
    trusted_types = frozenset(key.split()[0] for key in target.host_keys if key.split()) if target.host_keys \
        else known.key_types if known is not None else frozenset()
    turned_off: set[str] = set()
    rejection: str | None = None
    while True:
        disabled = [algorithm for key_type in sorted(turned_off) for algorithm in _algorithms(key_type)]
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(_policy(target, known))
        remaining = max(0.5, deadline - time.monotonic())
        try:
            client.connect(target.host, port=target.port, username=target.username, password=target.password,
                           key_filename=str(target.key_file) if target.key_file else None,
                           timeout=min(10.0, remaining), banner_timeout=min(10.0, remaining),
                           auth_timeout=min(10.0, remaining), allow_agent=False, look_for_keys=False,
                           disabled_algorithms={"keys": disabled} if disabled else None)
            return client
        except paramiko.AuthenticationException:
            client.close()
            raise SshConnectError(f"SSH to {target.username}@{target.host}:{target.port} refused the credentials: "
                                  "check --vsphere-guest-user / --vsphere-guest-password / --vsphere-ssh-key") from None
        except _Rejected as exc:
            client.close()
            rejection = rejection or str(exc)
            if not trusted_types - turned_off - {exc.key_type}:
                raise SshConnectError(rejection) from None
            turned_off.add(exc.key_type)
            continue
        except (TimeoutError, OSError, paramiko.SSHException, EOFError) as exc:
            client.close()
            if rejection is not None and isinstance(exc, paramiko.SSHException):
                # No host key type left that both the server and the file have.
                raise SshConnectError(rejection) from None
            last_error = f"{type(exc).__name__}: {exc}"
        if time.monotonic() + delay > deadline:
            raise SshConnectError(f"SSH to {target.host}:{target.port} not accepting after {timeout:.0f} s "
                                  f"(last: {last_error}); raise --vsphere-connect-timeout or check sshd in the guest")
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


def server_key(client: paramiko.SSHClient) -> str:
    """The host key the connected server presented, as "type base64"."""
    transport = client.get_transport()
    if transport is None:
        raise SshConnectError("the SSH connection is closed")
    key = transport.get_remote_server_key()
    return f"{key.get_name()} {key.get_base64()}"


def run(client: paramiko.SSHClient, command: str, timeout: float | None = None) -> CommandResult:
    """Run ``command`` over an open SSH connection and collect its output."""
    stdin, stdout, stderr = client.exec_command(command, timeout=timeout)
    stdin.close()
    out = stdout.read().decode(errors="replace")
    err = stderr.read().decode(errors="replace")
    status = stdout.channel.recv_exit_status()
    return CommandResult(status, out, err)
