"""Every implemented method is reachable by its WSDL name, the only name a client puts on the wire.

pyVmomi's Python names differ from the WSDL for some methods (``RetrieveContents`` is
``RetrieveProperties`` on the wire); a simulator that dispatched by Python name would answer
MethodNotFound to every client's classic property read.
"""

from __future__ import annotations

import datetime
import importlib
import pkgutil
from collections.abc import Iterator
from typing import Any

from pyVmomi import VmomiSupport, vim, vmodl
from raw_soap import RawConnection, envelope, login, serialized_params
from sim_helpers import close, connect

import pytest_vsphere_clone.simulator.objects as sim_objects
from pytest_vsphere_clone.simulator import Simulator
from pytest_vsphere_clone.simulator.objects.base import SimObject

#: Faults that show a call never reached its implementation.
NOT_DISPATCHED = {"MethodNotFound", "InvalidRequest", "NotAuthenticated"}
#: Methods that remove what later calls need run last, in this order.
DESTRUCTIVE_LAST = ("RemoveSnapshot_Task", "RemoveAllSnapshots_Task", "DestroyPropertyFilter", "DestroyView",
                    "DestroyPropertyCollector", "Destroy_Task", "TerminateSession", "Logout")


def _all_subclasses(kind: type[SimObject]) -> Iterator[type[SimObject]]:
    for sub in kind.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


def _simulator_classes() -> set[type[SimObject]]:
    for module in pkgutil.iter_modules(sim_objects.__path__):
        importlib.import_module(f"{sim_objects.__name__}.{module.name}")
    importlib.import_module("pytest_vsphere_clone.simulator.tasks")
    return set(_all_subclasses(SimObject))


def _live(sim: Simulator, kind: type) -> list[SimObject]:
    assert sim.vc is not None
    with sim.vc.lock:
        return [o for o in sim.vc.objects.values() if isinstance(o, kind)]


def _sample(sim: Simulator, kind: Any, depth: int = 0) -> Any:
    """A value of pyVmomi type ``kind`` a client could send: live objects for references, required fields set."""
    if issubclass(kind, list):
        item = _sample(sim, kind.Item, depth)
        return None if item is None else kind([item])
    if issubclass(kind, VmomiSupport.ManagedObject):
        objects = [o for o in _live(sim, SimObject) if issubclass(o.vim_type, kind)]
        return objects[0].ref if objects else None
    if kind is vim.vm.guest.GuestAuthentication:  # abstract: clients send a concrete kind
        return vim.vm.guest.NamePasswordAuthentication(username="nobody", password="wrong", interactiveSession=False)
    if issubclass(kind, VmomiSupport.DataObject):
        if depth > 3:
            return None
        value = kind()
        for prop in kind._GetPropertyList():
            if not prop.flags & VmomiSupport.F_OPTIONAL:
                setattr(value, prop.name, _sample(sim, prop.type, depth + 1))
        return value
    if issubclass(kind, VmomiSupport.Enum):
        return kind.values[0]
    if kind is bool:
        return False
    if kind is datetime.datetime:
        return datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    if kind is VmomiSupport.binary:
        return kind(b"sample")
    if kind is type:
        return vim.VirtualMachine
    if kind is VmomiSupport.PropertyPath:
        return kind("name")
    if issubclass(kind, (int, float)):
        return kind(0)
    if issubclass(kind, str):
        return kind("sample")
    return None


def _arguments(sim: Simulator, method: str) -> dict[str, Any]:
    info = VmomiSupport.GetWsdlMethod("urn:vim25", method).info
    args = {p.name: _sample(sim, p.type) for p in info.params if not p.flags & VmomiSupport.F_OPTIONAL}
    if method == "WaitForUpdatesEx":  # options are optional, but without them the call waits for a change
        args["options"] = vmodl.query.PropertyCollector.WaitOptions(maxWaitSeconds=0)
    return args


def _filter_spec(sim: Simulator) -> Any:
    pc = vmodl.query.PropertyCollector
    [root] = [o for o in _live(sim, SimObject) if o.mo_id == "group-d1"]
    return pc.FilterSpec(objectSet=[pc.ObjectSpec(obj=root.ref)],
                         propSet=[pc.PropertySpec(type=vim.Folder, pathSet=["name"])])


def _order(method: str) -> tuple[int, str]:
    return (DESTRUCTIVE_LAST.index(method) + 1 if method in DESTRUCTIVE_LAST else 0, method)


def _fault_text(conn: RawConnection, body: bytes, cookie: str) -> tuple[str | None, bytes]:
    response = conn.call(body, cookie=cookie)
    return response.fault_name(), response.body


def _call_by_wsdl_name(sim: Simulator, conn: RawConnection, method: str, cls: type[SimObject]) -> str | None:
    """Call ``method`` on a live ``cls`` object over raw SOAP; a description of the failure, if any."""
    try:
        VmomiSupport.GetWsdlMethod("urn:vim25", method)
    except KeyError:
        return f"{cls.__name__}.{method}: not a WSDL method name"
    targets = [o for o in _live(sim, cls) if type(o) is cls]
    if not targets:
        return f"{cls.__name__}.{method}: its object is gone"
    target = targets[-1]
    this = VmomiSupport.GetWsdlName(type(target.ref))
    cookie = login(conn, sim)  # a fresh session each time: Logout and TerminateSession are walked too
    if method in ("WaitForUpdates", "WaitForUpdatesEx", "CheckForUpdates"):
        # These wait for a change of this session's filters: give the session one first.
        params = serialized_params("CreateFilter", {"spec": _filter_spec(sim), "partialUpdates": False})
        conn.call(envelope("CreateFilter", this, target.mo_id, params), cookie=cookie)
    params = serialized_params(method, _arguments(sim, method))
    fault, text = _fault_text(conn, envelope(method, this, target.mo_id, params), cookie)
    if fault in NOT_DISPATCHED or b"not implemented" in text:
        return f"{cls.__name__}.{method} on {target.mo_id}: {fault}: {text[:300]!r}"
    return None


def test_every_implemented_method_answers_to_its_wsdl_name(guest_sim: Simulator) -> None:
    sim = guest_sim
    # Objects that exist only after calls: views, a filter, a session collector, a task. Calls of
    # the walk make more (an event collector, say): rounds go on until no new kind of object appears.
    si = connect(sim)
    try:
        content = si.content
        content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
        content.viewManager.CreateListView([content.rootFolder])
        content.propertyCollector.CreateFilter(_filter_spec(sim), partialUpdates=False)
        content.propertyCollector.CreatePropertyCollector()
        content.rootFolder.Rename_Task("Datacenters")
        failures: list[str] = []
        called: set[tuple[str, type[SimObject]]] = set()
        seen: set[type[SimObject]] = set()
        with RawConnection(sim) as conn:
            for last_round in (False, False, False, True):
                seen |= {type(o) for o in _live(sim, SimObject)}
                calls = sorted({(method, cls) for cls in seen for method in cls.implemented_methods()
                                if (method, cls) not in called and (last_round or method not in DESTRUCTIVE_LAST)},
                               key=lambda call: (*_order(call[0]), call[1].__name__))
                for method, cls in calls:
                    called.add((method, cls))
                    failure = _call_by_wsdl_name(sim, conn, method, cls)
                    if failure:
                        failures.append(failure)
        assert len(called) > 50
        failures += [f"{c.__name__}: no live object to call its methods on" for c in _simulator_classes()
                     if c.implemented_methods() and not any(issubclass(live, c) for live in seen)]
        assert not failures, "\n".join(failures)
    finally:
        close(si)


def test_a_method_the_object_does_not_have_is_method_not_found(shared_sim: Simulator) -> None:
    with RawConnection(shared_sim) as conn:
        cookie = login(conn, shared_sim)
        # A WSDL method of another type: the receiver does not have it.
        fault, _ = _fault_text(conn, envelope("PowerOnVM_Task", "Folder", "group-d1"), cookie)
        assert fault == "MethodNotFound"
        # A name no WSDL defines, pyVmomi's Python name for RetrieveProperties among them.
        fault, _ = _fault_text(conn, envelope("RetrieveContents", "PropertyCollector", "propertyCollector"), cookie)
        assert fault == "MethodNotFound"


def test_retrieve_properties_over_raw_soap(shared_sim: Simulator) -> None:
    with RawConnection(shared_sim) as conn:
        cookie = login(conn, shared_sim)
        params = serialized_params("RetrieveProperties", {"specSet": [_filter_spec(shared_sim)]})
        response = conn.call(envelope("RetrieveProperties", "PropertyCollector", "propertyCollector", params),
                             cookie=cookie, chunks=[100])
    assert response.status == 200, response.body
    assert b"<RetrievePropertiesResponse" in response.body
    returnval = response.returnval()
    assert returnval is not None
    assert returnval.findtext("{urn:vim25}obj") == "group-d1"
    assert returnval.findtext("{urn:vim25}propSet/{urn:vim25}name") == "name"
    assert returnval.findtext("{urn:vim25}propSet/{urn:vim25}val") == "Datacenters"


def test_classic_pyvmomi_retrieve_contents_sends_retrieve_properties(shared_sim: Simulator, shared_si: Any) -> None:
    """The classic pyVmomi read (community samples, Ansible lookups): RetrieveContents is RetrieveProperties."""
    pc = vmodl.query.PropertyCollector
    content = shared_si.content
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        spec = pc.FilterSpec(
            objectSet=[pc.ObjectSpec(obj=view, skip=True, selectSet=[
                pc.TraversalSpec(name="view", path="view", skip=False, type=vim.view.ContainerView)])],
            propSet=[pc.PropertySpec(type=vim.VirtualMachine, pathSet=["name", "runtime.powerState"])])
        before = shared_sim.counters()["RetrieveProperties"]
        results = content.propertyCollector.RetrieveContents([spec])
        assert shared_sim.counters()["RetrieveProperties"] == before + 1
    finally:
        view.DestroyView()
    by_name = {next(p.val for p in r.propSet if p.name == "name"): r for r in results}
    assert "linux-template" in by_name
    for result in results:
        assert isinstance(result.obj, vim.VirtualMachine)
        assert {p.name for p in result.propSet} == {"name", "runtime.powerState"}
