"""Fixtures of the client conformance tier: third-party clients against the bundled simulator and vcsim."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from go_build import GoBuild, GoClientError, build_go_client
from go_toolchain import session_go_dir
from vcsim_fixtures import guest_sshd, vcsim_build, vcsim_certificate, vcsim_tier  # noqa: F401 (plugin vs vcsim)

from pytest_vsphere_clone.simulator import Simulator, SimulatorConfig
from pytest_vsphere_clone.simulator.guests import guest_support_problem

# --- the Go (govmomi) client ------------------------------------------------------------


@pytest.fixture(scope="session")
def go_client(tmp_path_factory: pytest.TempPathFactory) -> GoBuild:
    """The Go conformance client, built once per session (xdist workers share their session's directory)."""
    try:
        return build_go_client(session_go_dir(tmp_path_factory))
    except GoClientError as exc:
        pytest.fail(str(exc), pytrace=False)  # a missing capability fails, never skips


@pytest.fixture
def go_sim() -> Iterator[Simulator]:
    """A fresh simulator with real guests for one Go scenario; fails where guests cannot run."""
    reason = guest_support_problem()
    if reason:
        pytest.fail(f"the Go client's scenarios need the simulator's real guests: {reason}", pytrace=False)
    with Simulator(SimulatorConfig(guests=True)) as simulator:
        yield simulator
