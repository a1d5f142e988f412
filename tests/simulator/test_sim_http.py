"""HTTP/1.1 as a vCenter serves it: chunked bodies, keep-alive, 100-continue, and broken framing refused.

govmomi (govc, Terraform, Packer) sends every SOAP body with ``Transfer-Encoding: chunked`` and keeps
its connections alive; curl and .NET clients send ``Expect: 100-continue``. Everything here goes over
TLS, verified against the simulator's CA, with requests written byte by byte.
"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Iterator

import pytest
from raw_soap import (
    RawConnection,
    Response,
    chunked,
    envelope,
    login,
    login_body,
    request_bytes,
    service_content_body,
    session_cookie,
)

from pytest_vsphere_clone.simulator import Simulator

VERSIONS_GET = b"GET /sdk/vimServiceVersions.xml HTTP/1.1\r\nHost: vcenter\r\n\r\n"


def _is_service_content(response: Response) -> bool:
    returnval = response.returnval()
    return response.status == 200 and returnval is not None and returnval.findtext(
        "{urn:vim25}rootFolder") == "group-d1"


def _find_dc1(cookie: str) -> bytes:
    return request_bytes(envelope("FindByInventoryPath", "SearchIndex", "SearchIndex",
                                  "<inventoryPath>dc1</inventoryPath>"), chunks=[40, 3], cookie=cookie)


@pytest.fixture
def conn(shared_sim: Simulator) -> Iterator[RawConnection]:
    with RawConnection(shared_sim) as connection:
        yield connection


@pytest.mark.parametrize("sizes", [[1], [1, 1, 1, 5, 17], [4096], [100, 0, 3]], ids=str)
def test_chunked_request_body_is_read_whole(conn: RawConnection, sizes: list[int]) -> None:
    response = conn.call(service_content_body(), chunks=sizes)
    assert _is_service_content(response), response.body[:300]


def test_chunk_extensions_and_trailers_are_accepted(conn: RawConnection) -> None:
    body = service_content_body()
    head, tail = body[:50], body[50:]
    payload = (b"%x;name=value\r\n%s\r\n" % (len(head), head) + b"%X ;x\r\n%s\r\n" % (len(tail), tail)
               + b"0\r\nX-Checksum: none\r\n\r\n")
    raw = request_bytes(b"", chunks=[])[:-len(b"0\r\n\r\n")] + payload  # the head alone
    conn.send(raw)
    assert _is_service_content(conn.read_response())


def test_keep_alive_serves_many_requests_on_one_connection_after_chunked_ones(
        conn: RawConnection, shared_sim: Simulator) -> None:
    assert _is_service_content(conn.call(service_content_body(), chunks=[64]))
    assert _is_service_content(conn.call(service_content_body()))  # Content-Length after chunked
    response = conn.call(login_body(shared_sim.user, shared_sim.password), chunks=[10, 10])
    assert response.status == 200, response.body
    cookie = session_cookie(response)
    for _ in range(3):
        conn.send(_find_dc1(cookie))
        found = conn.read_response()
        assert found.status == 200, found.body
        returnval = found.returnval()
        assert returnval is not None and returnval.get("type") == "Datacenter"
        assert found.headers.get("connection", "").lower() != "close"
    conn.send(VERSIONS_GET)
    assert conn.read_response().status == 200


def test_pipelined_chunked_requests_are_answered_in_order(conn: RawConnection, shared_sim: Simulator) -> None:
    cookie = login(conn, shared_sim)
    conn.send(request_bytes(service_content_body(), chunks=[7, 300]) + _find_dc1(cookie) + VERSIONS_GET
              + request_bytes(service_content_body()))
    assert _is_service_content(conn.read_response())
    found = conn.read_response().returnval()
    assert found is not None and found.get("type") == "Datacenter"
    versions = conn.read_response()
    assert versions.status == 200 and b"urn:vim25" in versions.body
    assert _is_service_content(conn.read_response())


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_expect_100_continue_gets_the_interim_response_before_the_body_is_sent(
        conn: RawConnection, framing: str) -> None:
    body = service_content_body()
    raw = request_bytes(body, chunks=[30] if framing == "chunked" else None,
                        extra={"Expect": "100-continue"})
    head, _, payload = raw.partition(b"\r\n\r\n")
    conn.send(head + b"\r\n\r\n")
    interim = conn.read_response()  # the server answers before a byte of the body is sent
    assert interim.status == 100
    conn.send(payload)
    assert _is_service_content(conn.read_response())
    assert _is_service_content(conn.call(service_content_body()))  # and the connection lives on


def test_expect_100_continue_without_a_body_gets_only_the_final_response(conn: RawConnection) -> None:
    conn.send(VERSIONS_GET.replace(b"\r\n\r\n", b"\r\nExpect: 100-continue\r\n\r\n"))
    assert conn.read_response().status == 200


def test_an_unknown_route_still_consumes_its_body(conn: RawConnection) -> None:
    conn.send(request_bytes(VERSIONS_GET * 3, path="/no-such-route", chunks=[5]))
    assert conn.read_response().status == 404
    conn.send(request_bytes(VERSIONS_GET, path="/no-such-route"))
    assert conn.read_response().status == 404
    assert _is_service_content(conn.call(service_content_body()))  # the bodies were not read as requests


_SMUGGLED = VERSIONS_GET  # a complete request hidden in the leftover: it must never be answered
_HEAD = (b"POST /sdk HTTP/1.1\r\nHost: vcenter\r\nContent-Type: text/xml\r\nSOAPAction: urn:vim25/8.0.3.0\r\n")
_BODY = service_content_body()

MALFORMED = {
    "bad chunk size": _HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n" + _SMUGGLED,
    "negative chunk size": _HEAD + b"Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n" + _SMUGGLED,
    "chunk longer than its size": _HEAD + b"Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n" + _SMUGGLED,
    "chunk size line ended by LF": _HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n" + _SMUGGLED,
    "invalid trailer": _HEAD + b"Transfer-Encoding: chunked\r\n\r\n0\r\nnot a field\r\n\r\n" + _SMUGGLED,
    "chunked and Content-Length": _HEAD + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
    + chunked(_BODY, []) + _SMUGGLED,
    "chunked not final": _HEAD + b"Transfer-Encoding: chunked, gzip\r\n\r\n" + chunked(_BODY, []) + _SMUGGLED,
    "chunked in HTTP/1.0": _HEAD.replace(b"HTTP/1.1", b"HTTP/1.0")
    + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(_BODY, []) + _SMUGGLED,
    "space before the colon": _HEAD + b"Transfer-Encoding : chunked\r\n\r\n" + chunked(_BODY, []) + _SMUGGLED,
    "Content-Length not a number": _HEAD + b"Content-Length: 12abc\r\n\r\n" + _SMUGGLED,
    "Content-Length signed": _HEAD + b"Content-Length: +5\r\n\r\nhello" + _SMUGGLED,
    "Content-Length negative": _HEAD + b"Content-Length: -1\r\n\r\n" + _SMUGGLED,
    "conflicting Content-Lengths": _HEAD + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!" + _SMUGGLED,
}


@pytest.mark.parametrize("raw", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_framing_gets_400_and_the_connection_closed(conn: RawConnection, raw: bytes) -> None:
    conn.send(raw)
    response = conn.read_response()
    assert response.status == 400
    assert response.headers.get("connection", "").lower() == "close"
    assert conn.closed_by_server()  # the smuggled request behind the broken framing is never answered


def test_an_unknown_transfer_coding_gets_501_and_the_connection_closed(conn: RawConnection) -> None:
    conn.send(_HEAD + b"Transfer-Encoding: gzip, chunked\r\n\r\n" + chunked(_BODY, []) + _SMUGGLED)
    response = conn.read_response()
    assert response.status == 501
    assert conn.closed_by_server()


@pytest.mark.parametrize("header", [b"Content-Length: 99999999999", b"Transfer-Encoding: chunked"])
def test_a_body_too_large_gets_413_and_the_connection_closed(conn: RawConnection, header: bytes) -> None:
    body = b"fffffffff\r\n" if header.startswith(b"Transfer") else b""
    conn.send(_HEAD + header + b"\r\n\r\n" + body)
    response = conn.read_response()
    assert response.status == 413
    assert conn.closed_by_server()


def test_a_valid_request_after_a_refused_one_needs_a_new_connection(shared_sim: Simulator) -> None:
    with RawConnection(shared_sim) as first:
        first.send(MALFORMED["bad chunk size"])
        assert first.read_response().status == 400
    with RawConnection(shared_sim) as second:
        assert _is_service_content(second.call(service_content_body(), chunks=[9]))


def test_http_client_chunked_requests_reuse_one_tls_connection(shared_sim: Simulator) -> None:
    """The standard library's client, as another third-party client: encode_chunked, keep-alive."""
    context = ssl.create_default_context(cafile=str(shared_sim.ca_file))
    client = http.client.HTTPSConnection(shared_sim.host, shared_sim.port, context=context, timeout=10)
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": "urn:vim25/8.0.3.0",
               "Transfer-Encoding": "chunked"}
    try:
        sockets = set()
        body = login_body(shared_sim.user, shared_sim.password)
        client.request("POST", "/sdk", body=iter([body[:20], body[20:]]), headers=headers, encode_chunked=True)
        response = client.getresponse()
        assert response.status == 200, response.read()
        cookie = response.headers["Set-Cookie"].split(";")[0]
        response.read()
        sockets.add(id(client.sock))
        for _ in range(4):
            search = envelope("FindByInventoryPath", "SearchIndex", "SearchIndex", "<inventoryPath>dc1</inventoryPath>")
            client.request("POST", "/sdk", body=iter([search]), headers={**headers, "Cookie": cookie},
                           encode_chunked=True)
            response = client.getresponse()
            payload = response.read()
            assert response.status == 200, payload
            assert b'type="Datacenter"' in payload
            sockets.add(id(client.sock))
        assert len(sockets) == 1  # never reconnected
    finally:
        client.close()
