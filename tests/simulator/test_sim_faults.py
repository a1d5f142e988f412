"""Fault injection (fail next N, probabilistic, delay, drop, lost answers) and per-method counters,
from Python and the admin endpoint."""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import time
from collections.abc import Callable
from typing import Any

import pytest
from pyVmomi import vim, vmodl
from sim_helpers import linked_clone_spec, vm_by_name, wait

from pytest_vsphere_clone.simulator import Simulator


def _admin(sim: Simulator, method: str, path: str, body: Any = None,
           credentials: tuple[str, str] | None = None) -> tuple[int, Any]:
    """One request to the admin endpoint over HTTPS, verified against the simulator's CA."""
    user, password = credentials or (sim.user, sim.password)
    context = ssl.create_default_context(cafile=str(sim.ca_file))
    conn = http.client.HTTPSConnection(sim.host, sim.port, context=context, timeout=10)
    try:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        payload = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else None)
        conn.request(method, path, body=payload, headers={"Authorization": f"Basic {token}",
                                                          "Content-Type": "application/json"})
        response = conn.getresponse()
        raw = response.read()
        is_json = response.getheader("Content-Type", "").startswith("application/json")
        return response.status, json.loads(raw) if is_json else raw
    finally:
        conn.close()


def test_fail_next_n_calls_then_succeed(sim: Simulator, si: Any) -> None:
    template = vm_by_name(si, "linux-template")
    sim.inject_fault("CloneVM_Task", "InsufficientResourcesFault", count=2)
    for index in range(2):
        with pytest.raises(vim.fault.InsufficientResourcesFault) as raised:
            template.CloneVM_Task(folder=template.parent, name=f"f{index}",
                                  spec=linked_clone_spec(template.snapshot.currentSnapshot))
        assert "Injected" in raised.value.msg
    clone = wait(template.CloneVM_Task(folder=template.parent, name="f-ok",
                                       spec=linked_clone_spec(template.snapshot.currentSnapshot)))
    assert clone.name == "f-ok"
    assert sim.vm_names().count("f-ok") == 1 and "f0" not in sim.vm_names()


def test_fault_for_one_object_only(sim: Simulator, si: Any) -> None:
    frozen = vm_by_name(si, "linux-frozen")
    windows = vm_by_name(si, "windows-frozen")
    sim.inject_fault("PowerOffVM_Task", "vmodl.fault.SystemError", count=-1, mo_id=frozen._moId,
                     message="host lost")
    with pytest.raises(vmodl.fault.SystemError, match="host lost"):
        frozen.PowerOffVM_Task()
    wait(windows.PowerOffVM_Task())  # another VM is unaffected
    with pytest.raises(vmodl.fault.SystemError):
        frozen.PowerOffVM_Task()  # count=-1: every call
    sim.clear_faults()
    wait(frozen.PowerOffVM_Task())


def test_delay_stalls_the_call(sim: Simulator, si: Any) -> None:
    sim.inject_fault("CurrentTime", delay=0.4)
    start = time.monotonic()
    si.CurrentTime()
    assert time.monotonic() - start >= 0.4
    start = time.monotonic()
    si.CurrentTime()
    assert time.monotonic() - start < 0.3  # only the next call was delayed


def test_drop_closes_the_connection_without_an_answer(sim: Simulator, si: Any) -> None:
    sim.inject_fault("CurrentTime", drop=True)
    with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
        si.CurrentTime()
    assert si.CurrentTime() is not None  # the next call gets through on a new connection
    assert vm_by_name(si, "linux-frozen").name == "linux-frozen"


def test_probabilistic_rule_for_every_method_is_repeatable(sim: Simulator, si: Any) -> None:
    def outcomes(seed: int) -> list[bool]:
        """Which of 200 calls (of two methods) the rule hit."""
        rule = sim.inject_fault("*", "HostCommunication", count=-1, probability=0.2, seed=seed)
        hit: list[bool] = []
        for index in range(200):
            try:
                si.CurrentTime() if index % 2 else si.RetrieveContent()
                hit.append(False)
            except vmodl.fault.HostCommunication:
                hit.append(True)
        sim.clear_faults()
        assert rule.fired == sum(hit)
        return hit

    first = outcomes(7)
    assert 20 <= sum(first) <= 60  # about 40 of 200
    assert any(first[1::2]) and any(first[0::2])  # "*" reaches both methods
    assert outcomes(7) == first  # the same seed hits the same calls of the same sequence
    assert outcomes(8) != first


def test_probabilistic_rule_leaves_calls_it_misses_to_later_rules(sim: Simulator, si: Any) -> None:
    never = sim.inject_fault("CurrentTime", "HostCommunication", count=1, probability=0.0)
    sim.inject_fault("CurrentTime", "TaskInProgress", count=1)
    with pytest.raises(vim.fault.TaskInProgress):
        si.CurrentTime()
    si.CurrentTime()
    assert never.fired == 0 and never.count == 1  # a miss consumes nothing
    with pytest.raises(ValueError, match="probability"):
        sim.inject_fault("CurrentTime", probability=1.5)


def test_drop_reply_runs_the_call_and_loses_its_answer(sim: Simulator, si: Any) -> None:
    template = vm_by_name(si, "linux-template")
    sim.inject_fault("CloneVM_Task", drop_reply=True)
    with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
        template.CloneVM_Task(folder=template.parent, name="lost-answer",
                              spec=linked_clone_spec(template.snapshot.currentSnapshot))
    # The clone was made although the client never heard of its task.
    deadline = time.monotonic() + 10
    while si.content.searchIndex.FindChild(template.parent, "lost-answer") is None:
        assert time.monotonic() < deadline, "the clone whose answer was lost never appeared"
        time.sleep(0.05)
    assert "lost-answer" in sim.vm_names()


def test_unknown_fault_name_is_refused_at_injection(sim: Simulator) -> None:
    with pytest.raises(ValueError, match="unknown vSphere fault"):
        sim.inject_fault("CloneVM_Task", "NoSuchFault")


def test_counters_per_method(sim: Simulator, si: Any) -> None:
    sim.reset_counters()
    for _ in range(3):
        si.CurrentTime()
    vm = vm_by_name(si, "linux-template")
    _ = vm.name
    counts = sim.counters()
    assert counts["CurrentTime"] == 3
    assert counts["FindByInventoryPath"] == 1
    assert counts["Fetch"] >= 1
    sim.inject_fault("CurrentTime", "SystemError")
    with pytest.raises(vmodl.fault.SystemError):
        si.CurrentTime()
    assert sim.counters()["CurrentTime"] == 4  # failed calls count too
    sim.reset_counters()
    assert sim.counters()["CurrentTime"] == 0


def test_admin_endpoint_counters_and_faults(sim: Simulator, si: Any) -> None:
    status, _ = _admin(sim, "DELETE", "/admin/counters")
    assert status == 200
    si.CurrentTime()
    si.CurrentTime()
    status, counters = _admin(sim, "GET", "/admin/counters")
    assert status == 200 and counters["CurrentTime"] == 2
    status, rule = _admin(sim, "POST", "/admin/faults", {"method": "CurrentTime", "fault": "InvalidState",
                                                          "count": 1})
    assert status == 200 and rule == {"method": "CurrentTime", "count": 1}
    with pytest.raises(vim.fault.InvalidState):
        si.CurrentTime()
    si.CurrentTime()
    _admin(sim, "POST", "/admin/faults", {"method": "CurrentTime", "delay": 0.3})
    start = time.monotonic()
    si.CurrentTime()
    assert time.monotonic() - start >= 0.3
    _admin(sim, "POST", "/admin/faults", {"method": "CurrentTime", "drop": True})
    with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
        si.CurrentTime()
    _admin(sim, "POST", "/admin/faults", {"method": "CurrentTime", "fault": "SystemError", "count": -1})
    with pytest.raises(vmodl.fault.SystemError):
        si.CurrentTime()
    status, _ = _admin(sim, "DELETE", "/admin/faults")
    assert status == 200
    si.CurrentTime()
    status, counters = _admin(sim, "GET", "/admin/counters")
    assert counters["CurrentTime"] == 8


def test_admin_endpoint_ends_sessions(sim: Simulator, si: Any) -> None:
    assert si.content.rootFolder.childEntity
    status, _ = _admin(sim, "DELETE", "/admin/sessions")
    assert status == 200
    with pytest.raises(vim.fault.NotAuthenticated):
        _ = si.content.rootFolder.childEntity


@pytest.mark.parametrize(("method", "path", "body", "status"), [
    ("POST", "/admin/faults", {"fault": "SystemError"}, 400),
    ("POST", "/admin/faults", {"method": "CurrentTime", "fault": "NoSuchFault"}, 400),
    ("POST", "/admin/faults", {"method": "CurrentTime", "count": "many"}, 400),
    ("POST", "/admin/faults", b"{not json", 400),
    ("GET", "/admin/nothing", None, 404),
    ("PUT", "/admin/counters", None, 404),
])
def test_admin_endpoint_bad_requests(shared_sim: Simulator, method: str, path: str, body: Any, status: int) -> None:
    assert _admin(shared_sim, method, path, body)[0] == status
    assert _admin(shared_sim, "GET", "/admin/counters")[0] == 200  # still serving


def test_admin_endpoint_needs_the_admin_credentials(shared_sim: Simulator,
                                                    client_factory: Callable[..., Any]) -> None:
    assert _admin(shared_sim, "GET", "/admin/counters", credentials=(shared_sim.user, "wrong"))[0] == 401
    assert _admin(shared_sim, "DELETE", "/admin/sessions", credentials=("intruder", shared_sim.password))[0] == 401
    context = ssl.create_default_context(cafile=str(shared_sim.ca_file))
    conn = http.client.HTTPSConnection(shared_sim.host, shared_sim.port, context=context, timeout=10)
    try:
        conn.request("GET", "/admin/counters")
        response = conn.getresponse()
        response.read()
        assert response.status == 401 and "Basic" in response.getheader("WWW-Authenticate", "")
    finally:
        conn.close()
    # Nothing was cleared by the refused requests: an existing session still works.
    assert client_factory(shared_sim).content.rootFolder.childEntity
