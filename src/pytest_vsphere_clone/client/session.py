"""One authenticated vCenter session: TLS verified by default, errors mapped, re-login on expiry.

The plugin keeps one :class:`VSphereConnection` per process; this module provides the object.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from . import faults
from .errors import ConnectionFailed, LoginFailed, RetriesExhausted, TlsVerificationFailed, VSphereCloneError
from .leftovers import LeftoverFiles
from .retry import RetryPolicy, retry_call
from .secret import Secret

if TYPE_CHECKING:
    from pyVmomi import vim

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_PORT = 443
DEFAULT_PATH = "/sdk"
#: Connecting retries only briefly: an unreachable vCenter should fail fast and clearly.
CONNECT_POLICY = RetryPolicy(attempts=3, base_delay=0.3, max_delay=2.0)


@dataclass(frozen=True)
class Endpoint:
    """Where the vCenter's SOAP API is: host, port and path."""

    host: str
    port: int = DEFAULT_PORT
    path: str = DEFAULT_PATH

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORT else f"{host}:{self.port}"

    def __str__(self) -> str:
        return self.netloc


def parse_endpoint(value: str) -> Endpoint:
    """Parse ``host``, ``host:port``, ``[v6]:port``, a bare IPv6 address or an https URL."""
    text = value.strip()
    if not text:
        raise VSphereCloneError("the vCenter host is empty: set --vsphere-host (host, host:port or URL)")
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme.lower() != "https":
            raise VSphereCloneError(f"vCenter URL {value!r} must use https: set --vsphere-host to "
                                    f"https://HOST[:PORT][/sdk] or just HOST")
        try:
            port = parts.port or DEFAULT_PORT
        except ValueError:
            raise VSphereCloneError(f"vCenter URL {value!r} has an invalid port: check --vsphere-host") from None
        if not parts.hostname:
            raise VSphereCloneError(f"vCenter URL {value!r} has no host: check --vsphere-host")
        path = parts.path.rstrip("/") or DEFAULT_PATH
        return Endpoint(parts.hostname, port, path)
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""  # a name, an IPv4 address or a bare IPv6 address
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise VSphereCloneError(f"vCenter host {value!r} has an invalid port: check --vsphere-host")
        return Endpoint(host, int(port_text))
    return Endpoint(host)


def make_ssl_context(insecure: bool = False, ca_bundle: str | os.PathLike[str] | None = None) -> ssl.SSLContext:
    """A client TLS context: verified against ``ca_bundle`` (file or directory) or the system store."""
    if insecure:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if ca_bundle is None:
        return ssl.create_default_context()
    path = Path(ca_bundle)
    if not path.exists():
        raise VSphereCloneError(f"CA bundle {path} does not exist: check --vsphere-ca-bundle")
    try:
        if path.is_dir():
            return ssl.create_default_context(capath=str(path))
        return ssl.create_default_context(cafile=str(path))
    except ssl.SSLError as exc:
        raise VSphereCloneError(f"CA bundle {path} is not usable PEM ({exc.reason or exc}): check "
                                f"--vsphere-ca-bundle") from None


class _ReloginStub:
    """A pyVmomi stub adapter that logs in again when the session expired, then repeats the call once.

    Every call made through the connection's ServiceInstance (method calls and property
    reads alike) passes here. Repeating after NotAuthenticated is safe even for
    non-idempotent calls: the server refused them before acting. Connection errors are
    left to :mod:`.retry`, which knows which calls may be repeated.
    """

    def __init__(self, soap_stub: Any, relogin: Callable[[int], None], generation: Callable[[], int]) -> None:
        self.soapStub = soap_stub
        self._relogin = relogin
        self._generation = generation

    def __getattr__(self, name: str) -> Any:
        # Everything else a stub offers (version, cookie, DropConnections, ...) is the SOAP stub's.
        return getattr(self.__dict__["soapStub"], name)

    def InvokeMethod(self, mo: Any, info: Any, args: Any) -> Any:
        from pyVmomi import vim

        generation = self._generation()
        status, obj = self.soapStub.InvokeMethod(mo, info, args, self)
        if (status != 200 and isinstance(obj, vim.fault.NotAuthenticated)
                and info.wsdlName not in ("Login", "Logout")):
            log.info("vCenter session expired; logging in again")
            self._relogin(generation)
            status, obj = self.soapStub.InvokeMethod(mo, info, args, self)
        if status == 200:
            return obj
        raise obj

    def InvokeAccessor(self, mo: Any, info: Any) -> Any:
        from pyVmomi.StubAdapterAccessorImpl import StubAdapterAccessorMixin

        # A property read becomes a Fetch call through InvokeMethod above, re-login included.
        return StubAdapterAccessorMixin.InvokeAccessor(self, mo, info)  # type: ignore[arg-type]


class VSphereConnection:
    """An authenticated session with a vCenter.

    ``host`` is ``host``, ``host:port`` or an https URL. TLS is verified against
    ``ca_bundle`` or the system store unless ``insecure``. ``timeout`` is the socket
    timeout of every request (long polls stay below it). ``connect_timeout`` (default:
    ``timeout``) bounds all of :meth:`connect`: TCP connect, TLS handshake, the API
    version probe and the first SOAP calls, retries included. Use as a context manager or
    call :meth:`connect` and :meth:`close`.
    """

    def __init__(self, host: str, user: str, password: str | Secret, *, insecure: bool = False,
                 ca_bundle: str | os.PathLike[str] | None = None, timeout: float = 60.0,
                 retry: RetryPolicy | None = None, connect_timeout: float | None = None) -> None:
        self.endpoint = parse_endpoint(host)
        self.user = user
        self._password = Secret(password)
        self.insecure = insecure
        self.ca_bundle = ca_bundle
        self.timeout = float(timeout)
        self.connect_timeout = float(connect_timeout) if connect_timeout is not None else self.timeout
        self.retry_policy = retry or RetryPolicy()
        self.ssl_context = make_ssl_context(insecure, ca_bundle)
        self._si: Any = None
        self._content: Any = None
        self._soap_stub: Any = None
        self._session_manager_id = "SessionManager"
        self._generation = 0
        #: The last call exhausted its retries against refused connections (see call()).
        self._unreachable = False
        self._login_lock = threading.Lock()
        #: Facts that never change for a vCenter (e.g. the Guest Operations managers), read once.
        self.facts: dict[str, Any] = {}
        #: Result files guest commands left in VMs for the next command there to delete.
        self.leftover_files = LeftoverFiles()

    def __repr__(self) -> str:
        state = "connected" if self._si is not None else "not connected"
        return (f"VSphereConnection(host={str(self.endpoint)!r}, user={self.user!r}, password=***, "
                f"insecure={self.insecure}, {state})")

    # --- lifecycle ---------------------------------------------------------------------

    def connect(self) -> VSphereConnection:
        """Open the session (idempotent). Raises a :class:`VSphereCloneError` naming the fix."""
        if self._si is not None:
            return self
        if self.insecure:
            log.warning("TLS verification of vCenter %s is disabled (--vsphere-insecure)", self.endpoint)
        deadline = time.monotonic() + self.connect_timeout
        policy = RetryPolicy(attempts=CONNECT_POLICY.attempts, base_delay=CONNECT_POLICY.base_delay,
                             max_delay=CONNECT_POLICY.max_delay, deadline=self.connect_timeout,
                             # A host that refuses at the start is a wrong address more often than a restart.
                             outage_seconds=0.0)
        try:
            si = retry_call(self._smart_connect, deadline, policy=policy, what=f"connecting to vCenter {self.endpoint}")
        except RetriesExhausted as exc:
            raise ConnectionFailed(str(self.endpoint), exc.last_error) from None
        self._soap_stub = si._stub
        # The connect phase ran with the connect timeout as socket timeout; later requests get
        # ``timeout`` (long polls need it). SoapStubAdapter opens connections with its schemeArgs
        # (pyVmomi's httpConnectionTimeout); the pooled ones keep theirs, so they are dropped.
        self._soap_stub.schemeArgs["timeout"] = self.timeout
        self._soap_stub.DropConnections()
        from pyVmomi import vim

        stub = _ReloginStub(self._soap_stub, self._relogin, lambda: self._generation)
        self._si = vim.ServiceInstance("ServiceInstance", stub)
        # Fetched once through the re-login stub, so every manager reference uses it too.
        self._content = self.call(self._si.RetrieveContent)
        self._session_manager_id = self._content.sessionManager._moId
        return self

    def _smart_connect(self, deadline: float) -> Any:
        """Probe the API version and log in, every socket operation bounded by ``deadline``.

        Not pyVim's SmartConnect: its version probe opens an HTTPS connection without a
        timeout, so a server that accepts TCP and never answers would hang it forever.
        """
        from pyVim import connect as pyvim_connect
        from pyVmomi import vim, vmodl

        endpoint = self.endpoint
        remaining = deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise TimeoutError("connect timeout used up")
            version = self._api_version(remaining)
            return pyvim_connect.Connect(
                host=endpoint.host, port=endpoint.port, path=endpoint.path, user=self.user,
                pwd=self._password.reveal(), service="hostd", adapter="SOAP", version=version,
                sslContext=self.ssl_context, httpConnectionTimeout=max(0.1, deadline - time.monotonic()))
        except TimeoutError:
            # A timeout used the rest of the connect timeout: trying again cannot succeed in time.
            raise ConnectionFailed(str(endpoint), f"no answer within {self.connect_timeout:g} s (TCP connect, TLS "
                                                  f"handshake and the first SOAP calls); if it is only slow, raise "
                                                  f"--vsphere-connect-timeout") from None
        except ssl.SSLCertVerificationError as exc:
            raise TlsVerificationFailed(str(endpoint), exc.verify_message or str(exc.reason)) from None
        except ssl.SSLError as exc:
            raise TlsVerificationFailed(str(endpoint), f"TLS handshake failed: {exc.reason or exc}") from None
        except vim.fault.InvalidLogin:
            raise LoginFailed(self.user, str(endpoint)) from None
        except VSphereCloneError:
            raise
        except socket.gaierror as exc:
            raise ConnectionFailed(str(endpoint), f"cannot resolve host name ({exc.strerror})") from None
        except vmodl.MethodFault as fault:
            if faults.is_transient(fault):
                raise
            raise ConnectionFailed(str(endpoint), faults.describe(fault)) from None
        except Exception as exc:
            if faults.is_transient(exc):
                raise  # retried by connect(); becomes ConnectionFailed below if it persists
            raise ConnectionFailed(str(endpoint), faults.describe(exc)) from None

    def _api_version(self, timeout: float) -> str:
        """The newest API version both pyVmomi and the server speak, from ``/sdk/vimServiceVersions.xml``.

        The file the vSphere Web Services SDK documents for version negotiation: a ``namespaces``
        document whose ``namespace`` entries list a ``version`` and its ``priorVersions``.
        """
        import http.client
        from xml.etree import ElementTree

        from pyVmomi.VmomiSupport import GetServiceVersions, versionIdMap

        endpoint = self.endpoint
        path = f"{endpoint.path}/vimServiceVersions.xml"
        conn = http.client.HTTPSConnection(endpoint.host, endpoint.port, context=self.ssl_context, timeout=timeout)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        offered: set[str] = set()
        if response.status == 200:
            with contextlib.suppress(ElementTree.ParseError):
                root = ElementTree.fromstring(body)
                for namespace in root.iter("namespace"):
                    if namespace.findtext("name", "urn:vim25").strip() == "urn:vim25":
                        offered.update(v.text.strip() for v in namespace.iter("version") if v.text)
        if not offered:
            raise ConnectionFailed(str(endpoint), f"it answers HTTPS but is not a vSphere API endpoint (GET {path}: "
                                                  f"HTTP {response.status}, no API versions listed)")
        for version in GetServiceVersions("vim25"):
            if versionIdMap.get(version) in offered:
                return str(version)
        raise ConnectionFailed(str(endpoint), f"it offers no API version this pyVmomi speaks "
                                              f"({', '.join(sorted(offered))}); upgrade pyvmomi")

    def __enter__(self) -> VSphereConnection:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Log out (best effort) and drop the HTTP connections."""
        si, self._si = self._si, None
        content, self._content = self._content, None
        if si is None:
            return
        try:
            content.sessionManager.Logout()
        except Exception as exc:  # the session may be gone already; nothing to clean up then
            log.debug("logout from %s failed: %s", self.endpoint, faults.describe(exc))
        with contextlib.suppress(Exception):  # best effort: the sockets may be dead already
            self._soap_stub.DropConnections()

    # --- session -----------------------------------------------------------------------

    def _relogin(self, seen_generation: int) -> None:
        """Log in again unless another thread did since ``seen_generation``."""
        from pyVmomi import vim

        with self._login_lock:
            if self._generation != seen_generation:
                return
            manager = vim.SessionManager(self._session_manager_id, self._soap_stub)
            try:
                manager.Login(self.user, self._password.reveal(), None)
            except vim.fault.InvalidLogin:
                raise LoginFailed(self.user, str(self.endpoint)) from None
            self._generation += 1

    @property
    def generation(self) -> int:
        """Bumped on every re-login: session-bound objects (collectors, views) made before are gone."""
        return self._generation

    @property
    def connected(self) -> bool:
        return self._si is not None

    @property
    def si(self) -> vim.ServiceInstance:
        """The ServiceInstance; calls through it log in again transparently after session expiry."""
        if self._si is None:
            self.connect()
        return self._si

    def ref(self, kind: str, moref: str) -> Any:
        """A managed object of this connection from its type's WSDL name and moref id
        (``conn.ref("VirtualMachine", "vm-42")``), as recorded in a ledger or marker."""
        from pyVmomi import VmomiSupport

        return VmomiSupport.GetWsdlType(VmomiSupport.XMLNS_VMODL_BASE, kind)(moref, self.si._stub)

    @property
    def content(self) -> vim.ServiceInstanceContent:
        """The ServiceContent, fetched once per connection."""
        if self._content is None:
            self.connect()
        return self._content

    @property
    def host(self) -> str:
        return self.endpoint.host

    @property
    def port(self) -> int:
        return self.endpoint.port

    @property
    def session_key(self) -> str | None:
        """The current session's key (for HasPrivilegeOnEntities)."""
        manager = self.content.sessionManager
        assert manager is not None
        generation = self._generation
        session = self.call(lambda: manager.currentSession)
        if session is None:
            # SessionManager.currentSession is unset for a caller without a valid session (it is readable
            # anonymously): ours expired. Log in again and read it once more.
            self._relogin(generation)
            session = self.call(lambda: manager.currentSession)
        return session.key if session is not None else None

    # --- calls -------------------------------------------------------------------------

    def call(self, fn: Callable[..., T], *args: object, idempotent: bool = True, what: str | None = None,
             policy: RetryPolicy | None = None, extra_transient: tuple[type[BaseException], ...] = ()) -> T:
        """Call ``fn(*args)`` (a pyVmomi method or any function making calls) with transient-fault retries.

        Mark calls that must not run twice (clones, snapshots, guest programs) with
        ``idempotent=False``; see :mod:`.retry`.
        """
        policy = policy or self.retry_policy
        if self._unreachable:
            # An outage already ridden out in full: the vCenter is taken for gone until a call
            # succeeds, so each later call (teardown, the sweep) fails fast instead of waiting again.
            policy = dataclasses.replace(policy, outage_seconds=0.0)
        try:
            result = retry_call(fn, *args, policy=policy, idempotent=idempotent, what=what,
                                extra_transient=extra_transient)
        except RetriesExhausted as exc:
            if exc.__cause__ is not None and faults.request_not_sent(exc.__cause__):
                self._unreachable = True
            raise
        self._unreachable = False
        return result
