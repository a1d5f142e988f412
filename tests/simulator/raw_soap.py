"""Raw HTTP/1.1 and SOAP over TLS to the simulator: the bytes a client sends, the bytes it gets back.

These helpers build requests by hand (no pyVmomi stub), so tests can send what other clients send
(chunked bodies, pipelined requests, broken framing) and look at the XML exactly as it went out.
"""

from __future__ import annotations

import socket
import ssl
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from pytest_vsphere_clone.simulator import Simulator

SOAPENV = "http://schemas.xmlsoap.org/soap/envelope/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
VIM = "urn:vim25"
XSI_TYPE = f"{{{XSI}}}type"
SOAP_ACTION = "urn:vim25/8.0.3.0"


def envelope(method: str, this_type: str, this_id: str, params: str = "") -> bytes:
    """A SOAP request body calling ``method`` on ``this_type:this_id`` with raw parameter XML."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAPENV}" xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
        f'xmlns:xsi="{XSI}"><soapenv:Body><{method} xmlns="{VIM}">'
        f'<_this type="{this_type}">{escape(this_id)}</_this>{params}'
        f"</{method}></soapenv:Body></soapenv:Envelope>"
    ).encode()


def service_content_body() -> bytes:
    return envelope("RetrieveServiceContent", "ServiceInstance", "ServiceInstance")


def login_body(user: str, password: str) -> bytes:
    return envelope("Login", "SessionManager", "SessionManager",
                    f"<userName>{escape(user)}</userName><password>{escape(password)}</password>")


def request_bytes(body: bytes, *, chunks: list[int] | None = None, cookie: str | None = None,
                  path: str = "/sdk", extra: dict[str, str] | None = None) -> bytes:
    """An HTTP/1.1 POST carrying ``body``; with ``chunks`` (chunk sizes) it goes chunked, as govmomi sends."""
    headers = {"Host": "vcenter", "Content-Type": "text/xml; charset=utf-8", "SOAPAction": SOAP_ACTION,
               "User-Agent": "raw-soap-test"}
    if cookie:
        headers["Cookie"] = f"vmware_soap_session={cookie}"
    if chunks is None:
        headers["Content-Length"] = str(len(body))
        payload = body
    else:
        headers["Transfer-Encoding"] = "chunked"
        payload = chunked(body, chunks)
    headers.update(extra or {})
    head = f"POST {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head.encode() + payload


def chunked(body: bytes, sizes: list[int]) -> bytes:
    """``body`` cut into chunks of ``sizes`` (the rest in one more chunk), then the last chunk."""
    out = []
    rest = body
    for size in sizes:
        piece, rest = rest[:size], rest[size:]
        if piece:
            out.append(b"%x\r\n%s\r\n" % (len(piece), piece))
    if rest:
        out.append(b"%x\r\n%s\r\n" % (len(rest), rest))
    out.append(b"0\r\n\r\n")
    return b"".join(out)


@dataclass
class Response:
    """One HTTP response as read off the wire."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def xml(self) -> ET.Element:
        return ET.fromstring(self.body)

    def returnval(self) -> ET.Element | None:
        """The first returnval of a SOAP response (None when the method answered nothing)."""
        body = self.xml().find(f"{{{SOAPENV}}}Body")
        assert body is not None
        [response] = list(body)
        return response.find(f"{{{VIM}}}returnval")

    def fault_name(self) -> str | None:
        """The vSphere fault type of a SOAP fault response, or None."""
        fault = self.xml().find(f"{{{SOAPENV}}}Body/{{{SOAPENV}}}Fault")
        if fault is None:
            return None
        detail = fault.find("detail")
        assert detail is not None
        [kind] = list(detail)
        return kind.get(XSI_TYPE) or kind.tag.rpartition("}")[2].removesuffix("Fault")


class RawConnection:
    """One TLS connection to the simulator, verified against its CA; requests written by hand."""

    def __init__(self, sim: Simulator, timeout: float = 10.0) -> None:
        context = ssl.create_default_context(cafile=str(sim.ca_file))
        raw = socket.create_connection((sim.host, sim.port), timeout=timeout)
        self.sock = context.wrap_socket(raw, server_hostname=sim.host)
        self.reader = self.sock.makefile("rb")

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.reader.close()
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_response(self) -> Response:
        status_line = self.reader.readline()
        assert status_line, "the server closed the connection instead of answering"
        version, status, _ = status_line.decode("latin-1").split(" ", 2)
        assert version == "HTTP/1.1", status_line
        headers: dict[str, str] = {}
        while True:
            line = self.reader.readline().decode("latin-1")
            if line in ("\r\n", "\n", ""):
                break
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        response = Response(int(status), headers)
        if response.status >= 200 and "content-length" in headers:
            response.body = self.reader.read(int(headers["content-length"]))
        return response

    def call(self, body: bytes, **kwargs: object) -> Response:
        """Send one request and read its response."""
        self.send(request_bytes(body, **kwargs))  # type: ignore[arg-type]
        return self.read_response()

    def closed_by_server(self) -> bool:
        """True when the server has closed the connection (reads end), False if it sent more bytes."""
        try:
            return self.reader.read(1) == b""
        except (ConnectionResetError, ssl.SSLError):
            return True


def session_cookie(response: Response) -> str:
    """The vmware_soap_session value a Login response set."""
    from http.cookies import SimpleCookie

    cookie = SimpleCookie(response.headers["set-cookie"])
    return cookie["vmware_soap_session"].value


def login(conn: RawConnection, sim: Simulator) -> str:
    """Log in on ``conn``; returns the session cookie value."""
    response = conn.call(login_body(sim.user, sim.password))
    assert response.status == 200, response.body
    return session_cookie(response)


def serialized_params(method: str, args: dict[str, object]) -> str:
    """The parameter XML pyVmomi's own serializer writes for WSDL method ``method`` with ``args``."""
    from pyVmomi import SoapAdapter, VmomiSupport

    info = VmomiSupport.GetWsdlMethod("urn:vim25", method).info
    ns_map = SoapAdapter.SOAP_NSMAP.copy()
    ns_map["urn:vim25"] = ""
    version = VmomiSupport.versionMap["vim25/8.0.3.0"]
    return "".join(SoapAdapter.SerializeToStr(args[p.name], p, version, ns_map)
                   for p in info.params if args.get(p.name) is not None)
