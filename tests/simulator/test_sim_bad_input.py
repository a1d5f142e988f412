"""Bad input never crashes the simulator: raw malformed requests and wrong calls get vCenter's SOAP faults."""

from __future__ import annotations

import http.client
import re
import socket
import ssl
from typing import Any

import pytest
from pyVmomi import vim, vmodl
from sim_helpers import vm_by_name

from pytest_vsphere_clone.simulator import Simulator

ENVELOPE = ('<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            '<soapenv:Body>{}</soapenv:Body></soapenv:Envelope>')


def _call(method: str, this: str, args: str = "") -> bytes:
    return ENVELOPE.format(f'<{method} xmlns="urn:vim25">{this}{args}</{method}>').encode()


def _post(sim: Simulator, body: bytes, cookie: str | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, str]:
    """One raw SOAP POST over HTTPS (verified); returns the status and the response text."""
    context = ssl.create_default_context(cafile=str(sim.ca_file))
    conn = http.client.HTTPSConnection(sim.host, sim.port, context=context, timeout=10)
    try:
        all_headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '"urn:vim25/8.0.3.0"'}
        if cookie:
            all_headers["Cookie"] = cookie
        all_headers.update(headers or {})
        conn.request("POST", "/sdk", body=body, headers=all_headers)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def _fault_name(text: str) -> str:
    match = re.search(r'<detail><(\w+)Fault\b', text)
    assert match, f"no SOAP fault detail in {text[:300]!r}"
    return match.group(1)


@pytest.fixture
def cookie(sim: Simulator, si: Any) -> str:
    """The session cookie of a logged-in pyVmomi client, for raw requests."""
    return str(si._stub.cookie)


def _assert_still_serving(sim: Simulator, si: Any) -> None:
    assert si.CurrentTime() is not None
    assert vm_by_name(si, "linux-template").runtime.powerState == "poweredOff"
    status, text = _post(sim, _call("RetrieveServiceContent", '<_this type="ServiceInstance">ServiceInstance</_this>'))
    assert status == 200 and "VirtualCenter" in text


VM_THIS = '<_this type="VirtualMachine">{}</_this>'

BAD_REQUESTS: list[tuple[str, bytes, str]] = [
    ("malformed XML", b'<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="x"><soapenv:Body><Curr',
     "InvalidRequest"),
    ("not XML at all", b"hello, vCenter", "InvalidRequest"),
    ("empty body", b"", "InvalidRequest"),
    ("not an envelope", b'<?xml version="1.0"?><CurrentTime xmlns="urn:vim25"/>', "InvalidRequest"),
    ("empty envelope body", ENVELOPE.format("").encode(), "InvalidRequest"),
    ("two calls in one body", ENVELOPE.format(
        '<CurrentTime xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></CurrentTime>' * 2
    ).encode(), "InvalidRequest"),
    ("missing _this", _call("CurrentTime", ""), "InvalidRequest"),
    ("unknown method", _call("FrobnicateVM_Task", VM_THIS.format("{vm}")), "MethodNotFound"),
    ("unknown method with arguments", _call("FrobnicateVM_Task", VM_THIS.format("{vm}"),
                                            "<how><deep>x</deep></how><n>1</n>"), "MethodNotFound"),
    ("unknown method without _this", _call("FrobnicateVM_Task", "", "<n>1</n>"), "InvalidRequest"),
    ("unimplemented WSDL method", _call("MigrateVM_Task", VM_THIS.format("{vm}"),
                                        "<priority>defaultPriority</priority>"), "MethodNotFound"),
    ("method of another type", _call("PowerOnVM_Task", '<_this type="Folder">group-d1</_this>'), "MethodNotFound"),
    ("stale reference", _call("PowerOnVM_Task", VM_THIS.format("vm-99999")), "ManagedObjectNotFound"),
    ("reference of the wrong type", _call("PowerOnVM_Task", '<_this type="VirtualMachine">group-d1</_this>'),
     "ManagedObjectNotFound"),
    ("wrong argument type (bool)", _call("CreateSnapshot_Task", VM_THIS.format("{vm}"),
                                         "<name>s</name><memory>perhaps</memory><quiesce>false</quiesce>"),
     "InvalidRequest"),
    ("wrong argument type (int)", _call("RemoveCustomFieldDef", '<_this type="CustomFieldsManager">'
                                        "CustomFieldsManager</_this>", "<key>seven</key>"), "InvalidRequest"),
    ("unknown xsi:type", _call("ReconfigVM_Task", VM_THIS.format("{vm}"),
                               '<spec xsi:type="NoSuchSpec"><annotation>x</annotation></spec>'), "InvalidRequest"),
    ("unknown parameter", _call("PowerOnVM_Task", VM_THIS.format("{vm}"), "<turbo>true</turbo>"), "InvalidRequest"),
    ("missing required argument", _call("CreateSnapshot_Task", VM_THIS.format("{vm}"),
                                        "<memory>false</memory>"), "InvalidRequest"),
    ("reference argument to a missing object", _call("CloneVM_Task", VM_THIS.format("{vm}"),
                                                     '<folder type="Folder">group-v404</folder><name>x</name>'
                                                     "<spec><powerOn>false</powerOn><template>false</template>"
                                                     "</spec>"), "ManagedObjectNotFound"),
    ("wrong argument value", _call("ContinueRetrievePropertiesEx", '<_this type="PropertyCollector">'
                                   "propertyCollector</_this>", "<token>no-such-token</token>"), "InvalidArgument"),
]


@pytest.mark.parametrize(("label", "body", "fault"), BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_bad_request_gets_a_vcenter_fault(sim: Simulator, si: Any, cookie: str, label: str, body: bytes,
                                          fault: str) -> None:
    vm = vm_by_name(si, "linux-template")
    status, text = _post(sim, body.replace(b"{vm}", vm._moId.encode()), cookie)
    assert status == 500
    assert "<faultstring>" in text
    assert _fault_name(text) == fault, text
    _assert_still_serving(sim, si)


def test_unauthenticated_raw_call_is_not_authenticated(sim: Simulator, si: Any) -> None:
    vm = vm_by_name(si, "linux-template")
    status, text = _post(sim, _call("PowerOnVM_Task", VM_THIS.format(vm._moId)))
    assert status == 500 and _fault_name(text) == "NotAuthenticated"
    status, text = _post(sim, _call("PowerOnVM_Task", VM_THIS.format(vm._moId)),
                         cookie='vmware_soap_session="forged"; ;;==')
    assert status == 500 and _fault_name(text) == "NotAuthenticated"
    _assert_still_serving(sim, si)


@pytest.mark.parametrize("length", ["abc", "-5"])
def test_bad_content_length_is_a_bad_request(sim: Simulator, si: Any, length: str) -> None:
    # Framing comes before SOAP: an unreadable Content-Length is an HTTP 400 and a closed connection
    # (RFC 9112 6.3), as vCenter's front end answers; tests/simulator/test_sim_http.py has the rest.
    body = _call("CurrentTime", '<_this type="ServiceInstance">ServiceInstance</_this>')
    context = ssl.create_default_context(cafile=str(sim.ca_file))
    with socket.create_connection((sim.host, sim.port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=sim.host) as tls:
        tls.sendall(f"POST /sdk HTTP/1.1\r\nHost: sim\r\nContent-Length: {length}\r\n\r\n".encode() + body)
        response = http.client.HTTPResponse(tls)
        response.begin()
        response.read()
    assert response.status == 400 and response.getheader("Connection") == "close"
    _assert_still_serving(sim, si)


def test_garbage_on_the_wire_leaves_the_server_serving(sim: Simulator, si: Any) -> None:
    # Plain bytes to the TLS port, a TLS connection closed mid-request and a junk request line.
    with socket.create_connection((sim.host, sim.port), timeout=5) as raw:
        raw.sendall(b"\x16\x03\x01garbage that is not a TLS hello\r\n\r\n")
        raw.recv(100)
    context = ssl.create_default_context(cafile=str(sim.ca_file))
    with socket.create_connection((sim.host, sim.port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname=sim.host) as tls:
        tls.sendall(b"POST /sdk HTTP/1.1\r\nHost: sim\r\nContent-Length: 500\r\n\r\n<soapenv:Env")
    with socket.create_connection((sim.host, sim.port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname=sim.host) as tls:
        tls.sendall(b"\x00\x01JUNK\r\n\r\n")
        assert b"400" in tls.recv(200)
    _assert_still_serving(sim, si)


def test_wrong_calls_through_the_client(sim: Simulator, si: Any) -> None:
    """The same faults through pyVmomi: the client serializes, the simulator judges."""
    vm = vm_by_name(si, "linux-template")
    with pytest.raises(vmodl.fault.MethodNotFound):
        vm.MigrateVM_Task(priority="defaultPriority")
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        vim.VirtualMachine("vm-404404", si._stub).PowerOnVM_Task()
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        _ = vim.VirtualMachine("vm-404404", si._stub).name
    with pytest.raises(vmodl.fault.InvalidArgument):
        si.content.propertyCollector.ContinueRetrievePropertiesEx(token="nope")
    with pytest.raises(vmodl.fault.InvalidArgument):
        si.content.viewManager.CreateContainerView(container=vm, type=[vim.VirtualMachine], recursive=True)
    with pytest.raises(vmodl.fault.InvalidArgument):
        si.content.customFieldsManager.RemoveCustomFieldDef(key=424242)
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):  # a reference whose type does not match the object
        si.content.searchIndex.FindByUuid(uuid="x", vmSearch=True, datacenter=vim.Datacenter("group-d1", si._stub))
    _assert_still_serving(sim, si)


def test_get_of_unknown_paths(shared_sim: Simulator) -> None:
    context = ssl.create_default_context(cafile=str(shared_sim.ca_file))
    conn = http.client.HTTPSConnection(shared_sim.host, shared_sim.port, context=context, timeout=10)
    try:
        for path in ("/", "/sdk", "/nothing/here"):
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            assert response.status == 404
    finally:
        conn.close()
