"""Errors of the vSphere client layer: one line each, saying what happened and how to fix it.

Nothing here imports pyVmomi, so the plugin can catch these at start-up cost zero.
Messages never contain passwords: constructors take only what is safe to print.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def _clip(items: Iterable[str], limit: int = 8) -> str:
    """``a, b, c`` with at most ``limit`` items and a count of the rest."""
    items = list(items)
    shown = ", ".join(items[:limit])
    if len(items) > limit:
        shown += f", ... ({len(items) - limit} more)"
    return shown


def close_matches(word: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """The candidates most similar to ``word`` (case-insensitive), best first."""
    import difflib  # only errors need it; keep plugin start-up lean

    by_lower: dict[str, str] = {}
    for candidate in candidates:
        by_lower.setdefault(candidate.lower(), candidate)
    return [by_lower[m] for m in difflib.get_close_matches(word.lower(), list(by_lower), n=n, cutoff=0.5)]


class VSphereCloneError(Exception):
    """Base of every client-layer error; ``str()`` is one line that names the fix."""

    def __init__(self, message: str) -> None:
        # One line, always: the plugin prints these as usage errors.
        super().__init__(" ".join(message.split()))

    @property
    def message(self) -> str:
        return str(self.args[0])


class ConnectionFailed(VSphereCloneError):
    """The vCenter could not be reached (DNS, refused, timeout, reset)."""

    def __init__(self, host: str, reason: str) -> None:
        self.host = host
        self.reason = reason
        super().__init__(f"cannot reach vCenter {host}: {reason}; check --vsphere-host (host, host:port or URL) "
                         f"and that the vCenter is up and reachable from this machine")


class TlsVerificationFailed(VSphereCloneError):
    """The vCenter's certificate could not be verified."""

    def __init__(self, host: str, reason: str) -> None:
        self.host = host
        self.reason = reason
        super().__init__(f"TLS certificate of vCenter {host} could not be verified ({reason}); pass "
                         f"--vsphere-ca-bundle=PATH with the CA that signed it (e.g. the vCenter's VMCA root), "
                         f"or --vsphere-insecure to skip verification")


class LoginFailed(VSphereCloneError):
    """Wrong vCenter user name or password (the password is never part of the message)."""

    def __init__(self, user: str, host: str) -> None:
        self.user = user
        self.host = host
        super().__init__(f"vCenter {host} rejected the login of user {user!r}: check --vsphere-user and "
                         f"--vsphere-password (or VSPHERE_USER / VSPHERE_PASSWORD)")


class TemplateNotFound(VSphereCloneError):
    """No VM or template matches the requested name or inventory path."""

    def __init__(self, template: str, close: Sequence[str] = ()) -> None:
        self.template = template
        self.close = list(close)
        hint = f"did you mean {_clip(repr(c) for c in close)}? " if close else ""
        super().__init__(f"template {template!r} not found in the vCenter inventory: {hint}"
                         f"set --vsphere-template to a VM name or an inventory path such as dc1/vm/templates/NAME")


class AmbiguousTemplate(VSphereCloneError):
    """Several VMs match a template name."""

    def __init__(self, template: str, paths: Sequence[str]) -> None:
        self.template = template
        self.paths = list(paths)
        super().__init__(f"template name {template!r} matches {len(paths)} VMs ({_clip(self.paths)}): set "
                         f"--vsphere-template to one of these inventory paths")


class PlacementNotFound(VSphereCloneError):
    """A placement setting (datacenter, cluster, folder, ...) names nothing that exists."""

    def __init__(self, kind: str, name: str, close: Sequence[str] = ()) -> None:
        self.kind = kind
        self.name = name
        hint = f"did you mean {_clip(repr(c) for c in close)}? " if close else ""
        setting = kind.replace("_", "-")
        super().__init__(f"{kind.replace('_', ' ')} {name!r} not found: {hint}check --vsphere-{setting}")


class InvalidPlacement(VSphereCloneError):
    """A placement that vSphere cannot honour for this clone type."""


class MissingPrivileges(VSphereCloneError):
    """The vCenter user lacks privileges the flow needs."""

    def __init__(self, user: str, privileges: Sequence[str], entity: str = "") -> None:
        self.user = user
        self.privileges = sorted(set(privileges))
        where = f" on {entity}" if entity else ""
        # A NoPermission fault need not name the privilege: say so rather than print an empty list.
        named = _clip(self.privileges, 20) if self.privileges else "(the vCenter did not say which)"
        super().__init__(f"vCenter user {user!r} lacks privilege(s) {named}{where}: grant "
                         f"them to the user's role (run `vsphere-clone doctor` to check all at once)")


class NoSnapshot(VSphereCloneError):
    """A linked clone was asked of a template without a (matching) snapshot."""

    def __init__(self, template: str, snapshot: str | None = None, available: Sequence[str] = ()) -> None:
        self.template = template
        self.snapshot = snapshot
        self.available = list(available)
        if snapshot is None:
            what = f"template {template!r} has no snapshot, which a linked clone needs"
        else:
            what = (f"template {template!r} has no snapshot {snapshot!r} "
                    f"({'it has ' + _clip(repr(a) for a in available) if available else 'it has none'})")
        super().__init__(f"{what}: create a snapshot on {template} (e.g. `govc snapshot.create -vm {template} base` "
                         f"or Take Snapshot in the vSphere Client), set --vsphere-snapshot to an existing one, or use "
                         f"--vsphere-clone-type=full")


class InvalidInstantSource(VSphereCloneError):
    """Instant clones need a powered-on (ideally frozen) source."""

    def __init__(self, template: str, power_state: str, is_template: bool = False) -> None:
        self.template = template
        self.power_state = power_state
        self.is_template = is_template
        if is_template:
            # MarkAsTemplate (API reference): "A VirtualMachine marked as a template cannot be powered on", and
            # InstantClone_Task: "The original virtual machine must be in a powered-on state".
            super().__init__(f"template {template!r} is a vSphere template (config.template), which cannot be powered "
                             f"on, but an instant clone needs a running or frozen source: convert it to a VM (`govc "
                             f"vm.markasvm {template}`), power it on and freeze it (`vsphere-clone freeze "
                             f"{template}`), or use --vsphere-clone-type=linked")
            return
        super().__init__(f"template {template!r} is {power_state}, but an instant clone needs a running or frozen "
                         f"source: power it on and freeze it (`vsphere-clone freeze {template}`), or use "
                         f"--vsphere-clone-type=linked")


class GuestLoginFailed(VSphereCloneError):
    """The guest OS rejected the guest credentials (Guest Operations InvalidGuestLogin)."""

    def __init__(self, vm: str, user: str) -> None:
        self.vm = vm
        self.user = user
        super().__init__(f"guest OS of VM {vm!r} rejected the login of guest user {user!r}: check "
                         f"--vsphere-guest-user and --vsphere-guest-password")


class GuestOperationFailed(VSphereCloneError):
    """A Guest Operations call failed for a reason other than the credentials."""


class GuestOperationsUnsupported(GuestOperationFailed):
    """The server answered a Guest Operations call with NotSupported: retrying cannot help."""


class EsxiHostUnreachable(GuestOperationFailed):
    """A guest file transfer could not reach the ESXi host that runs the VM.

    Through a vCenter, transfer URLs name the VM's ESXi host: the runner talks to that host
    directly on its HTTPS port, a path enterprise firewalls often close.
    """

    def __init__(self, vm: str, direction: str, host: str, endpoint: str, port: int, reason: str) -> None:
        self.vm = vm
        self.host = host
        self.endpoint = endpoint
        self.reason = reason
        where = f"{host} at {endpoint}" if host and host not in endpoint else endpoint
        super().__init__(f"guest file transfer {direction} VM {vm!r} failed: cannot reach ESXi host {where} "
                         f"({reason}): the machine running pytest must reach the ESXi hosts on port {port} for "
                         f"Guest Operations file transfers; open that path, or do without them: "
                         f"--vsphere-discovery=tools and --vsphere-ssh-host-key-policy=known-hosts (or accept-new)")


class EsxiTlsVerificationFailed(GuestOperationFailed):
    """The certificate of the ESXi host serving a guest file transfer could not be verified."""

    def __init__(self, vm: str, host: str, endpoint: str, reason: str) -> None:
        self.vm = vm
        self.host = host
        self.reason = reason
        where = f"{host} at {endpoint}" if host and host not in endpoint else endpoint
        super().__init__(f"guest file transfer with VM {vm!r} failed: TLS certificate of ESXi host {where} could "
                         f"not be verified ({reason}); pass --vsphere-ca-bundle=PATH with the CA that signed the "
                         f"hosts' certificates (usually the vCenter's VMCA root), or --vsphere-insecure")


class FileTransferFailed(VSphereCloneError):
    """A file could not be copied to or from a guest (``Clone.put``/``Clone.get``).

    ``path`` is the path at fault (the guest's, or the local one when ``local`` is true) and
    ``reason`` one word for programs: ``not-found``, ``exists``, ``denied``, ``not-a-file``,
    ``invalid``, ``incomplete`` or ``failed``.
    """

    def __init__(self, message: str, path: str = "", reason: str = "failed", local: bool = False) -> None:
        self.path = path
        self.reason = reason
        self.local = local
        super().__init__(message)

    @classmethod
    def in_guest(cls, operation: str, vm: str, path: str, route: str, reason: str, user: str = "",
                 detail: str = "") -> FileTransferFailed:
        """The one line for a guest path at fault: ``operation`` is ``put`` or ``get``, ``route`` how
        the bytes went (``SFTP``, ``Guest Operations``)."""
        writing = operation == "put"
        where = f"{operation} of {path} {'to' if writing else 'from'} VM {vm!r} over {route} failed"
        if reason == "not-found":
            why = ("its directory does not exist in the guest: create it first (e.g. vm.run('mkdir -p DIR'))"
                   if writing else "no such file in the guest: check the path (absolute, as the guest spells it)")
        elif reason == "exists":
            why = "the file exists in the guest: pass overwrite=True to replace it"
        elif reason == "denied":
            who = f"guest user {user!r}" if user else "the guest user"
            verb = "write" if writing else "read"
            why = f"{who} may not {verb} it: choose a path that user may {verb}, or another --vsphere-guest-user"
        elif reason == "not-a-file":
            why = "it is a directory or not a regular file in the guest: name a file (e.g. DIR/name)"
        elif reason == "invalid":
            why = "the guest refused the path: pass an absolute guest path"
        else:
            why = "see the cause"
        return cls(f"{where}: {why}{f' ({detail})' if detail else ''}", path, reason)

    @classmethod
    def local_path(cls, operation: str, path: str, problem: str) -> FileTransferFailed:
        """The one line for a local path at fault (missing, a directory, unreadable, ...)."""
        fix = ("pass an existing local file, or bytes" if operation == "put"
               else "pass a local path whose directory exists and is writable, or local=None for bytes")
        reason = "not-found" if "does not exist" in problem else "failed"
        return cls(f"{operation}: local path {path} {problem}: {fix}", path, reason, local=True)


class NoUsableAddress(VSphereCloneError):
    """No IP address that passes the filters appeared in time."""

    def __init__(self, vm: str, timeout: float, wanted: str, seen: Sequence[str]) -> None:
        self.vm = vm
        self.timeout = timeout
        self.wanted = wanted
        self.seen = list(seen)
        saw = _clip(self.seen, 12) if self.seen else "no address at all"
        super().__init__(f"no usable {wanted} address for VM {vm!r} within {timeout:g} s (seen: {saw}): check the "
                         f"VM's network and DHCP, --vsphere-ip-family / --vsphere-ip-network, or raise "
                         f"--vsphere-ip-timeout")


class WaitTimeout(VSphereCloneError):
    """A wait ran out of time; says what was awaited and what was last seen."""

    def __init__(self, what: str, timeout: float, last_seen: str, hint: str = "") -> None:
        self.what = what
        self.timeout = timeout
        self.last_seen = last_seen
        fix = hint or "raise the matching --vsphere-*-timeout if the vCenter is just slow"
        super().__init__(f"timed out after {timeout:g} s waiting for {what} (last seen: {last_seen}): {fix}")


class RetriesExhausted(VSphereCloneError):
    """A transient fault persisted through every retry."""

    def __init__(self, what: str, attempts: int, last_error: str) -> None:
        self.what = what
        self.attempts = attempts
        self.last_error = last_error
        super().__init__(f"{what} failed {attempts} times with a transient fault (last: {last_error}): the vCenter "
                         f"or host is overloaded or restarting; retry later")


class OutcomeUnknown(VSphereCloneError):
    """A non-idempotent call lost its connection: it may or may not have happened.

    Raised instead of retrying; the caller looks for what exists before trying again.
    """

    def __init__(self, what: str, reason: str) -> None:
        self.what = what
        self.reason = reason
        super().__init__(f"the connection dropped during {what} ({reason}), so whether it happened is unknown; "
                         f"look for its effect before repeating it")


class CloneFailed(VSphereCloneError):
    """A clone task failed for a reason without a more specific error."""


class NicRefreshFailed(VSphereCloneError):
    """Refreshing the guest NIC after an instant clone failed."""


class CollapseRefused(VSphereCloneError):
    """A collapse that would destroy data the user still needs (e.g. the template's snapshots)."""
