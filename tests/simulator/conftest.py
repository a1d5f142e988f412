"""Fixtures for the simulator's API tests: running simulators and real pyVmomi clients over HTTPS.

Every test talks to the simulator the way a user does: ``SmartConnect`` with
the simulator's CA file (no ``disableSslCertValidation``), pyVim's
``WaitForTask``, and the client's own serializer. White-box reads of the
simulator (``sim.find_vm``) only build state that would take too many calls
otherwise, or confirm what the client saw.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sim_helpers import close, connect

from pytest_vsphere_clone.simulator import Simulator, SimulatorConfig
from pytest_vsphere_clone.simulator.guests import guest_support_problem


@pytest.fixture(scope="session")
def shared_sim() -> Iterator[Simulator]:
    """One simulator for tests that only read, or that make their own uniquely named objects."""
    with Simulator(SimulatorConfig()) as sim:
        yield sim


@pytest.fixture(scope="session")
def shared_si(shared_sim: Simulator) -> Iterator[Any]:
    si = connect(shared_sim)
    yield si
    close(si)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    """A fresh simulator (about 10 ms to start) for tests whose assertions depend on exact state."""
    with Simulator(SimulatorConfig()) as simulator:
        yield simulator


@pytest.fixture
def si(sim: Simulator) -> Iterator[Any]:
    service_instance = connect(sim)
    yield service_instance
    close(service_instance)


@pytest.fixture(scope="module")
def gsim() -> Iterator[Simulator]:
    """A simulator with real guests shared by one module's tests (skipped only where guests cannot run)."""
    reason = guest_support_problem()
    if reason:
        pytest.skip(reason)
    with Simulator(SimulatorConfig(guests=True)) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def gsi(gsim: Simulator) -> Iterator[Any]:
    si = connect(gsim)
    yield si
    close(si)


@pytest.fixture
def client_factory() -> Iterator[Callable[..., Any]]:
    """Connect extra clients (other users, other sessions); all are closed after the test."""
    opened: list[Any] = []

    def factory(simulator: Simulator, user: str | None = None, password: str | None = None) -> Any:
        service_instance = connect(simulator, user, password)
        opened.append(service_instance)
        return service_instance

    yield factory
    for service_instance in opened:
        close(service_instance)


_name_counter = iter(range(1, 1_000_000))


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Names that never collide inside the shared simulator."""
    return lambda prefix: f"{prefix}-{next(_name_counter)}"
