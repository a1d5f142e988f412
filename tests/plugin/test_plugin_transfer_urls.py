"""The plugin's answer to ESXi hosts the runner cannot reach on 443 (guest file transfers need them).

Real inner pytest runs against a simulator with real guests whose ESXi hosts are cut off from the
runner (their /guestFile services refuse connections) while the vCenter stays reachable, as behind
an enterprise firewall. Discovery falls back to VMware Tools' report; what still needs a transfer
fails with one line naming the runner -> ESXi:443 path.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from plugin_helpers import Inner, Outcome, SimHandle

pytestmark = pytest.mark.guests

HOSTS = ("esx1", "esx2")
A_TEST = """
def test_ssh(vsphere_vm):
    assert vsphere_vm.run("echo reached").stdout == "reached\\n"
"""


@pytest.fixture
def cut_off(plugin_sim: SimHandle) -> Iterator[SimHandle]:
    """The simulator with every ESXi host unreachable from the runner, restored afterwards."""
    for host in HOSTS:
        plugin_sim.sim.host_unreachable(host)
    try:
        yield plugin_sim
    finally:
        for host in HOSTS:
            plugin_sim.sim.host_reachable(host)


def _run(inner: Inner, sim: SimHandle, *args: str) -> Outcome:
    outcome = inner.run("--vsphere-template=linux-template", *args, sim=sim)
    assert "Traceback" not in outcome.out, outcome.out
    assert sim.clones() == [], outcome.out  # whatever failed, the clone went
    return outcome


def test_reading_the_host_keys_names_the_path_to_the_esxi_host(inner: Inner, cut_off: SimHandle) -> None:
    # Defaults: active discovery (falls back to the Tools' report) and the guest host-key policy,
    # whose keys can only come through a guest file transfer.
    inner.pytester.makepyfile(test_a=A_TEST)
    outcome = _run(inner, cut_off)
    assert outcome.ret != 0, outcome.out
    lines = [line for line in outcome.out.splitlines() if "cannot reach ESXi host esx" in line]
    assert lines, outcome.out
    line = lines[0]
    assert ":443 (connection refused): the machine running pytest must reach the ESXi hosts on port 443" in line
    assert "--vsphere-discovery=tools and --vsphere-ssh-host-key-policy=known-hosts (or accept-new)" in line


def test_discovery_falls_back_to_the_tools_report(inner: Inner, cut_off: SimHandle) -> None:
    inner.pytester.makepyfile(test_a=A_TEST)
    cut_off.sim.reset_counters()
    outcome = _run(inner, cut_off, "--vsphere-ssh-host-key-policy=accept-new")
    assert outcome.ret == 0, outcome.out
    # Active discovery tried a transfer (refused by the host), then the Tools' report found the address.
    assert cut_off.sim.counters()["InitiateFileTransferFromGuest"] >= 1


def test_without_transfers_nothing_needs_the_hosts(inner: Inner, cut_off: SimHandle) -> None:
    inner.pytester.makepyfile(test_a=A_TEST)
    cut_off.sim.reset_counters()
    outcome = _run(inner, cut_off, "--vsphere-discovery=tools", "--vsphere-ssh-host-key-policy=accept-new")
    assert outcome.ret == 0, outcome.out
    assert cut_off.sim.counters()["InitiateFileTransferFromGuest"] == 0
