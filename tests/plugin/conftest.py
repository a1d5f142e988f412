"""Fixtures for the plugin's tests: a module-scoped simulator with real guests and inner pytest runs.

The helpers live in plugin_helpers.py (a conftest is not importable by name
when several test directories have one).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from plugin_helpers import Inner, SimHandle, start_sim

from pytest_vsphere_clone.client.session import VSphereConnection
from pytest_vsphere_clone.client.teardown import list_marked, reap
from pytest_vsphere_clone.simulator import Simulator, SimulatorConfig
from pytest_vsphere_clone.simulator.guests import guest_support_problem


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = guest_support_problem()
    if reason is None:
        return
    for item in items:
        if item.get_closest_marker("guests"):
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="module")
def plugin_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimHandle]:
    """A simulator with real guests shared by the tests of one module."""
    reason = guest_support_problem()
    if reason:
        pytest.skip(reason)
    handle = start_sim(tmp_path_factory.mktemp("sim"))
    try:
        yield handle
    finally:
        handle.sim.stop()


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    """A module's simulator with real guests, inspected after the runs that the tests start."""
    reason = guest_support_problem()
    if reason:
        pytest.skip(reason)
    with Simulator(SimulatorConfig(guests=True)) as simulator:
        yield simulator


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Inner:
    return Inner(pytester, monkeypatch)


@pytest.fixture
def conn(plugin_sim: SimHandle) -> Iterator[VSphereConnection]:
    """A pyVmomi session with the module's simulator, for checks beside the inner runs."""
    f = plugin_sim.facts
    connection = VSphereConnection(f["HOST"], f["USER"], f["PASSWORD"], ca_bundle=f["CA_FILE"]).connect()
    yield connection
    connection.close()


@pytest.fixture
def reap_kept(conn: VSphereConnection, plugin_sim: SimHandle) -> Iterator[None]:
    """After the test, destroy whatever clones it kept (every marked VM of the simulator), guests included."""
    namespaces = plugin_sim.namespaces()
    yield
    for run_id in {vm.marker.run_id for vm in list_marked(conn)}:
        reap(conn, run_id=run_id)
    assert plugin_sim.clones() == []
    assert plugin_sim.namespaces() == namespaces
