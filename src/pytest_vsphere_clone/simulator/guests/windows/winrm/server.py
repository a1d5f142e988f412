"""WinRM (WS-Management over HTTP) server for simulated Windows guests.

Runs inside a guest's network namespace and serves ``POST /wsman`` like the Windows Remote
Management service: HTTP Basic and NTLM/Negotiate authentication (with NTLM message sealing, as
pywinrm uses over plain HTTP), the remote-shell actions, and commands executed by the cmd.exe
dialect (windows/cmd/).

CLI (foreground; prints ``READY port=N`` once listening; exits cleanly on SIGTERM/SIGINT)::

    NTLM_USER_FILE=ACCOUNTS python -m pytest_vsphere_clone.simulator.guests.windows.winrm.server \\
        --port 5985 --bind 0.0.0.0 --user U --hostname H --disk-root DIR [--dhcp-command "..."] [--interface eth0]

``ACCOUNTS`` is the account file (accounts.write_account_file: NT hashes, no password), named in
the environment the server starts with because pyspnego's NTLM acceptor reads it from there.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

from ..context import WindowsGuestContext, add_context_arguments, context_from_args
from .accounts import ACCOUNT_FILE_ENV
from .auth import ENCRYPTED_CONTENT_TYPE, AuthConfig, AuthError, ConnectionAuth
from .wsman import WsmanService

__all__ = ["WinRMServer", "main"]

log = logging.getLogger(__name__)

SOAP_CONTENT_TYPE = "application/soap+xml;charset=UTF-8"
#: Far above WinRM's 150 KiB MaxEnvelopeSize; larger bodies are refused unread.
MAX_BODY = 4 * 1024 * 1024


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # NTLM needs keep-alive: it authenticates the connection
    disable_nagle_algorithm = True
    server_version = "Microsoft-HTTPAPI/2.0"
    sys_version = ""
    #: Idle keep-alive connections are dropped after this many seconds.
    timeout = 300
    server: WinRMServer

    def setup(self) -> None:
        super().setup()
        self.auth = ConnectionAuth(self.server.auth)

    def log_message(self, format: str, *args: object) -> None:
        # Only the request line and status are logged, never headers (credentials).
        log.debug("%s %s", self.address_string(), format % args)

    def _send(
        self,
        status: int,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        close: bool = False,
    ) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if content_type is not None and body:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._send(411, close=True)
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self._send(413 if length > MAX_BODY else 400, close=True)
            return None
        return self.rfile.read(length) if length else b""

    def do_POST(self) -> None:
        body = self._read_body()
        if body is None:
            return
        path = urlsplit(self.path).path.rstrip("/").lower()
        if path not in ("/wsman", "/wsman-anon/identify"):
            self._send(404)
            return
        service = self.server.service
        if self.headers.get("WSMANIDENTIFY", "").lower() == "unauthenticated":
            self._send(200, service.identify(), SOAP_CONTENT_TYPE)
            return
        result = self.auth.authenticate(self.headers.get("Authorization"))
        if result.status != "ok" or result.user is None:
            self._send(401, headers=result.headers)
            return
        encrypted = self.headers.get("Content-Type", "").lower().startswith("multipart/encrypted")
        if encrypted:
            try:
                body = self.auth.decrypt(body)
            except AuthError as exc:
                log.info("rejecting encrypted request: %s", exc)
                self._send(400, headers=result.headers)
                return
        if not body:
            # pywinrm posts an empty body to complete the NTLM handshake before sealing messages.
            self._send(200, headers=result.headers)
            return
        status, reply = service.handle(body, user=result.user, client_ip=self.client_address[0])
        if encrypted:
            self._send(status, self.auth.encrypt(reply), ENCRYPTED_CONTENT_TYPE, result.headers)
        else:
            self._send(status, reply, SOAP_CONTENT_TYPE, result.headers)

    def _not_allowed(self) -> None:
        self._read_body()
        self._send(405, headers=[("Allow", "POST")])

    do_GET = do_PUT = do_DELETE = do_PATCH = _not_allowed


class WinRMServer(ThreadingHTTPServer):
    """WinRM endpoint for one guest.  ``port=0`` picks a free port (see :attr:`port`)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        context: WindowsGuestContext,
        *,
        username: str,
        account_file: Path,
        bind: str = "127.0.0.1",
        port: int = 5985,
        auth_methods: Iterable[str] = ("basic", "negotiate"),
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in bind else socket.AF_INET
        self.auth = AuthConfig(username, account_file, context.hostname, frozenset(auth_methods))
        self.service = WsmanService(context)
        self._thread: threading.Thread | None = None
        super().__init__((bind, port), _Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> WinRMServer:
        """Serve on a background thread."""
        self._thread = threading.Thread(target=self.serve_forever, name="winrm-server", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and cancel running commands."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
            self._thread = None
        self.server_close()
        self.service.close()

    def __enter__(self) -> WinRMServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_vsphere_clone.simulator.guests.windows.winrm.server",
        description="Serve WinRM for a simulated Windows guest (run inside its network namespace).",
    )
    parser.add_argument("--port", type=int, default=5985)
    parser.add_argument("--bind", default="0.0.0.0")
    parser.add_argument(
        "--auth", default="basic,negotiate", help="comma-separated: basic, negotiate (NTLM) [default: both]"
    )
    parser.add_argument("--log-level", default="WARNING")
    add_context_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")

    account_file = os.environ.get(ACCOUNT_FILE_ENV)
    if not account_file:
        parser.error(f"{ACCOUNT_FILE_ENV} must name the account file (see windows/winrm/accounts.py)")
    context = context_from_args(args)
    context.prepare_disk()
    methods = [m.strip().lower() for m in args.auth.split(",") if m.strip()]
    methods = ["negotiate" if m == "ntlm" else m for m in methods]
    try:
        server = WinRMServer(
            context,
            username=args.user,
            account_file=Path(account_file),
            bind=args.bind,
            port=args.port,
            auth_methods=methods,
        )
    except (OSError, ValueError) as exc:
        print(f"winrm server: {exc}", file=sys.stderr)
        return 1

    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    server.start()
    print(f"READY port={server.port}", flush=True)
    log.info("serving WinRM for %s on %s:%d", context.hostname, args.bind, server.port)
    try:
        stop.wait()
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
