"""Checks shared by every test directory."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from pytest_vsphere_clone.simulator import Simulator, SimulatorConfig
from pytest_vsphere_clone.simulator.guests import guest_support_problem

#: Thread names the simulator's own machinery uses (HTTP server, task runners, request handlers).
_SIM_THREAD_PREFIXES = ("vcsim-http", "sim-task-")


@pytest.fixture(scope="session", autouse=True)
def _no_leaked_simulator_threads() -> Iterator[None]:
    """After the session every simulator server, task and request thread these tests made must be gone.

    Defined at the root so it is set up before and torn down after every other session fixture.
    """
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5.0
    while True:
        leaked = [t.name for t in threading.enumerate() if t not in before and (
            t.name.startswith(_SIM_THREAD_PREFIXES) or "process_request_thread" in t.name)]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not leaked, f"simulator threads outlived their tests: {leaked}"


@pytest.fixture
def guest_sim() -> Iterator[Simulator]:
    """A fresh simulator with real guests (namespaces, sshd, Guest Operations); skipped where impossible."""
    reason = guest_support_problem()
    if reason:
        pytest.skip(reason)
    with Simulator(SimulatorConfig(guests=True)) as simulator:
        yield simulator
