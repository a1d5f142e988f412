"""A Go client on Debian's govmomi (0.24) runs everyday vSphere calls against the simulator.

Each scenario is one run of ``go_client`` against a fresh simulator with real guests; every step the
client prints is part of the assertion message. See go_build.py for the client's protocol.
"""

from __future__ import annotations

import subprocess

import pytest
from go_build import GoBuild, run_scenario

from pytest_vsphere_clone.simulator import Simulator

SCENARIOS = [
    "login",
    "find",
    "properties_classic",
    "properties_ex",
    "linked_clone",
    "instant_clone",
    "power",
    "guest_operations",
    "guest_operations_windows",
    "custom_fields",
    "events",
    "destroy",
    "logout",
    "session_expiry",
]


def client_env(sim: Simulator) -> dict[str, str]:
    """Connection facts for the client, as the simulator prints them."""
    facts = sim.connection_facts()
    return {"VSPHERE_URL": sim.url, "VSPHERE_USER": sim.user, "VSPHERE_PASSWORD": sim.password,
            "VSPHERE_CA_FILE": str(sim.ca_file), "GUEST_USER": facts["GUEST_USER"],
            "GUEST_PASSWORD": facts["GUEST_PASSWORD"], "WINDOWS_GUEST_USER": facts["WINDOWS_GUEST_USER"],
            "WINDOWS_GUEST_PASSWORD": facts["WINDOWS_GUEST_PASSWORD"]}


def test_every_scenario_is_run(go_client: GoBuild) -> None:
    """The client's scenarios are exactly the ones parametrized here: none is left out silently."""
    listed = subprocess.run([str(go_client.binary), "-list"], capture_output=True, text=True, check=True)
    assert sorted(listed.stdout.split()) == sorted(SCENARIOS)


@pytest.mark.guests
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_go_client(scenario: str, go_client: GoBuild, go_sim: Simulator) -> None:
    result = run_scenario(go_client.binary, scenario, client_env(go_sim),
                          actions={"expire-sessions": go_sim.expire_sessions})
    assert result.returncode == 0 and not result.failures, result.report()
    assert any(line.startswith("PASS ") for line in result.lines), result.report()
