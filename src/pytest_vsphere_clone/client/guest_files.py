"""Files to and from a guest through VMware Tools Guest Operations (no network to the guest needed).

InitiateFileTransferToGuest / InitiateFileTransferFromGuest answer a URL; the bytes then go by
HTTPS PUT / GET to that URL. Through a vCenter the URL names the ESXi host running the VM, on 443
(the runner must reach it: govmomi #3739); through ESXi its host part is ``*``, "the server to which
the call was made" (FileTransferInformation.url), which :func:`transfer_url` fills in. A URL is good
for one request. Bodies stream in blocks: a file of any size is never held in memory whole.
"""

from __future__ import annotations

import errno
import http.client
import logging
import socket
import ssl
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from . import faults, props
from .errors import EsxiHostUnreachable, EsxiTlsVerificationFailed, FileTransferFailed, GuestOperationFailed

if TYPE_CHECKING:
    from .guest_calls import GuestCalls

log = logging.getLogger(__name__)

#: Seconds to connect to the ESXi host of a transfer (TCP and TLS handshake), and attempts when the
#: host refuses: a host the runner cannot reach is named within seconds, not after the request timeout.
TRANSFER_CONNECT_TIMEOUT = 15.0
TRANSFER_CONNECT_ATTEMPTS = 3
#: Bytes per read or write of a transfer's body.
BLOCK = 256 * 1024
ROUTE = "Guest Operations"
#: Faults of a guest path (Initiate*), by the one word FileTransferFailed gives them.
_PATH_FAULTS = (
    ("FileNotFound", "not-found"), ("FileAlreadyExists", "exists"), ("GuestPermissionDenied", "denied"),
    ("CannotAccessFile", "denied"), ("NoPermission", "denied"), ("NotAFile", "not-a-file"),
    ("IsADirectory", "not-a-file"), ("InvalidArgument", "invalid"),
)


def unreachable_reason(exc: OSError, timeout: float) -> str:
    """Why a host could not be reached, in a few words."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, socket.gaierror):
        return f"name not resolved: {exc.strerror or exc}"
    if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "no route to host"
    if isinstance(exc, ssl.SSLError | ConnectionError):
        return f"connection cut during the TLS handshake: {faults.describe(exc)}"
    return faults.describe(exc)


# --- what Clone.put / Clone.get use ---------------------------------------------------------


def upload(ops: GuestCalls, remote: str, source: IO[bytes], size: int, *, overwrite: bool = True,
           permissions: int | None = None, path_errors: bool = True) -> None:
    """Copy ``size`` bytes from ``source`` (read from its current position) to ``remote`` in the guest.

    ``permissions`` (Linux guests, chmod(2) bits): the reference's default is 0644. With
    ``path_errors`` a fault of the guest path is a :class:`FileTransferFailed` naming it and the fix.
    """
    from pyVmomi import vim

    _, files = ops._managers()
    # GuestFileAttributes per the guest OS: "If any file attribute is not specified, then the
    # default value of that property will be set for the file" (InitiateFileTransferToGuest).
    if ops.os_family == "windows":
        attributes: Any = vim.vm.guest.FileManager.WindowsFileAttributes()
    else:
        attributes = vim.vm.guest.FileManager.PosixFileAttributes(permissions=permissions)
    start = source.tell()
    on_fault = _path_error(ops, "put", remote) if path_errors else None

    def once() -> None:
        source.seek(start)  # a repeat sends the whole file again, to a new URL
        url = ops._call(files.InitiateFileTransferToGuest, ops.vm, ops._auth(), remote, attributes, size, overwrite,
                        what="InitiateFileTransferToGuest", fault_error=on_fault)
        request(ops, "PUT", str(url), f"upload to {remote}", body=source, size=size)

    # An upload that may not overwrite is not repeated after a lost answer: the repeat would meet
    # the file the first one made.
    ops._transfer(once, f"upload to {remote}", idempotent=overwrite)


def download(ops: GuestCalls, remote: str, sink: IO[bytes]) -> int:
    """Copy ``remote`` from the guest into ``sink`` (from its current position); returns the byte count.

    A short body (the connection dropped mid-file) is fetched again whole, with a new URL.
    """
    _, files = ops._managers()
    start = sink.tell()
    on_fault = _path_error(ops, "get", remote)

    def once() -> int:
        info = ops._call(files.InitiateFileTransferFromGuest, ops.vm, ops._auth(), remote,
                         what="InitiateFileTransferFromGuest", fault_error=on_fault)
        sink.seek(start)
        sink.truncate()
        received = request(ops, "GET", str(info.url), f"download of {remote}", sink=sink)
        expected = int(info.size)
        if received != expected:  # FileTransferInformation.size: "Total size of the file in bytes"
            raise http.client.IncompleteRead(b"", expected - received)
        return received

    # A body cut short is transient (IncompleteRead): the retry starts over with a new URL.
    return int(ops._transfer(once, f"download of {remote}"))


def _path_error(ops: GuestCalls, operation: str, remote: str) -> Callable[[Any], Exception]:
    """What a fault of the Initiate* call for ``remote`` becomes: one line naming the path and the fix."""

    def error(fault: Any) -> Exception:
        names = {type(fault).__name__.rsplit(".", 1)[-1]} | {
            c.__name__.rsplit(".", 1)[-1] for c in type(fault).__mro__}
        reason = next((word for name, word in _PATH_FAULTS if name in names), "failed")
        detail = "" if reason != "failed" else faults.describe(fault)
        return FileTransferFailed.in_guest(operation, ops.vm_name, remote, ROUTE, reason, ops.username, detail)

    return error


# --- the HTTPS side, shared with GuestCalls' own transfers (command output) --------------------


def transfer_url(ops: GuestCalls, url: str) -> str:
    """``url`` with a ``*`` host (a direct ESXi connection's "the host you asked") replaced by the
    endpoint the connection talks to, its port included (as govmomi does, so a port-forwarded
    ESXi works). Through a vCenter the URL names the VM's ESXi host and is used as it is."""
    parts = urlsplit(url)
    if parts.hostname not in ("*", None):
        return url
    conn = ops.conn
    host = f"[{conn.host}]" if ":" in conn.host else conn.host
    return urlunsplit((parts.scheme or "https", f"{host}:{conn.port}", parts.path, parts.query, parts.fragment))


def request(ops: GuestCalls, method: str, url: str, what: str, *, body: bytes | IO[bytes] | None = None,
            size: int | None = None, sink: IO[bytes] | None = None) -> Any:
    """One GET or PUT of a transfer URL: the response body (bytes), or with ``sink`` the count of
    bytes written there. A host that cannot be reached is named in one line
    (:class:`EsxiHostUnreachable`); a connection lost mid-request is raised as it is, for the
    caller's retry to start over with a new URL."""
    target = urlsplit(transfer_url(ops, url))
    connection = _connect_host(ops, target.hostname or ops.conn.host, target.port or 443, method)
    length = size if size is not None else len(body) if isinstance(body, bytes) else 0
    try:
        path = target.path + (f"?{target.query}" if target.query else "")
        connection.request(method, path, body=body, headers={"Content-Length": str(length)})
        response = connection.getresponse()
        if response.status >= 300 or sink is None:
            payload = response.read()
        else:
            payload, received = b"", 0
            while block := response.read(BLOCK):
                sink.write(block)
                received += len(block)
    finally:
        connection.close()
    if response.status in faults.TRANSIENT_HTTP_STATUSES:
        raise http.client.HTTPException(f"{response.status} {response.reason}")
    if response.status >= 300:
        hint = " (the transfer URL was used already, expired, or the VM was powered off)" \
            if response.status == 404 else ""
        detail = payload[:200].decode("utf-8", "replace").strip()
        raise GuestOperationFailed(f"{what} in VM {ops.vm_name!r} failed: HTTP {response.status} "
                                   f"{response.reason}{f': {detail}' if detail else ''}{hint}")
    return payload if sink is None else received


def _connect_host(ops: GuestCalls, host: str, port: int, method: str) -> http.client.HTTPSConnection:
    """An HTTPS connection to the host serving a transfer (TCP and TLS handshake done).

    The connect phase is bounded by TRANSFER_CONNECT_TIMEOUT, not the request timeout: a host
    behind a firewall that drops its traffic is named within seconds. A refused or unroutable
    connection is tried again a few times (a restarting host agent), a silent one is not.
    """
    conn = ops.conn
    timeout = min(conn.timeout, TRANSFER_CONNECT_TIMEOUT)
    attempts = max(1, min(ops.retry.attempts, TRANSFER_CONNECT_ATTEMPTS))
    endpoint = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    for attempt in range(1, attempts + 1):
        connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=conn.ssl_context,
                                                 blocksize=BLOCK)
        try:
            connection.connect()
            if connection.sock is not None:
                connection.sock.settimeout(conn.timeout)  # the transfer itself may take long
            return connection
        except ssl.SSLCertVerificationError as exc:
            connection.close()
            raise EsxiTlsVerificationFailed(ops.vm_name, _esxi_name(ops), endpoint,
                                            exc.verify_message or str(exc)) from None
        except OSError as exc:  # refused, no route, no answer, name not resolved, handshake cut
            connection.close()
            if attempt < attempts and not isinstance(exc, TimeoutError):
                log.info("ESXi host %s refused a guest file transfer (%s); retry %d/%d", endpoint,
                         faults.describe(exc), attempt, attempts - 1)
                time.sleep(ops.retry.delay(attempt - 1))
                continue
            direction = "to" if method == "PUT" else "from"
            raise EsxiHostUnreachable(ops.vm_name, direction, _esxi_name(ops), endpoint, port,
                                      unreachable_reason(exc, timeout)) from None
    raise AssertionError("unreachable")  # the loop returns or raises


def _esxi_name(ops: GuestCalls) -> str:
    """The inventory name of the ESXi host that runs the VM, for errors ("" if unknown)."""
    try:
        host = props.read(ops.conn, ops.vm, ["runtime.host"]).get("runtime.host")
        if host is None:
            return ""
        return str(props.read(ops.conn, host, ["name"]).get("name") or "")
    except Exception as exc:  # only an error message needs it
        log.debug("cannot read the ESXi host of %s: %s", ops.vm_name, faults.describe(exc))
        return ""
