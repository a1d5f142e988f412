"""Fault injection over every vSphere call of a clone's lifecycle: once -> it still works, always -> one clear error."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from client_helpers import FAST_RETRY

from pytest_vsphere_clone.client.clone import CloneRequest, clone_vm
from pytest_vsphere_clone.client.errors import RetriesExhausted, VSphereCloneError
from pytest_vsphere_clone.client.inventory import Inventory
from pytest_vsphere_clone.client.marker import Marker
from pytest_vsphere_clone.client.session import VSphereConnection
from pytest_vsphere_clone.client.teardown import destroy
from pytest_vsphere_clone.client.waiter import Waiter
from pytest_vsphere_clone.simulator import Simulator

Connect = Callable[..., VSphereConnection]
TEMPLATES = {"linux-template", "linux-frozen", "windows-template", "windows-frozen"}

LINKED_CALLS = ["CreateContainerView", "RetrievePropertiesEx", "DestroyView", "CreatePropertyCollector",
                "CreateListView", "CreateFilter", "ModifyListView", "WaitForUpdatesEx", "CloneVM_Task", "Fetch",
                "AddCustomFieldDef", "SetField", "PowerOnVM_Task", "PowerOffVM_Task", "Destroy_Task"]
INSTANT_CALLS = ["InstantClone_Task"]


def _lifecycle(conn: VSphereConnection, template: str, clone_type: str) -> None:
    with Waiter(conn) as waiter:
        info = Inventory.load(conn).find_template(template)
        request = CloneRequest(info, "pytest-run-gw0-1", clone_type=clone_type, marker=Marker.new("run"))
        result = clone_vm(conn, request, waiter, retry=FAST_RETRY)
        assert result.vm.name == "pytest-run-gw0-1"
        destroy(conn, result.vm, waiter=waiter)


def _calls() -> list[tuple[str, str, str]]:
    cases = [(m, "linux-template", "linked") for m in LINKED_CALLS]
    cases += [(m, "linux-frozen", "instant") for m in INSTANT_CALLS]
    return cases


@pytest.mark.parametrize("how", ["fault", "drop"])
@pytest.mark.parametrize(("method", "template", "clone_type"), _calls())
def test_failing_once_still_works_and_leaves_nothing(sim: Simulator, connect: Connect, method: str, template: str,
                                                     clone_type: str, how: str) -> None:
    conn = connect(sim)
    if how == "fault":
        sim.inject_fault(method, "HostCommunication")
    else:
        sim.inject_fault(method, drop=True)
    _lifecycle(conn, template, clone_type)
    assert sim.counters()[method] >= 2, f"{method} was not exercised"
    assert set(sim.vm_names()) == TEMPLATES


@pytest.mark.parametrize("method", ["RetrievePropertiesEx", "CloneVM_Task", "SetField", "PowerOnVM_Task"])
def test_failing_always_is_one_clear_error(sim: Simulator, connect: Connect, method: str) -> None:
    conn = connect(sim)
    sim.inject_fault(method, "HostCommunication", count=-1)
    with pytest.raises(VSphereCloneError) as raised:
        _lifecycle(conn, "linux-template", "linked")
    assert isinstance(raised.value, RetriesExhausted)
    message = str(raised.value)
    assert "\n" not in message and "HostCommunication" in message and "failed 4 times" in message
    sim.clear_faults()
    assert set(sim.vm_names()) == TEMPLATES


@pytest.mark.parametrize("method", ["CreateListView", "CreateFilter", "ModifyListView", "WaitForUpdatesEx"])
def test_waits_that_always_fail_fall_back_to_reading_the_tasks(sim: Simulator, connect: Connect,
                                                               method: str) -> None:
    # A property collector that never works is not a failed clone: each task's end is read from
    # the task itself, so the lifecycle completes and leaves nothing.
    conn = connect(sim)
    sim.inject_fault(method, "HostCommunication", count=-1)
    _lifecycle(conn, "linux-template", "linked")
    sim.clear_faults()
    assert set(sim.vm_names()) == TEMPLATES
