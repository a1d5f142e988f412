"""Fixtures for the real-guest runtime: GuestHosts with real namespaces, sshd and DHCP.

Tests marked ``guests`` need root and the host tools; they are skipped with the
reason otherwise. Everything a test creates is removed in teardown, even on failure.
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from guest_helpers import PASSWORD, MakeGuest, MakeSpec, RpcRecorder, require_guest_support

from pytest_vsphere_clone.simulator.guests import Guest, GuestHost, GuestSpec

_macs = itertools.count(1)


@pytest.fixture(scope="module")
def rpc() -> RpcRecorder:
    return RpcRecorder()


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, rpc: RpcRecorder) -> Iterator[GuestHost]:
    """One GuestHost per test module (guests come and go per test)."""
    require_guest_support()
    gh = GuestHost(tmp_path_factory.mktemp("guesthost") / "state", "tests", backdoor=rpc)
    gh.start()
    try:
        yield gh
    finally:
        gh.stop()


@pytest.fixture
def make_spec(tmp_path: Path) -> MakeSpec:
    """Build a GuestSpec with a unique vm_id, MAC and disk directory."""

    def make(**overrides: object) -> GuestSpec:
        n = next(_macs)
        values: dict[str, object] = {
            "vm_id": f"vm-{n}",
            "hostname": f"guest{n}",
            "mac": f"00:50:56:{(n >> 16) & 0xFF:02x}:{(n >> 8) & 0xFF:02x}:{n & 0xFF:02x}",
            "family": "linux",
            "disk_dir": tmp_path / f"disk-{n}",
            "user": "alice",
            "password": PASSWORD,
        }
        values.update(overrides)
        return GuestSpec(**values)  # type: ignore[arg-type]

    return make


@pytest.fixture
def make_guest(host: GuestHost, make_spec: MakeSpec) -> Iterator[MakeGuest]:
    """Create (and by default boot) guests on the module's host; all removed after the test."""
    created: list[Guest] = []

    def make(boot: bool = True, resume_from: Guest | None = None, spec: GuestSpec | None = None, **kw: object) -> Guest:
        guest = host.create_guest(spec or make_spec(**kw), resume_from=resume_from)
        created.append(guest)
        if boot:
            guest.boot()
        return guest

    yield make
    for guest in reversed(created):
        host.remove_guest(guest.vm_id)


@pytest.fixture
def tcp_listener(host: GuestHost) -> Iterator[tuple[str, int]]:
    """A TCP listener on the host's gateway address: something for guests to reach."""
    with socket.socket() as server:
        server.bind((host.gateway_ip, 0))
        server.listen(16)
        yield host.gateway_ip, server.getsockname()[1]
