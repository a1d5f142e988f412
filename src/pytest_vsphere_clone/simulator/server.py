"""The simulator's HTTPS front: /sdk (SOAP), guest file transfers, datastore files (/folder) and the admin
endpoint."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pyVmomi import vmodl

from . import http_framing, soap, soap_trace
from .faults import DropConnection, FaultRule
from .vcenter import CallContext, VCenter

log = logging.getLogger(__name__)

COOKIE_NAME = "vmware_soap_session"
MAX_BODY = 64 * 1024 * 1024
#: After refusing a request: how long and how much the server keeps reading before it closes.
LINGER_SECONDS = 2.0
LINGER_BYTES = 1024 * 1024

#: A guest-file handler: (method, token, body) -> (status, body); set by the guest runtime.
GuestFileHandler = Callable[[str, str, bytes], tuple[int, bytes]]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    vc: VCenter
    tls: ssl.SSLContext | None
    guest_files: GuestFileHandler | None
    admin_user: str
    admin_password: str
    #: Open client connections, so stop() can end keep-alive handler threads clients would hold open.
    connections: set[socket.socket]
    connections_lock: threading.Lock

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        if self.tls is not None:
            # The handshake happens in the handler thread, so one slow client cannot stall accept().
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        with self.connections_lock:
            self.connections.add(sock)
        return sock, addr

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self.connections_lock:
            open_connections = list(self.connections)
        for sock in open_connections:
            with contextlib.suppress(OSError):  # already closed by the client
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Without this every response waits ~40 ms for Nagle + delayed ACK.
    disable_nagle_algorithm = True
    server: _Server
    #: The current request's body, read in full by parse_request.
    body: bytes = b""
    _expects_continue: bool = False
    server_version = "VMware-vCenter-Simulator"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):
            try:
                self.connection.do_handshake()
            except (ssl.SSLError, OSError):
                self.close_connection = True
                raise

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    # --- plumbing --------------------------------------------------------------------

    def handle_expect_100(self) -> bool:
        """Defer the interim 100 response until the framing is known to be readable (parse_request)."""
        self._expects_continue = True
        return True

    def parse_request(self) -> bool:
        """Parse the request line and headers, then read the whole body, whatever the route.

        Reading every body here, before routing, keeps a keep-alive connection in step: a 404 or
        401 answer leaves no unread body behind to be parsed as the next request. Framing that
        cannot be trusted gets its status and the connection closed (send_error sends
        ``Connection: close``).
        """
        self._expects_continue = False
        self.body = b""
        if not super().parse_request():
            return False
        try:
            framing = http_framing.request_framing(self.headers, self.request_version, MAX_BODY)
            if self._expects_continue and framing.has_body:
                # RFC 9110 10.1.1: a server that will read the body "ought to" send 100 (Continue)
                # first; clients such as curl otherwise wait a second before sending it.
                self.send_response_only(100)
                self.end_headers()
            self.body = http_framing.read_body(self.rfile, framing, MAX_BODY)
        except http_framing.FramingError as exc:
            self.send_error(exc.status, exc.message)
            self._linger()
            return False
        return True

    def _linger(self) -> None:
        """A lingering close: end our side first, then read what the client still sends.

        Closing with unread bytes makes the kernel answer with a reset, which can destroy the error
        response before the client has read it; so a bounded amount is read and dropped first.
        """
        sock = self.connection
        with contextlib.suppress(OSError):  # includes the timeout: the client is gone or silent
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(LINGER_SECONDS)
            drained = 0
            while drained < LINGER_BYTES:
                data = sock.recv(65536)
                if not data:
                    break
                drained += len(data)

    def _reply(self, status: int, body: bytes, content_type: str = "text/xml; charset=utf-8",
               headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _session_key(self) -> str | None:
        raw = self.headers.get("Cookie")
        if not raw:
            return None
        try:
            cookie = SimpleCookie(raw)
        except CookieError:
            return None
        morsel = cookie.get(COOKIE_NAME)
        return morsel.value if morsel else None

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    # --- routes ----------------------------------------------------------------------

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path in ("/sdk/vimServiceVersions.xml", "/sdk/vimServiceVersions.xml/"):
            self._reply(200, soap.service_versions_xml())
        elif path.startswith("/guestFile"):
            self._guest_file("GET")
        elif path == "/folder" or path.startswith("/folder/"):
            self._datastore_file()
        elif path.startswith("/admin/"):
            self._admin("GET", path)
        else:
            self._reply(404, b"not found", "text/plain")

    def _datastore_file(self) -> None:
        """A datastore file over HTTPS, with the session's cookie (see datastore_http.py)."""
        from . import datastore_http

        status, body, content_type = datastore_http.serve(self.server.vc, self._session_key(), self.path)
        self._reply(status, body, content_type)

    def do_PUT(self) -> None:
        if urlsplit(self.path).path.startswith("/guestFile"):
            self._guest_file("PUT")
        else:
            self._reply(404, b"not found", "text/plain")

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if path == "/sdk":
            self._soap()
        elif path.startswith("/admin/"):
            self._admin("POST", path)
        else:
            self._reply(404, b"not found", "text/plain")

    def do_DELETE(self) -> None:
        path = urlsplit(self.path).path
        if path.startswith("/admin/"):
            self._admin("DELETE", path)
        else:
            self._reply(404, b"not found", "text/plain")

    def _soap(self) -> None:
        started = time.perf_counter()
        version = soap.version_for_action(self.headers.get("SOAPAction"))
        vc = self.server.vc
        headers: dict[str, str] = {}
        call: soap.MethodCall | None = None
        try:
            call = soap.parse_request(self.body, version)
            ctx = CallContext(vc, None, version, self.client_address[0], self.headers.get("User-Agent", ""))
            result_type, result = vc.invoke(call, ctx, self._session_key())
            if ctx.new_session_key:
                headers["Set-Cookie"] = f'{COOKIE_NAME}="{ctx.new_session_key}"; Path=/; HttpOnly; Secure;'
            payload = soap.serialize_response(call.method, result_type, result, version)
            status = 200
            outcome = f"-> {soap_trace.describe(result)}" if soap_trace.enabled() else ""
        except DropConnection:
            self._drop()
            self._trace(call, "!! connection dropped (injected)", started)
            return
        except soap.SoapRequestError as exc:
            payload, status = _fault_payload(exc.fault, version), 500
            outcome = soap_trace.fault_outcome(exc.fault)
            if call is None:  # undecodable: MethodNotFound still names the method and its receiver
                call = soap.MethodCall(getattr(exc.fault, "method", None) or "?", getattr(exc.fault, "receiver", None))
        except vmodl.MethodFault as fault:
            payload, status = _fault_payload(fault, version), 500
            outcome = soap_trace.fault_outcome(fault)
        except Exception as exc:  # the client must get a fault, never a dropped connection
            log.exception("simulator error")
            error = vmodl.fault.SystemError(msg=f"A general system error occurred: {type(exc).__name__}: {exc}",
                                            reason=str(exc))
            payload, status = _fault_payload(error, version), 500
            outcome = soap_trace.fault_outcome(error)
        self._reply(status, payload, headers=headers)
        self._trace(call, outcome, started)

    def _trace(self, call: soap.MethodCall | None, outcome: str, started: float) -> None:
        """One line of the SOAP call trace, when tracing is on (``vsphere-clone simulator --trace``)."""
        if not soap_trace.enabled():
            return
        method, this = ("?", None) if call is None else (call.method, call.this)
        if method == soap.FETCH_METHOD:
            method = f"Fetch({call.args.get('prop', '') if call is not None else ''})"
        soap_trace.call(method, this, outcome, time.perf_counter() - started)

    def _guest_file(self, method: str) -> None:
        handler = self.server.guest_files
        query = parse_qs(urlsplit(self.path).query)
        token = (query.get("id") or [""])[0]
        if handler is None or not token:
            self._reply(404, b"no such guest file transfer", "text/plain")
            return
        status, payload = handler(method, token, self.body if method == "PUT" else b"")
        self._reply(status, payload, "application/octet-stream")

    # --- admin -----------------------------------------------------------------------

    def _admin_authorized(self) -> bool:
        raw = self.headers.get("Authorization", "")
        if not raw.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(raw[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return (secrets.compare_digest(user, self.server.admin_user)
                and secrets.compare_digest(password, self.server.admin_password))

    def _admin(self, method: str, path: str) -> None:
        if not self._admin_authorized():
            self._reply(401, b'{"error": "admin credentials required"}', "application/json",
                        {"WWW-Authenticate": 'Basic realm="simulator admin"'})
            return
        vc = self.server.vc
        try:
            data: Any
            if path == "/admin/counters" and method == "GET":
                with vc.lock:
                    data = dict(vc.counters)
            elif path == "/admin/counters" and method == "DELETE":
                with vc.lock:
                    vc.counters.clear()
                data = {}
            elif path == "/admin/faults" and method == "POST":
                spec = json.loads(self.body or b"{}")
                rule = vc.faults.add(FaultRule(
                    method=spec["method"], fault=spec.get("fault"), count=int(spec.get("count", 1)),
                    delay=float(spec.get("delay", 0.0)), drop=bool(spec.get("drop", False)),
                    mo_id=spec.get("mo_id"), message=spec.get("message", ""),
                    in_task=bool(spec.get("in_task", False))))
                data = {"method": rule.method, "count": rule.count}
            elif path == "/admin/faults" and method == "DELETE":
                vc.faults.clear()
                data = {}
            elif path == "/admin/sessions" and method == "DELETE":
                vc.sessions.expire_all()
                data = {}
            else:
                self._reply(404, b'{"error": "unknown admin route"}', "application/json")
                return
        except (KeyError, ValueError, TypeError) as exc:
            self._reply(400, json.dumps({"error": str(exc)}).encode(), "application/json")
            return
        self._reply(200, json.dumps(data).encode(), "application/json")


class HostGuestFileHandler(_Handler):
    """An ESXi host's HTTPS service as far as the simulator models it: ``/guestFile`` only."""

    server_version = "VMware-ESXi-Simulator"

    def do_GET(self) -> None:
        if urlsplit(self.path).path.startswith("/guestFile"):
            self._guest_file("GET")
        else:
            self._reply(404, b"not found", "text/plain")

    def do_POST(self) -> None:
        self._reply(404, b"not found", "text/plain")

    def do_DELETE(self) -> None:
        self._reply(404, b"not found", "text/plain")


def _fault_payload(fault: vmodl.MethodFault, version: str) -> bytes:
    """The SOAP envelope of ``fault``; one the serializer refuses (a required field left unset by a
    simulator bug) becomes a SystemError, since an exception here would drop the connection."""
    try:
        return soap.serialize_fault(fault, version)
    except Exception as exc:
        log.exception("cannot serialize %s", type(fault).__name__)
        return soap.serialize_fault(vmodl.fault.SystemError(
            msg=f"A general system error occurred: cannot send {type(fault).__name__}: {exc}", reason=str(exc)),
            version)


class SoapServer:
    """The HTTPS server of one simulated vCenter, serving on a background thread."""

    def __init__(self, vc: VCenter, host: str, port: int, tls: ssl.SSLContext | None, admin_user: str,
                 admin_password: str, handler: type[BaseHTTPRequestHandler] = _Handler) -> None:
        self.httpd = _Server((host, port), handler)
        self.httpd.vc = vc
        self.httpd.tls = tls
        self.httpd.guest_files = None
        self.httpd.admin_user = admin_user
        self.httpd.admin_password = admin_password
        self.httpd.connections = set()
        self.httpd.connections_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def set_guest_file_handler(self, handler: GuestFileHandler | None) -> None:
        self.httpd.guest_files = handler

    def start(self) -> None:
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="vcsim-http", daemon=True)
        self._thread.start()

    def stop_listening(self) -> None:
        """Close the listening socket and every open connection: connections are refused from now
        until :meth:`listen_again`. Calls already running finish, but their answers are lost."""
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.httpd.socket.close()  # first, so no new connection is accepted while the open ones close
        self.httpd.close_connections()

    def stop_accepting(self) -> None:
        """Stop answering new connections but keep listening: the kernel still completes TCP
        handshakes, then nothing answers (as behind a firewall that drops the traffic, the client
        times out). :meth:`start` serves them again."""
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None

    def listen_again(self) -> None:
        """Listen on the same address and port again after :meth:`stop_listening`."""
        self.httpd.socket = socket.socket(self.httpd.address_family, self.httpd.socket_type)
        try:
            self.httpd.server_bind()  # server_address holds the port of the first bind
            self.httpd.server_activate()
        except OSError:
            self.httpd.socket.close()
            raise
        self.start()

    def stop(self) -> None:
        if self._thread is not None:
            # shutdown() waits for serve_forever to notice: never call it when serving never began
            # (a start that failed half-way), or it waits forever.
            self.httpd.shutdown()
        self.httpd.close_connections()  # pooled client connections would keep their handler threads alive
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
