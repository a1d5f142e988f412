"""The retry helper: what is transient, backoff with jitter, and never repeating a call of unknown outcome."""

from __future__ import annotations

import http.client
from collections.abc import Callable

import pytest
from pyVmomi import vim, vmodl

from pytest_vsphere_clone.client import faults
from pytest_vsphere_clone.client.errors import OutcomeUnknown, RetriesExhausted
from pytest_vsphere_clone.client.retry import RetryPolicy, retry_call
from pytest_vsphere_clone.client.session import VSphereConnection
from pytest_vsphere_clone.simulator import Simulator

Connect = Callable[..., VSphereConnection]
NO_SLEEP = RetryPolicy(attempts=4, base_delay=0.0, max_delay=0.0)


@pytest.mark.parametrize("exc", [
    ConnectionResetError(104, "Connection reset by peer"),
    http.client.RemoteDisconnected("Remote end closed connection without response"),
    http.client.HTTPException("503 Service Unavailable"),
    TimeoutError("timed out"),
    vim.fault.GuestOperationsUnavailable(msg="not yet"),
    vim.fault.TaskInProgress(msg="busy"),
    vmodl.fault.HostCommunication(msg="host down"),
    vmodl.fault.HostNotReachable(msg="host unreachable"),
])
def test_transient_failures(exc: BaseException) -> None:
    assert faults.is_transient(exc)


@pytest.mark.parametrize("exc", [
    vim.fault.InvalidLogin(msg="no"),
    vim.fault.NoPermission(msg="no"),
    vmodl.fault.ManagedObjectNotFound(msg="gone"),
    http.client.HTTPException("404 Not Found"),
    ValueError("bug"),
])
def test_permanent_failures(exc: BaseException) -> None:
    assert not faults.is_transient(exc)


def test_delays_grow_exponentially_with_jitter_and_a_cap() -> None:
    policy = RetryPolicy(attempts=10, base_delay=0.2, max_delay=2.0)
    for n, ceiling in enumerate([0.2, 0.4, 0.8, 1.6, 2.0, 2.0]):
        samples = {policy.delay(n) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in samples)
        assert len(samples) > 1  # jitter


def _flaky(failures: list[BaseException]) -> Callable[[], str]:
    def call() -> str:
        if failures:
            raise failures.pop(0)
        return "done"

    return call


def test_retries_transient_failures_then_succeeds() -> None:
    slept: list[float] = []
    call = _flaky([ConnectionResetError(), vim.fault.TaskInProgress(msg="busy")])
    assert retry_call(call, policy=RetryPolicy(attempts=3, base_delay=0.1), sleep=slept.append) == "done"
    assert len(slept) == 2 and 0.05 <= slept[0] <= 0.1 and 0.1 <= slept[1] <= 0.2


def test_persisting_transient_failure_is_retries_exhausted() -> None:
    call = _flaky([vim.fault.TaskInProgress(msg="busy")] * 10)
    with pytest.raises(RetriesExhausted, match=r"power-on failed 4 times .*TaskInProgress: busy") as raised:
        retry_call(call, policy=NO_SLEEP, what="power-on", sleep=lambda _: None)
    assert isinstance(raised.value.__cause__, vim.fault.TaskInProgress)


def test_permanent_failure_is_raised_at_once() -> None:
    calls = []

    def call() -> None:
        calls.append(1)
        raise vim.fault.InvalidPowerState(msg="off")

    with pytest.raises(vim.fault.InvalidPowerState):
        retry_call(call, policy=NO_SLEEP)
    assert len(calls) == 1


def test_non_idempotent_call_with_lost_connection_is_not_repeated() -> None:
    calls = []

    def clone() -> None:
        calls.append(1)
        raise http.client.RemoteDisconnected("dropped")

    with pytest.raises(OutcomeUnknown, match="whether it happened is unknown"):
        retry_call(clone, policy=NO_SLEEP, idempotent=False, what="CloneVM_Task")
    assert len(calls) == 1


def test_non_idempotent_call_is_repeated_when_the_server_refused_it() -> None:
    # A fault answer or a refused connection proves nothing happened, so repeating is safe.
    call = _flaky([vim.fault.TaskInProgress(msg="busy"), http.client.HTTPException("503 Service Unavailable"),
                   ConnectionRefusedError()])
    assert retry_call(call, policy=NO_SLEEP, idempotent=False, sleep=lambda _: None) == "done"


def test_deadline_stops_retrying_early() -> None:
    call = _flaky([ConnectionResetError()] * 10)
    with pytest.raises(RetriesExhausted) as raised:
        retry_call(call, policy=RetryPolicy(attempts=10, base_delay=1.0, max_delay=1.0, deadline=0.1),
                   sleep=lambda _: None)
    assert raised.value.attempts == 1


# --- against the simulator ------------------------------------------------------------------------


@pytest.mark.parametrize("fault", [
    "HostCommunication",
    "GuestOperationsUnavailable",
    "TaskInProgress",
])
def test_transient_fault_once_is_retried(sim: Simulator, connect: Connect, fault: str) -> None:
    conn = connect(sim)
    view_manager = conn.content.viewManager
    assert view_manager is not None
    sim.inject_fault("CreateContainerView", fault)
    view = conn.call(view_manager.CreateContainerView, conn.content.rootFolder, [vim.VirtualMachine], True)
    assert len(view.view) == 4
    assert sim.counters()["CreateContainerView"] == 2


def test_dropped_connection_once_is_retried_for_an_idempotent_call(sim: Simulator, connect: Connect) -> None:
    conn = connect(sim)
    sim.inject_fault("CurrentTime", drop=True)
    assert conn.call(conn.si.CurrentTime) is not None
    assert sim.counters()["CurrentTime"] == 2


def test_transient_fault_always_is_a_clear_error(sim: Simulator, connect: Connect) -> None:
    conn = connect(sim)
    sim.inject_fault("CurrentTime", "HostCommunication", count=-1)
    with pytest.raises(RetriesExhausted, match=r"CurrentTime failed 4 times with a transient fault"):
        conn.call(conn.si.CurrentTime, what="CurrentTime")
    assert sim.counters()["CurrentTime"] == 4


def test_a_system_error_is_retried_for_idempotent_calls_only() -> None:
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise vmodl.fault.SystemError(msg="A general system error occurred", reason="busy")
        return "done"

    assert retry_call(call, policy=NO_SLEEP, sleep=lambda _: None) == "done"
    calls.clear()
    with pytest.raises(vmodl.fault.SystemError):
        retry_call(call, policy=NO_SLEEP, idempotent=False, sleep=lambda _: None)


def test_refused_connections_are_retried_through_an_outage_beyond_the_attempts() -> None:
    # A vCenter restarting refuses connections for a while: nothing reached it, so the call waits
    # the outage out (within outage_seconds), whatever the number of attempts.
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        if len(calls) < 9:
            raise ConnectionRefusedError(111, "Connection refused")
        return "back"

    assert retry_call(call, policy=RetryPolicy(attempts=3, base_delay=0.0, max_delay=0.0),
                      sleep=lambda _: None) == "back"
    assert len(calls) == 9
    calls.clear()
    with pytest.raises(RetriesExhausted):
        retry_call(call, policy=RetryPolicy(attempts=3, base_delay=0.0, max_delay=0.0, outage_seconds=0.0),
                   sleep=lambda _: None)
    assert len(calls) == 3


def test_a_vcenter_gone_for_good_is_waited_for_once_then_calls_fail_fast(connect: Connect) -> None:
    import time

    from pytest_vsphere_clone.simulator import Simulator

    sim = Simulator().start()
    conn = connect(sim, retry=RetryPolicy(attempts=2, base_delay=0.05, max_delay=0.1, outage_seconds=3.0))
    root = conn.content.rootFolder
    sim.stop()  # connections refused from now on
    started = time.monotonic()
    with pytest.raises(RetriesExhausted):
        conn.call(lambda: root.name, what="root folder name")
    assert time.monotonic() - started >= 2.5  # the outage was waited out once...
    started = time.monotonic()
    with pytest.raises(RetriesExhausted):
        conn.call(lambda: root.name, what="root folder name")
    assert time.monotonic() - started < 2.0  # ...then the vCenter is taken for gone
