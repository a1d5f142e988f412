"""Fixtures for the client layer's tests: the bundled simulator, reached through the real pyVmomi client.

Nothing of vSphere is mocked: every test drives the client layer against a simulator
over HTTPS with its CA verified. White-box reads of the simulator (``sim.find_vm``)
only confirm what the client did.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from client_helpers import FAST_RETRY

from pytest_vsphere_clone.client.session import VSphereConnection
from pytest_vsphere_clone.client.waiter import Waiter
from pytest_vsphere_clone.simulator import Simulator, SimulatorConfig

#: Retries in tests: the same logic, without the production pauses.

#: An inventory with the shapes the default one lacks: duplicates in sub-folders, a running
#: (not frozen) source, a VM without snapshots, a nested snapshot tree, a second datacenter.
SHAPES: dict[str, Any] = {
    "datacenters": [
        {
            "name": "dc1",
            "datastores": [{"name": "datastore1"}, {"name": "datastore2"}],
            "networks": ["VM Network", "Test Network"],
            "clusters": [{"name": "cluster1", "hosts": ["esx1", "esx2"]}, {"name": "cluster2", "hosts": ["esx3"]}],
            "vms": [
                {"name": "linux-template", "snapshots": ["base"]},
                {"name": "ubuntu", "folder": "templates", "snapshots": ["base"]},
                {"name": "ubuntu", "folder": "old/templates", "snapshots": ["base"]},
                {"name": "linux-running", "power": "poweredOn"},
                {"name": "linux-frozen", "power": "poweredOn", "frozen": True},
                {"name": "linux-nosnap"},
                {"name": "real-template", "template": True, "snapshots": ["base"]},
                {"name": "layered", "snapshots": ["base", "updated", "latest"]},
                {"name": "windows-template", "guest_id": "windows2019srvNext_64Guest", "snapshots": ["base"]},
            ],
        },
        {
            "name": "dc2",
            "clusters": [{"name": "cluster9", "hosts": ["esx9"]}],
            "vms": [{"name": "far-away", "snapshots": ["base"]}],
        },
    ],
}


def make_connection(sim: Simulator, **overrides: Any) -> VSphereConnection:
    """A connected VSphereConnection to ``sim`` that verifies its CA (close it after use)."""
    options: dict[str, Any] = {"ca_bundle": sim.ca_file, "retry": FAST_RETRY, "timeout": 30.0}
    options.update(overrides)
    user = options.pop("user", sim.user)
    password = options.pop("password", sim.password)
    return VSphereConnection(f"{sim.host}:{sim.port}", user, password, **options).connect()


@pytest.fixture
def sim() -> Iterator[Simulator]:
    """A fresh default simulator (about 10 ms to start), stopped after the test."""
    with Simulator(SimulatorConfig()) as simulator:
        yield simulator


@pytest.fixture
def shapes_file(tmp_path: Path) -> Path:
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps(SHAPES))
    return path


@pytest.fixture
def shapes_sim(shapes_file: Path) -> Iterator[Simulator]:
    """A simulator with the SHAPES inventory."""
    with Simulator(SimulatorConfig(inventory=shapes_file)) as simulator:
        yield simulator


@pytest.fixture(scope="session")
def shared_shapes_conn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VSphereConnection]:
    """A connection to one SHAPES simulator shared by tests that only read."""
    path = tmp_path_factory.mktemp("shapes") / "inventory.json"
    path.write_text(json.dumps(SHAPES))
    with Simulator(SimulatorConfig(inventory=path)) as simulator:
        conn = make_connection(simulator)
        yield conn
        conn.close()


@pytest.fixture
def connect() -> Iterator[Callable[..., VSphereConnection]]:
    """Open connections to a simulator; every one is closed after the test."""
    opened: list[VSphereConnection] = []

    def factory(simulator: Simulator, **overrides: Any) -> VSphereConnection:
        conn = make_connection(simulator, **overrides)
        opened.append(conn)
        return conn

    yield factory
    for conn in opened:
        conn.close()


@pytest.fixture
def conn(sim: Simulator, connect: Callable[..., VSphereConnection]) -> VSphereConnection:
    return connect(sim)


@pytest.fixture
def shapes_conn(shapes_sim: Simulator, connect: Callable[..., VSphereConnection]) -> VSphereConnection:
    return connect(shapes_sim)


@pytest.fixture
def waiter(conn: VSphereConnection) -> Iterator[Waiter]:
    with Waiter(conn) as w:
        yield w


@pytest.fixture
def guest_conn(guest_sim: Simulator, connect: Callable[..., VSphereConnection]) -> VSphereConnection:
    return connect(guest_sim)
