"""The XML on the wire, shaped as vCenter's: typed references, ArrayOf wrappers, empty versus unset.

The expected shapes are those of real vCenters: pyVmomi's recorded vCenter 8.0.3 responses (its
tests/fixtures: Fetch of ``parent``, ``datastore``, ``disabledMethod``, ``content``; the
InvalidLogin fault) and the vCenter responses quoted in govmomi #1061 (RetrieveProperties of a
root folder's ``name`` and ``parent``) and #1065 (an empty ``rootSnapshot``). govmomi decodes a
reference by ``xsi:type="ManagedObjectReference"`` and a fault by its ``xsi:type``; anything else
reads as nil.

Also here: what a client without a valid session may read (session semantics).
"""

from __future__ import annotations

import ssl
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest
from pyVmomi import SoapStubAdapter, vim, vmodl
from raw_soap import XSI_TYPE, RawConnection, Response, envelope, login, login_body, serialized_params
from sim_helpers import close, connect, vm_by_name

from pytest_vsphere_clone.simulator import Simulator

PC = vmodl.query.PropertyCollector
V = "{urn:vim25}"
MOREF = "ManagedObjectReference"


@pytest.fixture
def conn(shared_sim: Simulator) -> Iterator[RawConnection]:
    with RawConnection(shared_sim) as connection:
        yield connection


def _retrieve(conn: RawConnection, cookie: str | None, obj: Any, kind: Any, paths: list[str],
              method: str = "RetrieveProperties") -> Response:
    spec = PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=obj)], propSet=[PC.PropertySpec(type=kind, pathSet=paths)])
    args: dict[str, Any] = {"specSet": [spec]}
    if method == "RetrievePropertiesEx":
        args["options"] = PC.RetrieveOptions()
    response = conn.call(envelope(method, "PropertyCollector", "propertyCollector", serialized_params(method, args)),
                         cookie=cookie)
    assert response.status == 200, response.body
    return response


def _props(response: Response) -> dict[str, ET.Element]:
    """propSet name -> val element of the one object a retrieval answered."""
    returnval = response.returnval()
    assert returnval is not None
    content = returnval.find(f"{V}objects") if returnval.find(f"{V}objects") is not None else returnval
    assert content is not None
    return {p.findtext(f"{V}name", ""): p.find(f"{V}val") for p in content.findall(f"{V}propSet")}  # type: ignore[misc]


def _fetch(conn: RawConnection, cookie: str | None, this_type: str, this_id: str, prop: str) -> Response:
    response = conn.call(envelope("Fetch", this_type, this_id, f"<prop>{prop}</prop>"), cookie=cookie)
    assert response.status == 200, response.body
    return response


def _returnvals(response: Response) -> list[ET.Element]:
    body = response.xml().find("{http://schemas.xmlsoap.org/soap/envelope/}Body")
    assert body is not None
    [answer] = list(body)
    return answer.findall(f"{V}returnval")


def _assert_reference(element: ET.Element | None, kind: str, mo_id: str) -> None:
    assert element is not None
    assert element.get(XSI_TYPE) == MOREF, ET.tostring(element)
    assert element.get("type") == kind
    assert element.text == mo_id


# --- property collector values ---------------------------------------------------------------


@pytest.mark.parametrize("method", ["RetrieveProperties", "RetrievePropertiesEx"])
def test_a_single_reference_in_property_results_is_a_managed_object_reference(
        conn: RawConnection, shared_sim: Simulator, shared_si: Any, method: str) -> None:
    cookie = login(conn, shared_sim)
    [dc] = shared_si.content.rootFolder.childEntity
    props = _props(_retrieve(conn, cookie, dc, vim.Datacenter, ["parent", "vmFolder"], method))
    _assert_reference(props["parent"], "Folder", "group-d1")
    _assert_reference(props["vmFolder"], "Folder", dc.vmFolder._moId)
    vm = vm_by_name(shared_si, "linux-template")
    props = _props(_retrieve(conn, cookie, vm, vim.VirtualMachine, ["runtime.host", "summary.runtime.host"], method))
    host = vm.runtime.host._moId
    _assert_reference(props["runtime.host"], "HostSystem", host)
    _assert_reference(props["summary.runtime.host"], "HostSystem", host)


def test_arrays_in_property_results_are_array_of_with_typed_items(
        conn: RawConnection, shared_sim: Simulator, shared_si: Any) -> None:
    cookie = login(conn, shared_sim)
    vm = vm_by_name(shared_si, "linux-template")
    props = _props(_retrieve(conn, cookie, vm, vim.VirtualMachine,
                             ["datastore", "effectiveRole", "name", "alarmActionsEnabled"]))
    datastores = props["datastore"]
    assert datastores.get(XSI_TYPE) == "ArrayOfManagedObjectReference"
    assert len(datastores) == len(vm.datastore) > 0
    for item, ref in zip(datastores, vm.datastore, strict=True):
        assert item.tag == f"{V}{MOREF}"
        _assert_reference(item, "Datastore", ref._moId)
    roles = props["effectiveRole"]  # as recorded: <returnval xsi:type="ArrayOfInt"><int xsi:type="xsd:int">-1</int>
    assert roles.get(XSI_TYPE) == "ArrayOfInt"
    assert [(i.tag, i.get(XSI_TYPE), i.text) for i in roles] == [(f"{V}int", "xsd:int", "-1")]
    assert props["name"].get(XSI_TYPE) == "xsd:string" and props["name"].text == "linux-template"
    assert props["alarmActionsEnabled"].get(XSI_TYPE) == "xsd:boolean"


def test_enum_values_name_their_enum_type(conn: RawConnection, shared_sim: Simulator, shared_si: Any) -> None:
    cookie = login(conn, shared_sim)
    vm = vm_by_name(shared_si, "linux-template")
    props = _props(_retrieve(conn, cookie, vm, vim.VirtualMachine, ["runtime.powerState", "overallStatus"]))
    assert props["runtime.powerState"].get(XSI_TYPE) == "VirtualMachinePowerState"
    assert props["overallStatus"].get(XSI_TYPE) == "ManagedEntityStatus"
    # As recorded: <returnval xsi:type="ManagedEntityStatus">gray</returnval>
    [status] = _returnvals(_fetch(conn, cookie, "VirtualMachine", vm._moId, "overallStatus"))
    assert status.get(XSI_TYPE) == "ManagedEntityStatus" and status.text == vm.overallStatus


def test_empty_arrays_are_values_and_unset_properties_are_left_out(
        conn: RawConnection, shared_sim: Simulator, shared_si: Any) -> None:
    cookie = login(conn, shared_sim)
    # govmomi #1061, a vCenter's answer for the root folder's name and parent: parent (unset) is absent.
    props = _props(_retrieve(conn, cookie, shared_si.content.rootFolder, vim.Folder, ["name", "parent"]))
    assert set(props) == {"name"}
    # govmomi #1065, a vCenter's answer for a VM without snapshots: <val xsi:type="ArrayOfManagedObjectReference"/>.
    vm = vm_by_name(shared_si, "linux-frozen")
    assert list(vm.rootSnapshot) == []
    props = _props(_retrieve(conn, cookie, vm, vim.VirtualMachine, ["rootSnapshot", "snapshot", "disabledMethod"]))
    assert set(props) == {"rootSnapshot", "disabledMethod"}  # snapshot (a data object) is unset
    assert props["rootSnapshot"].get(XSI_TYPE) == "ArrayOfManagedObjectReference" and len(props["rootSnapshot"]) == 0
    assert props["disabledMethod"].get(XSI_TYPE) == "ArrayOfString"


def test_update_values_are_shaped_the_same(conn: RawConnection, shared_sim: Simulator, shared_si: Any) -> None:
    cookie = login(conn, shared_sim)
    [dc] = shared_si.content.rootFolder.childEntity
    spec = PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=dc)], propSet=[PC.PropertySpec(type=vim.Datacenter,
                                                                                   pathSet=["parent", "datastore"])])
    created = conn.call(envelope("CreateFilter", "PropertyCollector", "propertyCollector", serialized_params(
        "CreateFilter", {"spec": spec, "partialUpdates": False})), cookie=cookie)
    assert created.status == 200, created.body
    params = serialized_params("WaitForUpdatesEx", {"version": "", "options": PC.WaitOptions(maxWaitSeconds=0)})
    update = conn.call(envelope("WaitForUpdatesEx", "PropertyCollector", "propertyCollector", params), cookie=cookie)
    assert update.status == 200, update.body
    changes = {c.findtext(f"{V}name"): c.find(f"{V}val") for c in update.xml().iter(f"{V}changeSet")}
    _assert_reference(changes["parent"], "Folder", "group-d1")
    assert changes["datastore"] is not None and changes["datastore"].get(XSI_TYPE) == "ArrayOfManagedObjectReference"


# --- Fetch -----------------------------------------------------------------------------------


def test_fetch_answers_one_typed_returnval_as_vcenter_does(
        conn: RawConnection, shared_sim: Simulator, shared_si: Any) -> None:
    cookie = login(conn, shared_sim)
    [dc] = shared_si.content.rootFolder.childEntity
    [ref] = _returnvals(_fetch(conn, cookie, "Datacenter", dc._moId, "parent"))
    _assert_reference(ref, "Folder", "group-d1")  # <returnval type="Folder" xsi:type="ManagedObjectReference">
    [array] = _returnvals(_fetch(conn, cookie, "Datacenter", dc._moId, "datastore"))
    assert array.get(XSI_TYPE) == "ArrayOfManagedObjectReference"
    assert [item.get("type") for item in array] == ["Datastore"] * len(dc.datastore)
    assert all(item.get(XSI_TYPE) == MOREF for item in array)
    [empty] = _returnvals(_fetch(conn, cookie, "Datacenter", dc._moId, "disabledMethod"))
    assert empty.get(XSI_TYPE) == "ArrayOfString" and len(empty) == 0  # empty: present, with no items
    assert _returnvals(_fetch(conn, cookie, "Folder", "group-d1", "parent")) == []  # unset: no returnval
    [name] = _returnvals(_fetch(conn, cookie, "Datacenter", dc._moId, "name"))
    assert name.get(XSI_TYPE) == "xsd:string" and name.text == dc.name
    [content] = _returnvals(_fetch(conn, cookie, "ServiceInstance", "ServiceInstance", "content"))
    assert content.get(XSI_TYPE) == "ServiceContent"
    assert content.find(f"{V}rootFolder") is not None and content.find(f"{V}rootFolder").get(XSI_TYPE) is None  # type: ignore[union-attr]


def test_pyvmomi_reads_the_vcenter_shapes(shared_si: Any) -> None:
    root = shared_si.content.rootFolder
    assert root.parent is None
    [dc] = root.childEntity
    assert dc.parent == root and isinstance(dc.vmFolder, vim.Folder)
    vm = vm_by_name(shared_si, "linux-template")
    assert isinstance(vm.runtime.host, vim.HostSystem)
    assert all(isinstance(ds, vim.Datastore) for ds in vm.datastore) and len(vm.datastore) > 0
    assert list(vm.disabledMethod) == [] or all(isinstance(m, str) for m in vm.disabledMethod)
    assert list(dc.effectiveRole) == [-1]
    [content] = shared_si.content.propertyCollector.RetrieveContents([PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=vm)], propSet=[PC.PropertySpec(type=vim.VirtualMachine,
                                                                    pathSet=["runtime.host", "rootSnapshot"])])])
    values = {p.name: p.val for p in content.propSet}
    assert isinstance(values["runtime.host"], vim.HostSystem)
    assert list(values["rootSnapshot"]) == [] or all(isinstance(s, vim.vm.Snapshot) for s in values["rootSnapshot"])


def test_no_element_carries_pyvmomis_version_id(conn: RawConnection, shared_sim: Simulator) -> None:
    response = conn.call(login_body(shared_sim.user, shared_sim.password))
    assert b"versionId" not in response.body
    cookie = login(conn, shared_sim)
    assert b"versionId" not in _fetch(conn, cookie, "ServiceInstance", "ServiceInstance", "content").body


# --- faults ----------------------------------------------------------------------------------


def test_fault_detail_names_its_type_in_the_vim25_namespace(conn: RawConnection, shared_sim: Simulator) -> None:
    response = conn.call(login_body(shared_sim.user, "wrong password"))
    assert response.status == 500
    detail = response.xml().find("{http://schemas.xmlsoap.org/soap/envelope/}Body/"
                                 "{http://schemas.xmlsoap.org/soap/envelope/}Fault/detail")
    assert detail is not None
    [fault] = list(detail)
    # As recorded: <InvalidLoginFault xmlns="urn:vim25" xsi:type="InvalidLogin"></InvalidLoginFault>
    assert fault.tag == f"{V}InvalidLoginFault"
    assert fault.get(XSI_TYPE) == "InvalidLogin"
    assert list(fault) == []  # pyVmomi's msg is no WSDL field: the message is the faultstring
    response = conn.call(envelope("CurrentTime", "ServiceInstance", "ServiceInstance"))
    assert response.fault_name() == "NotAuthenticated"
    detail_xml = response.body.decode()
    assert '<NotAuthenticatedFault xmlns="urn:vim25" xsi:type="NotAuthenticated">' in detail_xml
    assert "<privilegeId>System.View</privilegeId>" in detail_xml


# --- session semantics -----------------------------------------------------------------------


def _anonymous_stub(sim: Simulator) -> Any:
    context = ssl.create_default_context(cafile=str(sim.ca_file))
    return SoapStubAdapter(host=sim.host, port=sim.port, version="vim.version.v8_0_3_0", sslContext=context)


def test_without_a_session_current_session_is_unset_and_content_readable(shared_sim: Simulator) -> None:
    stub = _anonymous_stub(shared_sim)
    try:
        si = vim.ServiceInstance("ServiceInstance", stub)
        content = si.content  # a Fetch of ServiceInstance.content, System.Anonymous in the reference
        assert content.about.apiType == "VirtualCenter"
        assert content.sessionManager.currentSession is None  # "If the client is not logged on, the value is null."
        with pytest.raises(vim.fault.NotAuthenticated):
            si.CurrentTime()  # System.View: a session check, as pyVim's session-oriented stub makes
        with pytest.raises(vim.fault.NotAuthenticated):
            _ = content.rootFolder.childEntity
        with pytest.raises(vim.fault.NotAuthenticated):
            content.sessionManager.SessionIsActive(sessionID="x", userName=shared_sim.user)
    finally:
        stub.DropConnections()


def test_an_expired_session_reads_current_session_as_unset_then_logs_in_again(sim: Simulator) -> None:
    si = connect(sim)
    try:
        manager = si.content.sessionManager
        assert manager.currentSession.userName == sim.user
        sim.expire_sessions()
        assert manager.currentSession is None  # how a client finds that its saved session is gone
        with pytest.raises(vim.fault.NotAuthenticated):
            _ = si.content.rootFolder.childEntity
        manager.Login(userName=sim.user, password=sim.password)
        assert manager.currentSession.userName == sim.user
        assert len(si.content.rootFolder.childEntity) == 1
    finally:
        close(si)


@pytest.mark.parametrize("cookie", [None, "expired-or-forged"])
def test_raw_reads_without_a_valid_session(conn: RawConnection, cookie: str | None, shared_si: Any) -> None:
    # Fetch: currentSession unset (no returnval), content readable, anything else NotAuthenticated.
    assert _returnvals(_fetch(conn, cookie, "SessionManager", "SessionManager", "currentSession")) == []
    [content] = _returnvals(_fetch(conn, cookie, "ServiceInstance", "ServiceInstance", "content"))
    assert content.get(XSI_TYPE) == "ServiceContent"
    refused = conn.call(envelope("Fetch", "Folder", "group-d1", "<prop>childEntity</prop>"), cookie=cookie)
    assert refused.status == 500 and refused.fault_name() == "NotAuthenticated"
    # The property collector (govmomi's UserSession reads currentSession with RetrieveProperties):
    # the SessionManager comes back with nothing set, another object's properties as missing.
    manager = shared_si.content.sessionManager
    for method in ("RetrieveProperties", "RetrievePropertiesEx"):
        response = _retrieve(conn, cookie, manager, vim.SessionManager, ["currentSession"], method)
        assert _props(response) == {}
        assert b"<missingSet>" not in response.body
        response = _retrieve(conn, cookie, shared_si.content.rootFolder, vim.Folder, ["name"], method)
        assert _props(response) == {}
        assert b"<missingSet><path>name</path>" in response.body and b'xsi:type="NotAuthenticated"' in response.body
    assert conn.call(envelope("CurrentTime", "ServiceInstance", "ServiceInstance"),
                     cookie=cookie).fault_name() == "NotAuthenticated"
