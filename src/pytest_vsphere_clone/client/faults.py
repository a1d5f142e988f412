"""Classify failures of vSphere calls: transient or not, did the call reach the server, what is missing.

pyVmomi is imported on first use, so importing this module stays cheap.
"""

from __future__ import annotations

import functools
import http.client
import socket
import ssl
from typing import Any

#: Fault names (in vim.fault or vmodl.fault) that go away by themselves.
TRANSIENT_FAULT_NAMES = ("GuestOperationsUnavailable", "TaskInProgress", "HostCommunication")
#: HTTP statuses of an overloaded or restarting vCenter / proxy in front of it.
TRANSIENT_HTTP_STATUSES = (502, 503, 504)


@functools.cache
def fault_types(names: tuple[str, ...]) -> tuple[type[BaseException], ...]:
    """The pyVmomi fault classes called ``names`` (looked up in vim.fault and vmodl.fault)."""
    from pyVmomi import vim, vmodl

    found: list[type[BaseException]] = []
    for name in names:
        for namespace in (vim.fault, vmodl.fault):
            kind = getattr(namespace, name, None)
            if isinstance(kind, type) and issubclass(kind, BaseException):
                found.append(kind)
    return tuple(found)


def is_vsphere_fault(exc: BaseException) -> bool:
    """A fault the server answered with (a vmodl.MethodFault)."""
    from pyVmomi import vmodl

    return isinstance(exc, vmodl.MethodFault)


def http_status(exc: BaseException) -> int | None:
    """The HTTP status pyVmomi reports for a non-SOAP answer (``HTTPException("503 Service ...")``)."""
    if isinstance(exc, http.client.HTTPException) and not isinstance(exc, http.client.RemoteDisconnected):
        head = str(exc).split(" ", 1)[0]
        if head.isdigit():
            return int(head)
    return None


def is_connection_error(exc: BaseException) -> bool:
    """The connection failed mid-call: reset, dropped, timed out, half-read."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return False  # a configuration problem, never transient
    return isinstance(exc, ConnectionError | TimeoutError | socket.timeout | http.client.RemoteDisconnected
                      | http.client.IncompleteRead | http.client.BadStatusLine | ssl.SSLEOFError)


def request_not_sent(exc: BaseException) -> bool:
    """The failure happened before the server could have acted (so any call may be repeated)."""
    return isinstance(exc, ConnectionRefusedError | socket.gaierror)


def server_rejected(exc: BaseException) -> bool:
    """The server answered that it did not do the call (transient fault or 5xx): repeating is safe."""
    status = http_status(exc)
    if status in TRANSIENT_HTTP_STATUSES:
        return True
    return isinstance(exc, fault_types(TRANSIENT_FAULT_NAMES))


def is_transient(exc: BaseException, extra: tuple[type[BaseException], ...] = ()) -> bool:
    """Worth retrying: a connection error, a 502/503/504, or a transient vSphere fault (or ``extra``)."""
    if extra and isinstance(exc, extra):
        return True
    return is_connection_error(exc) or server_rejected(exc) or request_not_sent(exc)


def is_system_error(exc: BaseException) -> bool:
    """A vmodl.fault.SystemError answer: the server's own failure, which says nothing about the request."""
    return isinstance(exc, fault_types(("SystemError",)))


def is_not_found(exc: BaseException) -> bool:
    """The object is gone (ManagedObjectNotFound)."""
    return isinstance(exc, fault_types(("ManagedObjectNotFound",)))


def describe(exc: BaseException) -> str:
    """A short one-line description of a fault or exception."""
    if is_vsphere_fault(exc):
        name = type(exc).__name__.rsplit(".", 1)[-1]
        msg = getattr(exc, "msg", "") or ""
        return f"{name}: {msg}".rstrip(": ").replace("\n", " ")
    text = str(exc).replace("\n", " ")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def missing_privileges(exc: BaseException) -> list[str]:
    """The privileges a NoPermission fault names (empty for any other exception)."""
    if not isinstance(exc, fault_types(("NoPermission",))):
        return []
    fault: Any = exc
    privileges: list[str] = []
    for entry in getattr(fault, "missingPrivileges", None) or ():
        privileges.extend(entry.privilegeIds or ())
    if not privileges and getattr(fault, "privilegeId", None):
        privileges.append(fault.privilegeId)
    return privileges


def one_line(exc: BaseException) -> str:
    """Any failure as one line for a summary or warning: the project's own errors as they say it,
    vSphere faults and connection errors described, anything else as its type and message."""
    from .errors import VSphereCloneError

    if isinstance(exc, VSphereCloneError):
        return str(exc)
    if is_vsphere_fault(exc) or is_connection_error(exc):
        return describe(exc)
    return f"{type(exc).__name__}: {exc}"
