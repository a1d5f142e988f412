"""Fixtures of the client conformance tier: third-party clients against the bundled simulator and vcsim."""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest
from go_build import GoBuild, GoClientError, build_go_client
from go_toolchain import session_go_dir
from vcsim_fixtures import guest_sshd, vcsim_build, vcsim_certificate, vcsim_tier  # noqa: F401 (plugin vs vcsim)

from pytest_vsphere_clone.simulator import Simulator, SimulatorConfig
from pytest_vsphere_clone.simulator.guests import guest_support_problem

# --- evidence of a failing plugin-against-vcsim test ----------------------------------------

#: Lines of each inner run's transcript a failing test shows (the end, where a failure is).
RUN_LINES = 200


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                               ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failing test on vcsim shows its evidence whatever its assertion said: every inner run's
    transcript, the plugin's log of those runs, the Tools player's record and vcsim's log."""
    report: pytest.TestReport = yield
    tier = getattr(item, "funcargs", {}).get("vcsim_tier")
    if report.failed and tier is not None:
        for number, run in enumerate(tier.shell.runs, 1):
            lines = run.report().splitlines()
            shown = "\n".join(lines[-RUN_LINES:])
            cut = f" (last {RUN_LINES} of {len(lines)} lines)" if len(lines) > RUN_LINES else ""
            report.sections.append((f"inner run {number}{cut}", shown))
        report.sections.append(("the inner runs' plugin log", tier.shell.log_excerpt()))
        report.sections.append(("vcsim Tools player", f"booted: {tier.player.booted}\nerrors: {tier.player.errors}"))
        report.sections.append(("vcsim log", tier.server.log_excerpt()))
    return report


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
