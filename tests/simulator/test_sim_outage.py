"""A vCenter outage (Simulator.go_away / come_back / outage): refused connections, then lost sessions."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest
from pyVmomi import vim
from sim_helpers import close, connect, vm_by_name

from pytest_vsphere_clone.simulator import Simulator

#: What a client may see on the connection that was open when the server went away.
LOST_CONNECTION = (ConnectionError, OSError)


def _refused(sim: Simulator) -> bool:
    """Whether a new TCP connection to the simulator's port is refused."""
    try:
        socket.create_connection((sim.host, sim.port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def test_clients_are_refused_during_an_outage_and_must_log_in_again_after(sim: Simulator, si: Any) -> None:
    vm = vm_by_name(si, "linux-template")
    port = sim.port
    sim.go_away()
    try:
        assert _refused(sim)
        # The pooled connection was closed by the server; the call after that needs a new one,
        # which is refused.
        with pytest.raises(LOST_CONNECTION):
            si.CurrentTime()
        with pytest.raises(ConnectionRefusedError):
            si.CurrentTime()
        with pytest.raises(ConnectionRefusedError):
            connect(sim)
    finally:
        sim.come_back()
    assert sim.port == port and not _refused(sim)
    # The server is back on the same port, but the session is gone, as after a vCenter restart.
    with pytest.raises(vim.fault.NotAuthenticated):
        _ = vm.name
    again = connect(sim)
    try:
        assert vm_by_name(again, "linux-template").name == "linux-template"
    finally:
        close(again)


def test_outage_blocks_for_its_length_and_ends_serving_again(sim: Simulator) -> None:
    seen: list[bool] = []
    outage = threading.Thread(target=sim.outage, args=(0.5,))
    started = time.monotonic()
    outage.start()
    time.sleep(0.2)
    seen.append(_refused(sim))
    outage.join()
    assert time.monotonic() - started >= 0.5
    seen.append(_refused(sim))
    assert seen == [True, False]
    si = connect(sim)
    try:
        assert si.CurrentTime() is not None
    finally:
        close(si)
